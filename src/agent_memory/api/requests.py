"""Every tool's arguments, as one pydantic model per tool: the single source of the input schemas
the server publishes, the validation both the server and the Python client apply, and the
parameters of :class:`agent_memory.client.MemoryClient`.

Unknown arguments are refused (``extra="forbid"``) and booleans are strict: ``"yes"`` is not true.
"""

from __future__ import annotations

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


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


Limit = Annotated[int, Field(ge=1, le=MAX_PAGE, description=f"Page size (default {DEFAULT_PAGE}).")]
Cursor = Annotated[
    str | None,
    Field(max_length=MAX_CURSOR, description="next_cursor of the previous page; omit for the first."),
]
Flag = StrictBool
Unit = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class LogDecision(Request):
    decision_type: Annotated[TypeName, Field(description="e.g. SOURCE_SELECTION (letters, digits, _).")]
    context: JsonObject | None = Field(None, description="What you knew (market, inputs).")
    reasoning: JsonObject | None = Field(None, description="Why: scores, alternatives, choice.")
    outcome: OutcomeArg | None = Field(None, description="If already known; else record_outcome later.")
    decision_id: RecordId | None = Field(None, description="Your id; a retry with it is safe.")
    parent_decision_id: RecordId | None = Field(None, description="The decision this follows from.")
    patterns_applied: list[RecordId] | None = Field(
        None, max_length=20, description="pattern_ids from recall_patterns you used."
    )
    memory_influenced: Flag | None = Field(None, description="Default: patterns_applied is not empty.")


class OutcomeArg(Request):
    success: Flag = Field(description="Whether it achieved its goal.")
    quality_score: Unit | None = Field(None, description="Quality in [0, 1].")
    latency_ms: float | None = Field(None, ge=0, le=86_400_000, allow_inf_nan=False, description="ms.")
    signals_generated: int = Field(0, ge=0, le=1_000_000, description="Signals it led to.")
    errors: list[Annotated[str, Field(max_length=2000)]] = Field(
        default_factory=list, max_length=50, description="Errors met."
    )


LogDecision.model_rebuild()


class RecordOutcome(OutcomeArg):
    decision_id: RecordId = Field(description="A decision_id from log_decision.")


class RecallStm(Request):
    decision_type: TypeName | None = Field(None, description="Only this decision type.")
    limit: Limit = DEFAULT_PAGE
    cursor: Cursor = None


class StoreStm(Request):
    key: NoteKey = Field(description="Note name, e.g. context/market; same key overwrites.")
    value: JsonValue = Field(description="Any JSON value (<= 64 KiB).")
    ttl_minutes: int | None = Field(None, ge=1, le=1440, description="Lifetime, default and max 1440.")


class SearchDecisions(Request):
    decision_type: TypeName | None = Field(None, description="Only this type.")
    since: Timestamp | None = Field(None, description="ISO 8601 with zone, e.g. 2026-11-01T00:00:00Z.")
    until: Timestamp | None = Field(None, description="ISO 8601 with zone.")
    success: Flag | None = Field(None, description="Only decisions with this outcome.")
    agent_id: AgentId | None = Field(None, description="Another agent's (observer role only).")
    all_agents: Flag = Field(False, description="Across agents (observer; needs decision_type).")
    oldest_first: Flag = Field(False, description="Oldest first.")
    limit: Limit = DEFAULT_PAGE
    cursor: Cursor = None


class StorePattern(Request):
    description: str = Field(min_length=1, max_length=2000, description="The rule in one sentence.")
    conditions: list[PatternCondition] = Field(
        max_length=20,
        description='When it holds, e.g. [{"field":"whale_count","op":"gte","value":5}]; '
        "op: eq ne gt gte lt lte in exists.",
    )
    outcomes: JsonObject = Field(description="What follows when it holds.")
    confidence: Unit = Field(description="In [0, 1].")
    success_rate: Unit = Field(description="In [0, 1].")
    sample_size: int = Field(ge=0, le=10**12, description="Observations behind it.")
    pattern_id: RecordId | None = Field(None, description="To update (with expected_version).")
    domain: TypeName = Field("general", description="Topic, e.g. trading.")
    decision_type: TypeName | None = Field(None, description="Decision type it is about.")
    shared_with: list[str] | None = Field(
        None, max_length=MAX_TARGETS, description="Agent ids, ['*'] = all; default private."
    )
    expected_version: int | None = Field(None, ge=1, description="To update: the version you read.")


class RecallPatterns(Request):
    context: JsonObject | None = Field(None, description="Your situation: only patterns that hold in it.")
    domain: TypeName | None = Field(None, description="Only this domain.")
    decision_type: TypeName | None = Field(None, description="Only this decision type.")
    min_confidence: Unit = Field(0.0, description="Lowest confidence.")
    include_shared: Flag = Field(True, description="Also patterns shared with you.")
    limit: Limit = DEFAULT_PAGE


class SharePattern(Request):
    pattern_id: RecordId = Field(description="One of your pattern_ids.")
    shared_with: list[str] = Field(
        max_length=MAX_TARGETS, description="Agent ids; ['*'] = all; [] = private."
    )


class PatternHistory(Request):
    pattern_id: RecordId = Field(description="A pattern_id.")
    limit: Limit = DEFAULT_PAGE


class LearnPatterns(Request):
    decision_type: TypeName | None = Field(None, description="Only this type (default: each).")
    window: str = Field("7d", max_length=10, description="How far back: 24h, 7d, 30d.")
    min_samples: int = Field(20, ge=5, le=100_000, description="Fewest decisions behind a pattern.")


class PublishSignal(Request):
    signal_type: TypeName = Field(description="e.g. WHALE_ACTIVITY.")
    data: JsonObject = Field(description="The payload.")
    target_agents: list[str] = Field(
        min_length=1, max_length=MAX_TARGETS, description="Agent ids, or ['*'] for every registered agent."
    )
    confidence: Unit = Field(description="In [0, 1].")
    severity: Severity = Field("medium", description="low|medium|high|critical.")
    recommended_action: str | None = Field(None, max_length=500, description="e.g. MONITOR_CLOSELY.")
    context: JsonObject | None = Field(None, description="Situation it arose in.")
    ttl_hours: float | None = Field(
        None, gt=0, le=MAX_SIGNAL_TTL_HOURS, allow_inf_nan=False, description="Default 24."
    )
    signal_id: RecordId | None = Field(None, description="Your id; a retry with it is safe.")


class ReadInbox(Request):
    status: Literal["pending", "processed", "rejected"] = Field("pending", description="Which deliveries.")
    signal_type: TypeName | None = Field(None, description="Only this type.")
    limit: Limit = DEFAULT_PAGE
    cursor: Cursor = None


class AckSignal(Request):
    signal_id: RecordId = Field(description="From read_inbox.")
    status: Literal["processed", "rejected"] = Field(description="processed = acted on; rejected = ignored.")
    decision_id: RecordId | None = Field(None, description="Your decision that handled it.")


class GetState(Request):
    section: Literal["current", "configuration", "source_metrics", "context_performance"] | None = Field(
        None, description="Only this section, in full."
    )


class UpdateState(Request):
    patch: JsonObject = Field(
        description="JSON merge patch over current, configuration, source_metrics, context_performance, "
        'e.g. {"current":{"cycle":143}}; null deletes.'
    )
    expected_version: int = Field(ge=0, description="The version get_state gave (0 = new).")
    checkpoint: str | None = Field(None, max_length=128, description="Also keep this version under a label.")


class GetAnalytics(Request):
    window: str = Field("7d", max_length=10, description=f"24h, 7d, 30d (up to {MAX_WINDOW_DAYS}d).")
    decision_type: TypeName | None = Field(None, description="Only this type.")
    agent_id: AgentId | None = Field(None, description="Another agent (observer role only).")
    all_agents: Flag = Field(False, description="Every agent (observer role only).")
    include_series: Flag = Field(False, description="Also time series (large; for charts).")
