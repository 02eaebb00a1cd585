"""Every tool's arguments, as one pydantic model per tool: the single source of the input schemas
the server publishes, the validation both the server and the Python client apply, and the
parameters of :class:`agent_memory.client.MemoryClient`.

Unknown arguments are refused (``extra="forbid"``) and booleans are strict: ``"yes"`` is not true.
"""

from __future__ import annotations

import os
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from agent_memory.limits import MAX_SIGNAL_TTL_HOURS, MAX_TARGETS, MAX_WINDOW_DAYS
from agent_memory.models import (
    AgentId,
    JsonObject,
    JsonValue,
    NoteKey,
    PatternCondition,
    RecordId,
    Severity,
    Timestamp,
    TypeName,
)

DEFAULT_PAGE = 10
"""Default page size of every list tool: ten summaries fit a model's budget at any stored volume."""
MAX_PAGE = 50
MAX_CURSOR = 200


def new_id(prefix: str) -> str:
    """A fresh record id (``dec_…``, ``sig_…``, ``pat_…``): made by the server when a call names
    none, and by the Python client before it sends, so that a retried call names the same one."""
    return f"{prefix}_{os.urandom(10).hex()}"  # 80 random bits (a uuid4 was 7x the cost)


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


Limit = Annotated[int, Field(ge=1, le=MAX_PAGE, description="Page size.")]
Cursor = Annotated[
    str | None,
    Field(max_length=MAX_CURSOR, description="From next_cursor."),
]
Flag = StrictBool
Unit = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class LogDecision(Request):
    decision_type: Annotated[TypeName, Field(description="e.g. SOURCE_SELECTION.")]
    context: JsonObject | None = Field(None, description="What you knew.")
    reasoning: JsonObject | None = Field(None, description="Why.")
    outcome: OutcomeArg | None = Field(None, description="If known now.")
    decision_id: RecordId | None = Field(None, description="Retry-safe id.")
    parent_decision_id: RecordId | None = Field(None, description="Its parent.")
    parent_agent_id: AgentId | None = Field(None, description="Its author, if not you.")
    patterns_applied: list[RecordId] | None = Field(None, max_length=20, description="pattern_ids you used.")
    memory_influenced: Flag | None = Field(None, description="Default: cited any.")


class OutcomeArg(Request):
    success: Flag = Field(description="Goal achieved.")
    quality_score: Unit | None = Field(None, description="In [0, 1].")
    latency_ms: float | None = Field(None, ge=0, le=86_400_000, allow_inf_nan=False, description="ms.")
    signals_generated: int = Field(0, ge=0, le=1_000_000, description="Signals it caused.")
    errors: list[Annotated[str, Field(max_length=2000)]] = Field(
        default_factory=list, max_length=50, description="Errors met."
    )


LogDecision.model_rebuild()


class RecordOutcome(OutcomeArg):
    decision_id: RecordId = Field(description="From log_decision.")


class RecallStm(Request):
    decision_type: TypeName | None = Field(None, description="Filter.")
    limit: Limit = DEFAULT_PAGE
    cursor: Cursor = None


class StoreStm(Request):
    key: NoteKey = Field(description="e.g. context/market.")
    value: JsonValue = Field(description="Any JSON (<= 64 KiB).")
    ttl_minutes: int | None = Field(None, ge=1, le=1440, description="Default and max 1440.")


class SearchDecisions(Request):
    decision_type: TypeName | None = Field(None, description="Filter.")
    since: Timestamp | None = Field(None, description="ISO 8601 with zone.")
    until: Timestamp | None = Field(None, description="ISO 8601 with zone.")
    success: Flag | None = Field(None, description="Outcome was this.")
    agent_id: AgentId | None = Field(None, description="Another (observer).")
    all_agents: Flag = Field(False, description="All (observer).")
    oldest_first: Flag = Field(False, description="Oldest first.")
    limit: Limit = DEFAULT_PAGE
    cursor: Cursor = None


class StorePattern(Request):
    description: str = Field(min_length=1, max_length=2000, description="The rule, one sentence.")
    conditions: list[PatternCondition] = Field(
        max_length=20,
        description='e.g. [{"field":"n","op":"gte","value":5}].',
    )
    outcomes: JsonObject = Field(description="What follows.")
    confidence: Unit = Field(description="In [0, 1].")
    success_rate: Unit = Field(description="In [0, 1].")
    sample_size: int = Field(ge=0, le=10**12, description="Observations.")
    pattern_id: RecordId | None = Field(None, description="To update one.")
    domain: TypeName = Field("general", description="e.g. trading.")
    decision_type: TypeName | None = Field(None, description="Its decision type.")
    shared_with: list[str] | None = Field(None, max_length=MAX_TARGETS, description="['*'] = all.")
    expected_version: int | None = Field(None, ge=1, description="Version you read.")


class RecallPatterns(Request):
    context: JsonObject | None = Field(None, description="Your situation.")
    domain: TypeName | None = Field(None, description="Filter.")
    decision_type: TypeName | None = Field(None, description="Filter.")
    min_confidence: Unit = Field(0.0, description="Lowest confidence.")
    include_shared: Flag = Field(True, description="Include shared.")
    limit: Limit = DEFAULT_PAGE


class SharePattern(Request):
    pattern_id: RecordId = Field(description="Yours.")
    shared_with: list[str] = Field(max_length=MAX_TARGETS, description="['*'] = all; [] = none.")


class PatternHistory(Request):
    pattern_id: RecordId = Field(description="A pattern_id.")
    limit: Limit = DEFAULT_PAGE


class LearnPatterns(Request):
    decision_type: TypeName | None = Field(None, description="Default: each.")
    window: str = Field("7d", max_length=10, description="e.g. 24h, 7d.")
    min_samples: int = Field(20, ge=5, le=100_000, description="Min support.")


class PublishSignal(Request):
    signal_type: TypeName = Field(description="e.g. WHALE_ACTIVITY.")
    data: JsonObject = Field(description="The payload.")
    target_agents: list[str] = Field(min_length=1, max_length=MAX_TARGETS, description="Agent ids or ['*'].")
    confidence: Unit = Field(description="In [0, 1].")
    severity: Severity = Field("medium", description="Urgency.")
    recommended_action: str | None = Field(None, max_length=500, description="e.g. MONITOR.")
    context: JsonObject | None = Field(None, description="Situation.")
    ttl_hours: float | None = Field(
        None, gt=0, le=MAX_SIGNAL_TTL_HOURS, allow_inf_nan=False, description="Default 24."
    )
    signal_id: RecordId | None = Field(None, description="Retry-safe id.")


class ReadInbox(Request):
    status: Literal["pending", "processed", "rejected"] = Field("pending", description="Which ones.")
    signal_type: TypeName | None = Field(None, description="Filter.")
    limit: Limit = DEFAULT_PAGE
    cursor: Cursor = None


class AckSignal(Request):
    signal_id: RecordId = Field(description="From read_inbox.")
    status: Literal["processed", "rejected"] = Field(description="Acted on or ignored.")
    decision_id: RecordId | None = Field(None, description="Your decision on it.")
    from_agent: AgentId | None = Field(None, description="Sender, if asked.")


class GetState(Request):
    section: Literal["current", "configuration", "source_metrics", "context_performance"] | None = Field(
        None, description="One section, whole."
    )


class UpdateState(Request):
    patch: JsonObject = Field(description='Merge patch, e.g. {"current":{"cycle":3}}.')
    expected_version: int = Field(ge=0, description="From get_state.")
    checkpoint: str | None = Field(None, max_length=128, description="Keep as checkpoint.")
    request_id: RecordId | None = Field(None, description="Retry-safe id.")


class GetAnalytics(Request):
    window: str = Field("7d", max_length=10, description=f"e.g. 24h, 7d (max {MAX_WINDOW_DAYS}d).")
    decision_type: TypeName | None = Field(None, description="Filter.")
    agent_id: AgentId | None = Field(None, description="Another (observer).")
    all_agents: Flag = Field(False, description="All (observer).")
    include_series: Flag = Field(False, description="Time series too.")


class ConsumeBudget(Request):
    key: str = Field(max_length=128, description="e.g. exchange/orders")
    limit: int = Field(ge=1, le=10**9, description="Per window.")
    window: str = Field(max_length=9, description="60s, 15m, 1h, 1d")
    cost: int = Field(1, ge=0, le=10**9, description="0 = check.")


class MemoryAwareDecisionPrompt(Request):
    """Arguments of the ``memory_aware_decision`` prompt."""

    decision_type: TypeName = Field(description="The kind of decision about to be made.")
    situation: str = Field("", max_length=2000, description="The situation, in a sentence or two.")
