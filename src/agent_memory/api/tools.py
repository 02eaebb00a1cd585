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

PAGING = "Paged: pass next_cursor back as cursor for more."


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
            Log a decision you made, with its context and reasoning (outcome if known). Call for
            every decision worth learning from. Returns decision_id and created (false on a retry
            with the same decision_id). Then call record_outcome when the result is known.""",
        ),
        _spec(
            "record_outcome",
            rq.RecordOutcome,
            rs.OutcomeResult,
            "write_idempotent",
            """
            Attach the outcome to one of your decisions, once; it feeds analytics and
            learn_patterns. Returns decision_id and recorded (false if the same outcome was
            already there). A different outcome is refused: log a follow-up decision.""",
        ),
        _spec(
            "recall_stm",
            rq.RecallStm,
            rs.ShortTermResult,
            "read",
            f"""
            Your short-term memory: decisions of the last 24 h (newest first), live notes and the
            count of pending signals. Call at the start of each cycle. Returns summaries with
            previews (memory://decisions/{{id}} has a whole record); notes count in limit
            (default 10). {PAGING}""",
        ),
        _spec(
            "store_stm",
            rq.StoreStm,
            rs.NoteResult,
            "write_idempotent",
            """
            Keep a working note for at most 24 h; the same key overwrites it. recall_stm shows
            your notes. Returns key and expires_at. For lasting facts use store_pattern.""",
        ),
        _spec(
            "search_decisions",
            rq.SearchDecisions,
            rs.DecisionPage,
            "read",
            f"""
            Search decision history of any age (newest first) by type, time range and outcome.
            Use for older history; recall_stm is cheaper for the last 24 h. Returns summaries
            with previews, 10 by default. {PAGING}""",
        ),
        _spec(
            "store_pattern",
            rq.StorePattern,
            rs.PatternResult,
            "write",
            """
            Store a rule you learned (long-term memory), or a new version of yours (pattern_id +
            expected_version; a stale version is refused). Returns pattern_id and version.
            learn_patterns finds patterns from outcomes for you.""",
        ),
        _spec(
            "recall_patterns",
            rq.RecallPatterns,
            rs.PatternList,
            "read",
            """
            Patterns that apply now, highest confidence first: yours and those shared with you.
            Pass your context to get only those whose conditions hold; cite the ones you use in
            log_decision(patterns_applied). Returns up to limit (default 10) summaries.""",
        ),
        _spec(
            "share_pattern",
            rq.SharePattern,
            rs.PatternResult,
            "write_idempotent",
            """
            Share one of your patterns with other agents (['*'] = all, [] = private) as a new
            version; they can read it, not change it. Returns pattern_id and version.""",
        ),
        _spec(
            "pattern_history",
            rq.PatternHistory,
            rs.PatternList,
            "read",
            """
            Earlier versions of a pattern visible to you, newest first: how it evolved.
            Returns up to limit (default 10) summaries.""",
        ),
        _spec(
            "learn_patterns",
            rq.LearnPatterns,
            rs.LearnResult,
            "write_idempotent",
            """
            Mine your decisions with outcomes for conditions that predict success and store the
            significant ones as learned patterns. Call after outcomes accumulate; repeating it
            changes nothing if nothing changed. Returns counts and the top pattern_ids.""",
        ),
        _spec(
            "publish_signal",
            rq.PublishSignal,
            rs.PublishResult,
            "write_idempotent",
            """
            Send a signal to other agents' inboxes (all targets or none). Call when others should
            know or act. Returns signal_id, created (false on a retry with the same signal_id)
            and targets never seen yet (check their spelling).""",
        ),
        _spec(
            "read_inbox",
            rq.ReadInbox,
            rs.InboxPage,
            "read",
            f"""
            Signals sent to you, newest first (pending by default). Call each cycle, then
            ack_signal each one. Returns summaries with previews, 10 by default
            (memory://signals/{{id}} has a whole signal). {PAGING}""",
        ),
        _spec(
            "ack_signal",
            rq.AckSignal,
            rs.AckResult,
            "write_idempotent",
            """
            Mark a signal sent to you processed (acted on) or rejected (ignored), once; it leaves
            your pending inbox. Returns signal_id, status and acknowledged.""",
        ),
        _spec(
            "get_state",
            rq.GetState,
            rs.StateResult,
            "read",
            """
            Your durable state (current, configuration, source_metrics, context_performance) and
            its version; large sections are previewed: pass section for one in full. Read it
            before update_state. Checkpoints: memory://agents/{agent_id}/checkpoints.""",
        ),
        _spec(
            "update_state",
            rq.UpdateState,
            rs.StateWritten,
            "write",
            """
            Change your state if nobody changed it since you read it: pass the version get_state
            gave as expected_version. A stale one is refused with the current state: merge and
            retry. Returns the new version.""",
        ),
        _spec(
            "get_analytics",
            rq.GetAnalytics,
            rs.AnalyticsResult,
            "read",
            """
            How well you decide: success rate with its interval, quality, latency percentiles,
            per decision type, uplift from memory, best and worst patterns, signal flow and
            storage cost. Fast at any volume. Returns one report (no series unless asked).""",
        ),
    )
}
