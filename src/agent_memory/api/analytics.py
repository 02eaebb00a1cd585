"""The analytics report: its models (floats, JSON-serialisable), as tools and clients see them.

Built by :mod:`agent_memory.memory.analytics` (and :mod:`agent_memory.memory.costs` for the cost
section); read by the Python client without the server."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

Granularity = Literal["hour", "day"]
ADJECTIVE: dict[str, str] = {"hour": "hourly", "day": "daily"}


class CostRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tool: str
    calls: int
    requests: int
    requests_per_call: float
    read_units_per_call: float
    write_units_per_call: float
    usd_per_1000_calls: float
    """Estimated on-demand cost of 1,000 calls: units per call x price per unit x 1,000."""
    usd_total: float
    """Estimated on-demand cost of the counted calls."""


class CostSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: list[str]
    price_read_per_million: float
    price_write_per_million: float
    rows: list[CostRow]
    total_calls: int
    total_usd: float
    note: str


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Interval(_Model):
    lo: float
    hi: float


class DecisionFigures(_Model):
    """Counts and rates of a set of decisions (an agent, a type, the team)."""

    decisions: int = 0
    memory_influenced_decisions: int = 0
    outcomes: int = 0
    """Decisions of the window whose outcome has been recorded (at any time since)."""
    successes: int = 0
    success_rate: float | None = None
    """successes / outcomes; None without outcomes."""
    success_rate_ci95: Interval | None = None
    """Wilson score interval (95 %) of the success rate."""
    quality_mean: float | None = None
    """Mean quality_score over the outcomes that carried one (q_sum / q_n)."""
    quality_n: int = 0
    latency_n: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None


class TypeBreakdown(DecisionFigures):
    decision_type: str


class AgentBreakdown(DecisionFigures):
    agent_id: str


class MemoryUplift(_Model):
    """Success rate of memory-influenced decisions against the others (outcomes known)."""

    with_memory_decisions: int
    without_memory_decisions: int
    with_memory_outcomes: int
    with_memory_successes: int
    with_memory_rate: float | None = None
    with_memory_ci95: Interval | None = None
    without_memory_outcomes: int
    without_memory_successes: int
    without_memory_rate: float | None = None
    without_memory_ci95: Interval | None = None
    difference: float | None = None
    """with_memory_rate - without_memory_rate; None when either group has no outcome."""
    difference_ci95: Interval | None = None
    """Newcombe hybrid score interval (95 %) of the difference."""


class PatternEffectiveness(_Model):
    pattern_id: str
    agent_id: str
    description: str
    decision_type: str | None = None
    status: str
    confidence: float
    applied_count: int
    applied_successes: int
    effectiveness: float
    """applied_successes / applied_count (lifetime counters, not windowed)."""
    ci95: Interval


class SignalFigures(_Model):
    published: int = 0
    received: int = 0
    processed: int = 0
    rejected: int = 0
    lag_n: int = 0
    lag_p50_ms: float | None = None
    lag_p95_ms: float | None = None
    pending: int = 0
    """Deliveries not acknowledged whose signal expires in the current hour or later."""
    expired_unprocessed: int = 0
    """Deliveries never acknowledged whose signal expired in an hour of the window before the
    current one."""
    current_hour: str
    note: str


class SeriesPoint(_Model):
    bucket: str
    start: datetime
    decisions: int
    outcomes: int
    successes: int
    success_rate: float | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None


class Series(_Model):
    name: str
    decisions: int
    points: list[SeriesPoint]
    """Only the buckets with decisions or outcomes."""


class AnalyticsReport(_Model):
    generated_at: datetime
    agents: list[str]
    all_agents: bool
    decision_type: str | None = None
    window_requested_hours: float
    granularity: Granularity
    window_start: datetime
    """Start of the first rollup bucket summed (the window rounded out to whole hours/days)."""
    window_end: datetime
    """End of the last rollup bucket summed (the end of the current hour/day)."""
    window_note: str
    totals: DecisionFigures
    by_decision_type: list[TypeBreakdown]
    by_agent: list[AgentBreakdown]
    latency_relative_error: float
    """Each latency percentile is within this relative error of a latency truly at that rank
    (latencies at or below 1 ms are reported as 1 ms)."""
    memory_uplift: MemoryUplift
    patterns_with_applications: int
    top_patterns: list[PatternEffectiveness]
    worst_patterns: list[PatternEffectiveness]
    signals: SignalFigures
    series: list[SeriesPoint]
    """Every bucket of the window, oldest first (zeros where nothing happened)."""
    series_by_agent: list[Series]
    series_by_type: list[Series]
    costs: CostSection | None = None
