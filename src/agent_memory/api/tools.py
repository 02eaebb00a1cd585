"""The tool table: name, arguments, result, kind and description of every tool, defined once.

The server registers exactly these, the client calls them, the API reference lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from agent_memory.api import requests as rq
from agent_memory.api import results as rs

Kind = Literal["read", "write", "write_idempotent"]

PAGING = "More: pass next_cursor as cursor."


@dataclass(frozen=True)
class ToolSpec:
    name: str
    request: type[rq.Request]
    result: type[BaseModel]
    kind: Kind
    description: str


def _spec(name: str, request: type[rq.Request], result: type[BaseModel], kind: Kind, text: str) -> ToolSpec:
    return ToolSpec(name, request, result, kind, " ".join(text.split()))


TOOLS: dict[str, ToolSpec] = {
    s.name: s
    for s in (
        _spec(
            "log_decision",
            rq.LogDecision,
            rs.LogDecisionResult,
            "write_idempotent",
            """
            Log each decision worth learning from, with context and reasoning. Returns decision_id
            and created (false on a retry); call record_outcome later.""",
        ),
        _spec(
            "record_outcome",
            rq.RecordOutcome,
            rs.OutcomeResult,
            "write_idempotent",
            """
            Record the result of your decision, once; feeds analytics and learning. Returns decision_id
            and recorded (false if already so).""",
        ),
        _spec(
            "recall_stm",
            rq.RecallStm,
            rs.ShortTermResult,
            "read",
            f"""
            First each cycle: your last 24 h of decisions (newest first), notes and pending
            signal count. Returns summaries; notes count in limit (default 10).
            {PAGING}""",
        ),
        _spec(
            "store_stm",
            rq.StoreStm,
            rs.NoteResult,
            "write_idempotent",
            """
            Keep a working note up to 24 h (same key overwrites). Returns key and expires_at.""",
        ),
        _spec(
            "search_decisions",
            rq.SearchDecisions,
            rs.DecisionPage,
            "read",
            f"""
            Older decision history by type, time, outcome. Returns summaries, 10 by default
            (whole: memory://decisions/{{id}}). {PAGING}""",
        ),
        _spec(
            "store_pattern",
            rq.StorePattern,
            rs.PatternResult,
            "write",
            """
            Store a rule you learned, or a new version of yours (pattern_id + expected_version).
            Returns pattern_id and version.""",
        ),
        _spec(
            "recall_patterns",
            rq.RecallPatterns,
            rs.PatternList,
            "read",
            """
            Before deciding: patterns that hold in your context, best first (yours and shared);
            cite those you use in log_decision. Returns summaries, 10 by default.""",
        ),
        _spec(
            "share_pattern",
            rq.SharePattern,
            rs.PatternResult,
            "write_idempotent",
            """
            Share one of your patterns (read-only to others) as a new version. Returns pattern_id
            and version.""",
        ),
        _spec(
            "pattern_history",
            rq.PatternHistory,
            rs.PatternList,
            "read",
            """
            A pattern's versions, newest first. Returns summaries, 10 by default.""",
        ),
        _spec(
            "learn_patterns",
            rq.LearnPatterns,
            rs.LearnResult,
            "write_idempotent",
            """
            After outcomes accumulate: store conditions that predict success as patterns. Returns counts
            and the top pattern_ids.""",
        ),
        _spec(
            "publish_signal",
            rq.PublishSignal,
            rs.PublishResult,
            "write_idempotent",
            """
            Tell other agents something (all targets or none). Returns signal_id, created (false
            on a retry) and targets never seen yet.""",
        ),
        _spec(
            "read_inbox",
            rq.ReadInbox,
            rs.InboxPage,
            "read",
            f"""
            Signals sent to you, newest first; ack_signal each. Returns summaries, 10
            by default (whole: memory://signals/{{id}}). {PAGING}""",
        ),
        _spec(
            "ack_signal",
            rq.AckSignal,
            rs.AckResult,
            "write_idempotent",
            """
            Mark a signal sent to you processed or rejected, once. Returns status and
            acknowledged.""",
        ),
        _spec(
            "consume_budget",
            rq.ConsumeBudget,
            rs.BudgetStatus,
            "write",
            """
            Before calling a rate-limited outside API: take cost units of your budget (shared by
            all your instances). Returns allowed, remaining, reset_at.""",
        ),
        _spec(
            "get_state",
            rq.GetState,
            rs.StateResult,
            "read",
            """
            Your durable state and version, for update_state. Returns its sections (large ones
            previewed; section= for one whole).""",
        ),
        _spec(
            "update_state",
            rq.UpdateState,
            rs.StateWritten,
            "write",
            """
            Change your state if still at expected_version (else you get the current one). Returns the
            new version.""",
        ),
        _spec(
            "get_analytics",
            rq.GetAnalytics,
            rs.AnalyticsResult,
            "read",
            """
            How well you decide: success, quality, latency, per type, memory uplift, best and worst
            patterns, signals, cost. Returns one report.""",
        ),
    )
}
