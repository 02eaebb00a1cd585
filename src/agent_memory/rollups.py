"""Analytics rollups: the counters written atomically with every decision, outcome and signal.

Each decision adds to two rollup items of its agent (its hour and its day, by the decision's
creation time); its outcome, when recorded, adds to the same two. Signals add to per-agent hourly
signal rollups. Counters only ever add, so concurrent writers never lose an increment, and any
window, agent set or type set is answered by summing items: the work of ``get_analytics`` grows
with the window's length, never with the number of decisions in it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from agent_memory import histogram
from agent_memory.models import Outcome

# decision rollups
DECISIONS = "n_decisions"
MEMORY_DECISIONS = "n_mem"
OUTCOMES = "n_outcomes"
SUCCESSES = "n_success"
MEMORY_OUTCOMES = "n_mem_outcomes"
MEMORY_SUCCESSES = "n_mem_success"
QUALITY_SUM = "q_sum"
QUALITY_COUNT = "q_n"
LATENCY_PREFIX = "lat_"

# signal rollups (hourly, per agent)
PUBLISHED = "s_published"
RECEIVED = "s_received"
PROCESSED = "s_processed"
REJECTED = "s_rejected"
LAG_PREFIX = "lag_"
DUE = "s_due"
"""Deliveries whose signal expires in this hour (counted in the expiry hour's bucket)."""
DUE_DONE = "s_due_done"
"""Of those, acknowledged before expiry. DUE - DUE_DONE of past hours = expired unprocessed."""
PENDING_MINUTE_PREFIX = "s_pend_m"
"""``s_pend_mMM``: of DUE, those not acknowledged whose signal expires in minute MM of the hour
(+1 on publish, -1 on ack). Only the current hour needs them: its deliveries are partly expired."""


def pending_minute(expires_at: datetime) -> str:
    """The counter of the expiry minute of a delivery (in its expiry hour's bucket)."""
    return f"{PENDING_MINUTE_PREFIX}{expires_at.astimezone(UTC).minute:02d}"


Delta = dict[str, int | float]


def decision_logged(memory_influenced: bool) -> Delta:
    return {DECISIONS: 1, MEMORY_DECISIONS: 1 if memory_influenced else 0}


def outcome_recorded(outcome: Outcome, memory_influenced: bool) -> Delta:
    delta: Delta = {OUTCOMES: 1, SUCCESSES: 1 if outcome.success else 0}
    if memory_influenced:
        delta[MEMORY_OUTCOMES] = 1
        delta[MEMORY_SUCCESSES] = 1 if outcome.success else 0
    if outcome.quality_score is not None:
        delta[QUALITY_SUM] = outcome.quality_score
        delta[QUALITY_COUNT] = 1
    if outcome.latency_ms is not None:
        delta[histogram.attribute(LATENCY_PREFIX, histogram.bucket_of(outcome.latency_ms))] = 1
    return delta


def merge(*deltas: Delta) -> Delta:
    out: Delta = {}
    for delta in deltas:
        for name, value in delta.items():
            out[name] = out.get(name, 0) + value
    return {k: v for k, v in out.items() if v != 0}


def signal_acked(status: str, created: datetime, acked: datetime) -> Delta:
    lag_ms = max(0.0, (acked - created).total_seconds() * 1000)
    return {
        PROCESSED if status == "processed" else REJECTED: 1,
        histogram.attribute(LAG_PREFIX, histogram.bucket_of(lag_ms)): 1,
    }
