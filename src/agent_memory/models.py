"""Records shared by every layer: what the memory stores and what the tools return.

Validation lives here so that every entry point (MCP tools, the Python client, import, the learner)
refuses the same bad input with the same message: identifiers' characters and lengths, rates in
[0, 1], no NaN/Infinity, numbers DynamoDB can store exactly, payload size limits.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from json.encoder import encode_basestring_ascii
from typing import Annotated, Any, Generic, Literal, TypeVar

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from agent_memory import item_rules as limits
from agent_memory.errors import InvalidInput
from agent_memory.item_rules import MAX_NESTING_DEPTH
from agent_memory.limits import MAX_TARGETS, MAX_WINDOW_DAYS

# --------------------------------------------------------------------------------------------------
# Identifiers and payloads
# --------------------------------------------------------------------------------------------------

# '#' is the key delimiter of the DynamoDB design, so no identifier may contain it.
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_AGENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_TYPE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")

MAX_PAYLOAD_BYTES = 64 * 1024
"""Largest JSON encoding of one free-form field (context, reasoning, data, a note's value...).

Well under DynamoDB's 400 KB item limit so that a record with several such fields still fits.
"""
MAX_DEPTH = MAX_NESTING_DEPTH - 3
"""Deepest position of a value inside a free-form field (the field's own value at 0): DynamoDB's 32
levels counting the attribute (so 31 below it), less the two a payload can sit under inside its
record (a pattern's ``conditions`` list, each condition a map holding ``value``)."""


def _check_id(value: str, what: str, pattern: re.Pattern[str], hint: str) -> str:
    # fullmatch: with match() and '$', "evil\n" would pass (and reach keys and terminals).
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"invalid {what} {value[:80]!r}: {hint}")
    return value


def _id(value: str) -> str:
    return _check_id(
        value,
        "id",
        _ID_RE,
        "use 1-128 characters: letters, digits, '_', '-', '.', ':' (start with a letter/digit)",
    )


def _agent(value: str) -> str:
    return _check_id(
        value,
        "agent id",
        _AGENT_RE,
        "use 1-64 characters: letters, digits, '_', '-', '.', ':' (start with a letter/digit)",
    )


def _type(value: str) -> str:
    return _check_id(
        value, "type", _TYPE_RE, "use 1-64 characters: letters, digits and '_', starting with a letter"
    )


def _key(value: str) -> str:
    return _check_id(value, "key", _KEY_RE, "use 1-128 characters: letters, digits, '_', '-', '.', ':', '/'")


RecordId = Annotated[str, AfterValidator(_id)]
AgentId = Annotated[str, AfterValidator(_agent)]
TypeName = Annotated[str, AfterValidator(_type)]
NoteKey = Annotated[str, AfterValidator(_key)]


def check_number(value: float | int, where: str) -> float | int:
    """Refuse numbers that DynamoDB cannot store exactly (and NaN/Infinity everywhere): the rules of
    :mod:`agent_memory.item_rules`, reported as a ValueError for pydantic."""
    if isinstance(value, bool):
        return value
    try:
        limits.check_number(value, where)
    except InvalidInput as exc:
        raise ValueError(exc.message) from None
    return value


def normalize_json(value: Any, where: str = "value", depth: int = 0) -> Any:
    """Validate a free-form JSON value and put it in canonical form.

    Integral floats become ints (1.0 -> 1, 1e23 -> 10**23): DynamoDB stores both as the same
    number, so canonicalising here keeps a value identical whichever backend stored it.
    """
    try:
        return _plain_normal(value, depth)
    except _NotPlain:
        # Something to convert the slow way or to report with its path: walk again, naming paths.
        return _normalize(value, where, depth)


class _NotPlain(Exception):
    """A value :func:`_plain_normal` leaves to :func:`_normalize` (which converts or reports it)."""


_PLAIN_INT = 10**limits.MAX_SIGNIFICANT_DIGITS
_LEAVES = frozenset((str, bool))
_EXACT_FLOAT_INT = 2.0**53
"""Integral floats below this are the ints they print as (``int(x)`` is exact and equals the
decimal of ``repr(x)``); larger ones are converted through their decimal (1e23 -> 10**23)."""


def _plain_normal(value: Any, depth: int) -> Any:
    """:func:`normalize_json` of the common values (plain JSON types, numbers certainly storable)
    in one walk that builds no path strings: paths are only needed to name what is wrong, which
    :func:`_normalize` does. Raises :class:`_NotPlain` for anything else."""
    if depth > MAX_DEPTH:
        raise _NotPlain
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if (kind is dict or kind is list or kind is tuple) and depth == MAX_DEPTH:
        raise _NotPlain  # its members would be too deep (the leaves below are not depth-checked)
    if kind is dict:
        out: dict[str, Any] = {}
        for k, v in value.items():
            if type(k) is not str:
                raise _NotPlain
            kind = type(v)
            out[k] = v if kind is str or kind is bool or v is None else _plain_normal(v, depth + 1)
        return out
    if kind is list or kind is tuple:
        return [v if type(v) in _LEAVES or v is None else _plain_normal(v, depth + 1) for v in value]
    if kind is int:
        if -_PLAIN_INT < value < _PLAIN_INT:
            return value
        raise _NotPlain
    if kind is float:
        if value == 0.0 or 1e-125 < abs(value) < 1e120:
            if value.is_integer():
                if abs(value) < _EXACT_FLOAT_INT:
                    return int(value)
                raise _NotPlain
            return value
        raise _NotPlain
    raise _NotPlain


def _normalize(value: Any, where: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise ValueError(f"{where}: nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return check_number(value, where)
    if isinstance(value, float):
        check_number(value, where)
        if value.is_integer():
            # The decimal the float was written as (1e23 -> 10**23), as DynamoDB would keep it.
            return check_number(int(Decimal(repr(value))), where)
        return value
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{where}: object keys must be strings")
            out[k] = _normalize(v, f"{where}.{k}", depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_normalize(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    raise ValueError(f"{where}: {type(value).__name__} is not a JSON value")


def encoded_size(value: Any) -> int:
    """Bytes of ``value`` as compact JSON, measured in one C pass (0 if it is not plain JSON)."""
    try:
        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    except (TypeError, ValueError, RecursionError):
        return 0


def bounded_json(value: Any, where: str, limit: int = MAX_PAYLOAD_BYTES) -> Any:
    """:func:`normalize_json` for a value that is not stored as is (a query's context, a patch),
    refusing it by its encoded size before the deep walk."""
    from agent_memory.errors import InvalidInput

    size = encoded_size(value)
    if size > limit:
        raise InvalidInput(f"{where} is {size} bytes; the limit is {limit} bytes: send less")
    try:
        return normalize_json(value, where)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc


UNCHANGED = "unchanged"
"""Validation context key: the payload fields (a set of names) that hold what was stored, checked
when written (the state sections an update leaves alone): their check is skipped."""


def _payload(value: Any, info: ValidationInfo) -> Any:
    context = info.context
    if context and (context.get("stored") or info.field_name in context.get(UNCHANGED, ())):
        # Read back from storage: it passed this check when written; skipping it keeps reads
        # proportional to what they return rather than re-walking every payload.
        return value
    # Size first, on the encoded bytes (one pass in C), before the deep walk: a 4 MB payload of
    # 120k keys is refused in milliseconds instead of seconds of event-loop time (issue #12).
    small = certainly_small(value)
    if not small:
        raw = encoded_size(value)  # 0 if not plain JSON: normalize_json below says what is wrong
        if raw > MAX_PAYLOAD_BYTES:
            raise ValueError(_too_large(raw))
    try:
        # A small value normalised on the plain path is no longer than it was (integral floats
        # under 2**53 lose their ".0"), so it is not measured again.
        return _plain_normal(value, 0) if small else _checked_size(normalize_json(value, "payload"))
    except _NotPlain:
        return _checked_size(normalize_json(value, "payload"))


def _checked_size(value: Any) -> Any:
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_PAYLOAD_BYTES:
        raise ValueError(_too_large(size))
    return value


def certainly_small(value: Any) -> bool:
    """Whether ``value``'s compact JSON (as :func:`encoded_size` measures it) is certainly within
    :data:`MAX_PAYLOAD_BYTES`, told by orjson, several times faster than :mod:`json`: its text of a
    value differs from json's only in floats' exponents (``1e-5``, ``1e16``: json writes ``1e-05``,
    ``1e+16``, at most two characters more per float, which takes at least three), so a value of
    at most half the limit in orjson's text is within it in json's. Values orjson refuses (integers
    beyond 64 bits, keys that are not strings) are measured by json."""
    try:
        return len(orjson.dumps(value)) <= MAX_PAYLOAD_BYTES // 2
    except (TypeError, ValueError):  # orjson.JSONEncodeError
        return False


def _too_large(size: int) -> str:
    return (
        f"payload is {size} bytes; the limit is {MAX_PAYLOAD_BYTES} bytes (64 KiB) per field: "
        "store a summary or a reference instead"
    )


JsonObject = Annotated[dict[str, Any], AfterValidator(_payload)]
JsonValue = Annotated[Any, AfterValidator(_payload)]
UnitFloat = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamps must carry a timezone (e.g. 2026-11-24T10:00:00Z)")
    return value.astimezone(UTC)


Timestamp = Annotated[datetime, AfterValidator(_aware)]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, ser_json_inf_nan="strings")


# --------------------------------------------------------------------------------------------------
# Decisions
# --------------------------------------------------------------------------------------------------


class Outcome(Record):
    success: bool = Field(description="Whether the decision achieved what it was for.")
    quality_score: UnitFloat | None = Field(None, description="Quality of the result in [0, 1].")
    latency_ms: float | None = Field(
        None, ge=0, le=86_400_000, allow_inf_nan=False, description="Time the decision took to pay off."
    )
    signals_generated: int = Field(0, ge=0, le=1_000_000)
    errors: list[Annotated[str, Field(max_length=2000)]] = Field(default_factory=list, max_length=50)
    recorded_at: Timestamp = Field(default_factory=utcnow)


class Decision(Record):
    decision_id: RecordId
    agent_id: AgentId
    agent_version: str | None = Field(None, max_length=64)
    decision_type: TypeName
    created_at: Timestamp
    expires_at: Timestamp
    context: JsonObject = Field(default_factory=dict)
    reasoning: JsonObject = Field(default_factory=dict)
    parent_decision_id: RecordId | None = None
    parent_agent_id: AgentId | None = None
    """Author of the parent when it is another agent's decision (ids are per author)."""
    patterns_applied: list[RecordId] = Field(default_factory=list, max_length=20)
    memory_influenced: bool = False
    outcome: Outcome | None = None

    def content_equals(self, other: Decision) -> bool:
        """Same payload as a retry would send (ignores the times the server stamped)."""
        fields = ("decision_type", "patterns_applied", "parent_decision_id", "parent_agent_id")
        return all(getattr(self, f) == getattr(other, f) for f in fields) and all(
            limits.same_value(getattr(self, f), getattr(other, f)) for f in ("context", "reasoning")
        )


# --------------------------------------------------------------------------------------------------
# Patterns (long-term memory)
# --------------------------------------------------------------------------------------------------

ConditionOp = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "exists"]


class PatternCondition(Record):
    """One test on a decision context: ``field`` is a dotted path into the context."""

    field: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\s#]+$")]
    op: ConditionOp = "eq"
    value: JsonValue = None

    @model_validator(mode="after")
    def _operand(self) -> PatternCondition:
        if self.op in ("gt", "gte", "lt", "lte") and (
            isinstance(self.value, bool) or not isinstance(self.value, int | float)
        ):
            raise ValueError(f"condition on {self.field!r}: op {self.op!r} needs a number value")
        if self.op == "in" and not isinstance(self.value, list):
            raise ValueError(f"condition on {self.field!r}: op 'in' needs a list value")
        return self

    def holds(self, context: dict[str, Any]) -> bool:
        return condition_holds(self.field, self.op, self.value, context)

    def describe(self) -> str:
        return describe_condition(self.field, self.op, self.value)


_SYMBOLS = {"eq": "=", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "in": "in"}


def describe_condition(field: str, op: str, value: Any) -> str:
    """How a condition ``field op value`` (:class:`PatternCondition`) reads; callable on a stored
    condition's values without building the record."""
    if op == "exists":
        return f"{field} exists"
    return f"{field} {_SYMBOLS[op]} {_json_scalar(value)}"


def condition_holds(field: str, op: str, value: Any, context: dict[str, Any]) -> bool:
    """Whether the condition ``field op value`` (:class:`PatternCondition`) holds for ``context``;
    callable on a stored condition's values without building the record."""
    found, actual = lookup(context, field)
    if op == "exists":
        return found if value in (None, True) else not found
    if not found:
        return False
    if op == "eq":
        return bool(actual == value)
    if op == "ne":
        return bool(actual != value)
    if op == "in":
        return actual in value
    if isinstance(actual, bool) or not isinstance(actual, int | float):
        return False
    threshold = float(value)
    return {
        "gt": actual > threshold,
        "gte": actual >= threshold,
        "lt": actual < threshold,
        "lte": actual <= threshold,
    }[op]


def _json_scalar(value: Any) -> str:
    """``json.dumps(value)``, written directly for a string or a number (what conditions compare
    with): ``json.dumps`` builds an encoder per call, which cost more than the rest of a
    condition's description."""
    kind = type(value)
    if kind is str:
        return str(encode_basestring_ascii(value))
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    return json.dumps(value)


def lookup(context: dict[str, Any], path: str) -> tuple[bool, Any]:
    """Follow a dotted path into nested objects: ``market.trend``."""
    node: Any = context
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


PatternStatus = Literal["active", "superseded", "decayed"]


class PatternFeedback(Record):
    """Effectiveness when applied: updated by decisions that list the pattern in
    ``patterns_applied`` once their outcome is known. Counters, never versioned."""

    applied_count: int = Field(0, description="Decisions (by any agent) that applied it and have an outcome.")
    applied_successes: int = Field(0, description="Of those, the successful ones.")
    author_applied_count: int = Field(
        0, description="Applications by the pattern's author; the rest were reported by other agents."
    )
    author_applied_successes: int = 0
    access_count: int = 0
    last_accessed: Timestamp | None = None

    @property
    def applied_success_rate(self) -> float | None:
        return self.applied_successes / self.applied_count if self.applied_count else None


class PatternEvidence(Record):
    """What the memory measured about another agent's pattern, as opposed to what its author states."""

    measured_confidence: float = Field(
        description=(
            "Learned patterns: the learner's confidence (computed from recorded outcomes). Others: the 95% "
            "Wilson lower bound of success over recorded applications (0 without any)."
        )
    )
    basis: Literal["learned", "applications"]


class Pattern(Record):
    pattern_id: RecordId
    agent_id: AgentId = Field(description="Author; only the author may change the pattern.")
    domain: TypeName = "general"
    description: str = Field(min_length=1, max_length=2000)
    conditions: list[PatternCondition] = Field(default_factory=list, max_length=20)
    outcomes: JsonObject = Field(default_factory=dict)
    confidence: UnitFloat
    success_rate: UnitFloat
    sample_size: int = Field(ge=0, le=10**12)
    decision_type: TypeName | None = None
    shared_with: list[str] = Field(default_factory=list, max_length=MAX_TARGETS)
    status: PatternStatus = "active"
    source: Literal["manual", "learned"] = "manual"
    superseded_by: RecordId | None = None
    stats: JsonObject = Field(default_factory=dict, description="Learner statistics (lift, p-value...).")
    version: int = Field(1, ge=1)
    created_at: Timestamp
    updated_at: Timestamp
    feedback: PatternFeedback = Field(default_factory=PatternFeedback)
    evidence: PatternEvidence | None = Field(
        None,
        description=(
            "On another agent's pattern only: how much of it this memory measured. confidence, "
            "success_rate and sample_size are the author's own figures (claims); recall ranks others' "
            "patterns by evidence.measured_confidence."
        ),
    )

    @field_validator("shared_with")
    @classmethod
    def _shared(cls, value: list[str]) -> list[str]:
        for agent in value:
            if agent != "*":
                _agent(agent)
        if "*" in value and len(value) > 1:
            raise ValueError("shared_with: use ['*'] alone to share with every agent")
        return sorted(set(value))

    @property
    def is_shared(self) -> bool:
        return bool(self.shared_with)

    def visible_to(self, agent_id: str) -> bool:
        return agent_id == self.agent_id or "*" in self.shared_with or agent_id in self.shared_with

    def matches(self, context: dict[str, Any]) -> bool:
        return all(c.holds(context) for c in self.conditions)


class LearnResult(BaseModel):
    """What one learning run did (the learner's result, returned by the ``learn_patterns`` tool)."""

    decisions_examined: int
    baseline_success_rate: float | None
    created: list[Pattern]
    updated: list[Pattern]
    unchanged: int
    superseded: list[str] = Field(description="pattern_ids of learned patterns that no longer hold.")
    note: str


# --------------------------------------------------------------------------------------------------
# Agent state and registry
# --------------------------------------------------------------------------------------------------

STATE_SECTIONS = ("current", "configuration", "source_metrics", "context_performance")


class AgentState(Record):
    agent_id: AgentId
    version: int = Field(0, ge=0, description="0 = never written. Incremented by every update.")
    current: JsonObject = Field(default_factory=dict)
    configuration: JsonObject = Field(default_factory=dict)
    source_metrics: JsonObject = Field(default_factory=dict)
    context_performance: JsonObject = Field(default_factory=dict)
    agent_version: str | None = Field(None, max_length=64)
    updated_at: Timestamp | None = None
    updated_by: AgentId | None = None


class StateCheckpoint(Record):
    agent_id: AgentId
    version: int
    label: str = Field(max_length=128)
    created_at: Timestamp
    state: AgentState


class AgentProfile(Record):
    agent_id: AgentId
    role: Literal["agent", "observer"] = "agent"
    agent_version: str | None = Field(None, max_length=64)
    first_seen: Timestamp
    last_seen: Timestamp


# --------------------------------------------------------------------------------------------------
# Signals
# --------------------------------------------------------------------------------------------------

Severity = Literal["low", "medium", "high", "critical"]
DeliveryStatus = Literal["pending", "processed", "rejected"]


class Delivery(Record):
    status: DeliveryStatus = "pending"
    processed_at: Timestamp | None = None
    decision_id: RecordId | None = None


class Signal(Record):
    signal_id: RecordId
    signal_type: TypeName
    source_agent: AgentId
    target_agents: list[AgentId] = Field(min_length=1, max_length=MAX_TARGETS)
    severity: Severity = "medium"
    confidence: UnitFloat
    data: JsonObject = Field(default_factory=dict)
    context: JsonObject = Field(default_factory=dict)
    recommended_action: str | None = Field(None, max_length=500)
    created_at: Timestamp
    expires_at: Timestamp
    processing_status: dict[str, Delivery] = Field(default_factory=dict)

    def content_equals(self, other: Signal) -> bool:
        fields = ("signal_type", "target_agents", "severity", "confidence", "recommended_action")
        return all(getattr(self, f) == getattr(other, f) for f in fields) and all(
            limits.same_value(getattr(self, f), getattr(other, f)) for f in ("data", "context")
        )


class InboxEntry(Record):
    """One delivery of a signal to one target: the signal as published plus this target's status."""

    agent_id: AgentId
    signal: Signal
    delivery: Delivery


# --------------------------------------------------------------------------------------------------
# Short-term notes
# --------------------------------------------------------------------------------------------------


class Note(Record):
    agent_id: AgentId
    key: NoteKey
    value: JsonValue
    created_at: Timestamp
    expires_at: Timestamp


# --------------------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------------------

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        None, description="Pass back as `cursor` for the next page; null when there is no more."
    )


_WINDOW = re.compile(r"^\s*(\d{1,4})\s*([hdw])\s*$")


def parse_window(text: str, *, max_days: int = MAX_WINDOW_DAYS) -> timedelta:
    """'24h', '7d', '2w' -> timedelta, refusing anything else with a message saying the format."""
    from agent_memory.errors import InvalidInput

    match = _WINDOW.match(text)
    if not match:
        raise InvalidInput(f"invalid window {text!r}: use a number and a unit, e.g. '24h', '7d', '4w'")
    n, unit = int(match.group(1)), match.group(2)
    delta = timedelta(hours=n) if unit == "h" else timedelta(days=n * (7 if unit == "w" else 1))
    if not timedelta(hours=1) <= delta <= timedelta(days=max_days):
        raise InvalidInput(f"window {text!r} is out of range: use between 1h and {max_days}d")
    return delta
