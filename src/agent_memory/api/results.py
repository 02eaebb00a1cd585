"""Every tool's result, compact by default: lists carry summaries with bounded previews (the whole
record is one resource read away: ``memory://decisions/{id}``, ``memory://signals/{id}``), writes
answer ids, versions and flags. The services build these; the tools return them; the Python
client parses them.

A previewed field (longer than :data:`~agent_memory.api.compact.PREVIEW_CHARS` as JSON) becomes a
string ending in "…" and is named in the summary's ``truncated`` list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from keyword import iskeyword
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from agent_memory.api.compact import preview, utc_seconds
from agent_memory.memo import Memo
from agent_memory.models import (
    STATE_SECTIONS,
    AgentState,
    Decision,
    Delivery,
    InboxEntry,
    Note,
    Outcome,
    Page,
    Pattern,
    PatternEvidence,
    Signal,
    describe_condition,
)

Time = Annotated[datetime, PlainSerializer(utc_seconds, return_type=str)]
"""A time in results: UTC, to the second."""

STATE_BUDGET = 6000
"""Characters of state sections get_state returns before it previews the largest ones."""
TOP_IDS = 5


class Result(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @classmethod
    def built(cls, **values: Any) -> Self:
        """The result of ``values`` that the memory computed itself, without validating them
        again: what ``model_construct`` does, less its per-call look-ups (a page builds one
        summary per item, and validating them cost more than the query that found them). A
        missing required field or an unknown one is a TypeError.

        Each result class gets its own ``built``, its compiled maker (:func:`_maker`), when pydantic
        has made the class (:meth:`__pydantic_init_subclass__`): called straight, without this
        method's look-up and the repacking of its keywords, which were as much as the maker's
        own work (issue #14)."""
        make = _MAKERS.get(cls)
        if make is None:
            make = _MAKERS[cls] = _maker(cls)
        result: Self = make(**values)
        return result

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        make = _MAKERS[cls] = _maker(cls)
        setattr(cls, "built", staticmethod(make))  # noqa: B010 (mypy refuses assigning a method)


_MAKERS: dict[type[Result], Callable[..., Any]] = {}
_UNSET = object()


def _maker(cls: type[Result]) -> Callable[..., Any]:
    """``built`` for one result class, compiled once: a function whose keyword-only parameters are
    the fields (Python itself refuses a missing or unknown one), which fills the record's fields
    in their order and its set of given fields, as ``model_construct`` does. Only immutable
    defaults, which every result's optional fields have (None, mostly). Its own names start with
    "_", which no field's may."""
    env: dict[str, Any] = {"_cls": cls, "_UNSET": _UNSET, "_new": object.__new__}
    env["_setattr"] = object.__setattr__
    params: list[str] = []
    body: list[str] = []
    for i, (name, info) in enumerate(cls.model_fields.items()):
        if not name.isidentifier() or iskeyword(name) or name.startswith("_"):
            raise TypeError(f"{cls.__name__}.{name}: not a name a result field may have")
        if info.is_required():
            params.append(name)
            continue
        if info.default_factory is not None or not isinstance(info.default, str | int | float | type(None)):
            raise TypeError(f"{cls.__name__}.{name}: a result field's default must be immutable")
        env[f"_k{i}"] = info.default
        params.append(f"{name}=_UNSET")
        body += [f"    if {name} is _UNSET:", f"        {name} = _k{i}"]
        body += ["    else:", f"        _given.add({name!r})"]
    required = [n for n, info in cls.model_fields.items() if info.is_required()]
    fields = ", ".join(f"{n!r}: {n}" for n in cls.model_fields)
    source = "\n".join(
        [
            f"def {cls.__name__}_built(*, {', '.join(params)}):"
            if params
            else f"def {cls.__name__}_built():",
            f"    _given = {{{', '.join(repr(n) for n in required)}}}" if required else "    _given = set()",
            *body,
            "    _result = _new(_cls)",
            f"    _setattr(_result, '__dict__', {{{fields}}})",
            "    _setattr(_result, '__pydantic_fields_set__', _given)",
            "    _setattr(_result, '__pydantic_extra__', None)",
            "    _setattr(_result, '__pydantic_private__', None)",
            "    return _result",
        ]
    )
    exec(compile(source, f"<built {cls.__qualname__}>", "exec"), env)
    make: Callable[..., Any] = env[f"{cls.__name__}_built"]
    return make


_EMPTY: tuple[Any, ...] = (None, {}, [], "")
"""Values a summary leaves out rather than previews."""


def _previews(**fields: Any) -> tuple[dict[str, Any], list[str] | None]:
    out: dict[str, Any] = {}
    cut: list[str] = []
    for name, value in fields.items():
        if value in _EMPTY:
            continue
        shown, truncated = preview(value)
        out[name] = shown
        if truncated:
            cut.append(name)
    return out, cut or None


# --------------------------------------------------------------------------------------------------
# decisions and notes
# --------------------------------------------------------------------------------------------------


class DecisionSummary(Result):
    # Frozen: the summary of a stored item is shared by every answer that lists the item
    # (storage.records.base.summary_of).
    model_config = ConfigDict(extra="forbid", frozen=True)

    decision_id: str
    decision_type: str
    created_at: Time
    agent_id: str | None = Field(None, description="Set when not yours.")
    success: bool | None = Field(None, description="The outcome, once recorded.")
    quality_score: float | None = None
    parent_decision_id: str | None = None
    patterns_applied: int | None = Field(None, description="How many patterns it cited.")
    context: Any = None
    reasoning: Any = None
    truncated: list[str] | None = Field(None, description="Fields previewed: read memory://decisions/{id}.")

    @classmethod
    def of(cls, d: Decision, caller_agent: str | None = None) -> DecisionSummary:
        shown, cut = _previews(context=d.context, reasoning=d.reasoning)
        return cls.built(
            decision_id=d.decision_id,
            decision_type=d.decision_type,
            created_at=d.created_at,
            agent_id=None if d.agent_id == caller_agent else d.agent_id,
            success=d.outcome.success if d.outcome else None,
            quality_score=d.outcome.quality_score if d.outcome else None,
            parent_decision_id=d.parent_decision_id,
            patterns_applied=len(d.patterns_applied) or None,
            truncated=cut,
            **shown,
        )

    @classmethod
    def of_stored(cls, data: Mapping[str, Any], caller_agent: str | None = None) -> DecisionSummary:
        """What :meth:`of` gives for the decision of ``data``, its JSON form as the stores keep it
        (``Decision.model_dump(mode="json")`` without the fields that hold their default, plus key
        attributes), without building the :class:`Decision`: a page of summaries read is most of
        recall_stm's and search_decisions' work (issue #14). Raises KeyError, TypeError or
        ValueError for data of another shape: the caller builds the record instead (which
        validates it); tests hold the two paths to the same summaries."""
        _stored_time(data["expires_at"])
        outcome = data.get("outcome")
        if outcome is not None:
            _check_outcome(outcome)
        patterns = data.get("patterns_applied")
        if patterns is not None and type(patterns) is not list:
            raise TypeError("patterns_applied is not a list")
        agent = data["agent_id"]
        context, reasoning = data.get("context"), data.get("reasoning")
        cut: list[str] | None = None
        # _previews, written out for the two fields (a page makes one summary per item).
        if context in _EMPTY:
            context = None
        else:
            context, truncated = preview(context)
            if truncated:
                cut = ["context"]
        if reasoning in _EMPTY:
            reasoning = None
        else:
            reasoning, truncated = preview(reasoning)
            if truncated:
                cut = [*(cut or ()), "reasoning"]
        return cls.built(
            decision_id=data["decision_id"],
            decision_type=data["decision_type"],
            created_at=_stored_time(data["created_at"]),
            agent_id=None if agent == caller_agent else agent,
            success=outcome["success"] if outcome else None,
            quality_score=outcome.get("quality_score") if outcome else None,
            parent_decision_id=data.get("parent_decision_id"),
            patterns_applied=len(patterns) if patterns else None,
            context=context,
            reasoning=reasoning,
            truncated=cut,
        )


_OUTCOME_FIELDS = frozenset(Outcome.model_fields)
_NUMBERS = (int, float)


def _check_outcome(outcome: Any) -> None:
    """ValueError unless ``outcome`` is an outcome as the stores keep it, whose values read back as
    the record holds them (the checks of ``stored(Outcome, ...)``)."""
    if type(outcome) is not dict or not outcome.keys() <= _OUTCOME_FIELDS:
        raise ValueError("an outcome of another shape")
    if type(outcome.get("success")) is not bool:
        raise ValueError("an outcome without a success flag")
    if "recorded_at" in outcome:
        _stored_time(outcome["recorded_at"])
    for name in ("quality_score", "latency_ms"):
        value = outcome.get(name)
        if value is not None and type(value) not in _NUMBERS:
            raise ValueError(f"outcome {name} is not a number")
    count = outcome.get("signals_generated", 0)
    if type(count) is not int and not (type(count) is float and count.is_integer()):
        raise ValueError("outcome signals_generated is not an integer")
    if type(outcome.get("errors", [])) is not list:
        raise ValueError("outcome errors is not a list")


def _stored_time(value: Any) -> datetime:
    """A time as the stores keep it (ISO 8601 with its offset), in UTC; ValueError otherwise."""
    if type(value) is not str:
        raise ValueError(f"not a stored time: {value!r}")
    found = _STORED_TIMES.get(value)
    if found is not None:
        return found
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"not a stored time: {value!r}")
    return _STORED_TIMES.keep(value, parsed if parsed.tzinfo is UTC else parsed.astimezone(UTC))


_STORED_TIMES: Memo[str, datetime] = Memo(4096)
"""Stored times remembered by their text: a page of summaries reads the same times on every call
(a recent decision's, a note's expiry), and a time parsed once is one object, whose hash (the
memo of its text in results, :func:`~agent_memory.api.compact.utc_seconds`) it keeps (issue #14).
A datetime is immutable: every summary may hold the same one."""


class NoteSummary(Result):
    model_config = ConfigDict(extra="forbid", frozen=True)  # shared, as DecisionSummary

    key: str
    value: Any = Field(None, description="The value, or a preview when long.")
    truncated: bool | None = None
    expires_at: Time

    @classmethod
    def of(cls, n: Note) -> NoteSummary:
        shown, cut = preview(n.value)
        return cls.built(key=n.key, value=shown, truncated=cut or None, expires_at=n.expires_at)

    @classmethod
    def of_stored(cls, data: Mapping[str, Any]) -> NoteSummary:
        """What :meth:`of` gives for the note of ``data``, its fields as the stores keep them
        (plus key attributes the caller checked are all else it holds), without building the
        :class:`Note` (its two times parsed, its dict copied without the keys: most of a note's
        share of recall_stm; issue #14). Raises KeyError or ValueError where ``stored(Note, ...)``
        would validate the item instead: the caller builds the record then."""
        _stored_time(data["created_at"])
        if "agent_id" not in data:  # (required: a note without it is validated, so refused)
            raise KeyError("agent_id")
        shown, cut = preview(data["value"])
        return cls.built(
            key=data["key"], value=shown, truncated=cut or None, expires_at=_stored_time(data["expires_at"])
        )


class ShortTermResult(Result):
    window_hours: int
    decisions: list[DecisionSummary] = Field(description="Newest first.")
    notes: list[NoteSummary] = Field(description="Your live notes (first page only; they count in limit).")
    more_notes: bool | None = Field(None, description="More notes exist than shown.")
    pending_signals: int = Field(description="Signals in your inbox (read_inbox); counted to 100.")
    next_cursor: str | None = None


class DecisionPage(Result):
    decisions: list[DecisionSummary] = Field(description="Summaries; memory://decisions/{id} for all.")
    next_cursor: str | None = None

    @classmethod
    def of(cls, page: Page[Decision], caller_agent: str | None = None) -> DecisionPage:
        return cls.built(
            decisions=[DecisionSummary.of(d, caller_agent) for d in page.items], next_cursor=page.next_cursor
        )


class LogDecisionResult(Result):
    decision_id: str
    created: bool = Field(description="False: this decision_id was already logged (a retry).")


class OutcomeResult(Result):
    decision_id: str
    recorded: bool = Field(description="False: the same outcome was already recorded.")


class NoteResult(Result):
    key: str
    expires_at: Time

    @classmethod
    def of(cls, n: Note) -> NoteResult:
        return cls.built(key=n.key, expires_at=n.expires_at)


# --------------------------------------------------------------------------------------------------
# patterns
# --------------------------------------------------------------------------------------------------


class PatternReports(Result):
    """Applications reported by decisions citing the pattern (by any agent), kept apart from the
    author's own: evidence to read, never a change of the author's pattern by itself."""

    applied_count: int
    applied_successes: int
    author_applied_count: int


class PatternSummary(Result):
    pattern_id: str
    version: int
    agent_id: str | None = Field(None, description="Author, when not you.")
    description: str
    when: str = Field(description="Its conditions, joined by AND.")
    confidence: float
    success_rate: float
    sample_size: int
    decision_type: str | None = None
    domain: str
    shared_with: list[str] | None = None
    status: str | None = Field(None, description="Set when not active.")
    applied_success_rate: float | None = Field(None, description="Success when cited in decisions.")
    evidence: PatternEvidence | None = Field(
        None, description="Another agent's pattern: what the memory measured (its figures are claims)."
    )
    feedback: PatternReports | None = Field(None, description="Set once decisions citing it have outcomes.")
    truncated: list[str] | None = None

    @classmethod
    def of(cls, p: Pattern, caller_agent: str | None = None) -> PatternSummary:
        when = " AND ".join([c.describe() for c in p.conditions]) or "always"
        when_shown, when_cut = preview(when)
        desc_shown, desc_cut = preview(p.description)
        cut = [n for n, c in (("description", desc_cut), ("when", when_cut)) if c] or None
        fb = p.feedback
        return cls.built(
            pattern_id=p.pattern_id,
            version=p.version,
            agent_id=None if p.agent_id == caller_agent else p.agent_id,
            description=desc_shown,
            when=when_shown,
            confidence=p.confidence,
            success_rate=p.success_rate,
            sample_size=p.sample_size,
            decision_type=p.decision_type,
            domain=p.domain,
            shared_with=p.shared_with or None,
            status=None if p.status == "active" else p.status,
            applied_success_rate=fb.applied_success_rate,
            evidence=p.evidence,
            feedback=PatternReports.built(
                applied_count=fb.applied_count,
                applied_successes=fb.applied_successes,
                author_applied_count=fb.author_applied_count,
            )
            if fb.applied_count
            else None,
            truncated=cut,
        )

    @classmethod
    def of_stored(
        cls,
        data: Mapping[str, Any],
        caller_agent: str | None,
        *,
        confidence: float,
        success_rate: float,
        sample_size: int,
        version: int,
        applied: int,
        successes: int,
        author_applied: int,
        evidence: PatternEvidence | None,
    ) -> PatternSummary:
        """What :meth:`of` gives for the pattern of ``data``, its fields as the stores keep them
        (conditions as dicts), given the values its record would hold for the numbers and its
        counters, without building the :class:`Pattern` (issue #14). The caller checked the shape
        (``storage.records.patterns.plain_pattern``); tests hold the two paths to the same summaries."""
        conditions = data["conditions"]
        described = [describe_condition(c["field"], c.get("op", "eq"), c.get("value")) for c in conditions]
        when = " AND ".join(described) or "always"
        when_shown, when_cut = preview(when)
        desc_shown, desc_cut = preview(data["description"])
        cut = [n for n, c in (("description", desc_cut), ("when", when_cut)) if c] or None
        agent, status = data["agent_id"], data.get("status", "active")
        return cls.built(
            pattern_id=data["pattern_id"],
            version=version,
            agent_id=None if agent == caller_agent else agent,
            description=desc_shown,
            when=when_shown,
            confidence=confidence,
            success_rate=success_rate,
            sample_size=sample_size,
            decision_type=data.get("decision_type"),
            domain=data.get("domain", "general"),
            shared_with=data.get("shared_with") or None,
            status=None if status == "active" else status,
            applied_success_rate=successes / applied if applied else None,
            evidence=evidence,
            feedback=PatternReports.built(
                applied_count=applied, applied_successes=successes, author_applied_count=author_applied
            )
            if applied
            else None,
            truncated=cut,
        )


class PatternList(Result):
    patterns: list[PatternSummary] = Field(description="Highest confidence first.")

    @classmethod
    def of(cls, patterns: list[Pattern], caller_agent: str | None = None) -> PatternList:
        return cls.built(patterns=[PatternSummary.of(p, caller_agent) for p in patterns])


class PatternResult(Result):
    pattern_id: str
    version: int
    shared_with: list[str] | None = None


class LearnResult(Result):
    decisions_examined: int
    baseline_success_rate: float | None = None
    created: int
    updated: int
    unchanged: int
    superseded: int
    top_pattern_ids: list[str] = Field(description=f"Up to {TOP_IDS} created or updated, best first.")
    note: str


# --------------------------------------------------------------------------------------------------
# signals
# --------------------------------------------------------------------------------------------------


class PublishResult(Result):
    signal_id: str
    created: bool = Field(description="False: this signal_id was already published (a retry).")
    targets: int = Field(description="Agents it was delivered to.")
    unregistered_targets: list[str] | None = Field(
        None, description="Targets never seen yet: check the spelling (they still get it)."
    )
    expires_at: Time


class SignalSummary(Result):
    signal_id: str
    signal_type: str
    source_agent: str
    severity: str
    confidence: float
    created_at: Time
    expires_at: Time
    recommended_action: str | None = None
    data: Any = None
    context: Any = None
    status: str | None = Field(None, description="Your delivery's status when not pending.")
    decision_id: str | None = None
    truncated: list[str] | None = Field(None, description="Fields previewed: read memory://signals/{id}.")

    @classmethod
    def of(cls, e: InboxEntry) -> SignalSummary:
        s = e.signal
        shown, cut = _previews(data=s.data, context=s.context, recommended_action=s.recommended_action)
        return cls.built(
            signal_id=s.signal_id,
            signal_type=s.signal_type,
            source_agent=s.source_agent,
            severity=s.severity,
            confidence=s.confidence,
            created_at=s.created_at,
            expires_at=s.expires_at,
            status=None if e.delivery.status == "pending" else e.delivery.status,
            decision_id=e.delivery.decision_id,
            truncated=cut,
            **shown,
        )

    @classmethod
    def of_stored(cls, signal: Mapping[str, Any], delivery: Mapping[str, Any]) -> SignalSummary:
        """What :meth:`of` gives for an inbox entry whose signal and delivery are ``signal`` and
        ``delivery`` in their JSON form as the stores keep them (``model_dump(mode="json")``),
        without building the entry: building it and then its summary was most of read_inbox's own
        work (issue #14). Raises KeyError, TypeError or ValueError for data of another shape: the
        caller builds the entry instead (which validates it); tests hold the two paths to the
        same summaries."""
        if type(signal) is not dict or not (_SIGNAL_REQUIRED <= signal.keys() <= _SIGNAL_FIELDS):
            raise ValueError("a signal of another shape")
        if type(delivery) is not dict or not delivery.keys() <= _DELIVERY_FIELDS:
            raise ValueError("a delivery of another shape")
        if signal.get("processing_status"):  # an inbox entry's copy of the signal holds none
            raise ValueError("a signal with deliveries")
        confidence = signal["confidence"]
        if type(confidence) not in _NUMBERS:
            raise ValueError("a confidence that is not a number")
        if delivery.get("processed_at") is not None:
            _stored_time(delivery["processed_at"])
        status = delivery.get("status", "pending")
        shown, cut = _previews(
            data=signal.get("data"),
            context=signal.get("context"),
            recommended_action=signal.get("recommended_action"),
        )
        return cls.built(
            signal_id=signal["signal_id"],
            signal_type=signal["signal_type"],
            source_agent=signal["source_agent"],
            severity=signal.get("severity", "medium"),
            confidence=float(confidence),
            created_at=_stored_time(signal["created_at"]),
            expires_at=_stored_time(signal["expires_at"]),
            status=None if status == "pending" else status,
            decision_id=delivery.get("decision_id"),
            truncated=cut,
            **shown,
        )


_SIGNAL_FIELDS = frozenset(Signal.model_fields)
_SIGNAL_REQUIRED = frozenset(n for n, info in Signal.model_fields.items() if info.is_required())
_DELIVERY_FIELDS = frozenset(Delivery.model_fields)


class InboxPage(Result):
    entries: list[SignalSummary] = Field(description="Newest first.")
    next_cursor: str | None = None

    @classmethod
    def of(cls, page: Page[InboxEntry]) -> InboxPage:
        entries = [SignalSummary.of(e) for e in page.items]
        return cls.built(entries=entries, next_cursor=page.next_cursor)


class AckResult(Result):
    signal_id: str
    status: Literal["processed", "rejected"]
    acknowledged: bool = Field(description="False: already acknowledged the same way.")
    decision_id: str | None = None


# --------------------------------------------------------------------------------------------------
# state
# --------------------------------------------------------------------------------------------------


class StateResult(Result):
    agent_id: str
    version: int = Field(description="Pass as expected_version to update_state; 0 = never written.")
    updated_at: Time | None = None
    current: Any = None
    configuration: Any = None
    source_metrics: Any = None
    context_performance: Any = None
    truncated: list[str] | None = Field(None, description="Sections previewed: get_state(section=...).")

    @classmethod
    def of(cls, s: AgentState, section: str | None = None) -> StateResult:
        sections = {name: getattr(s, name) for name in STATE_SECTIONS if section in (None, name)}
        shown: dict[str, Any] = {k: v for k, v in sections.items() if v}
        cut: list[str] = []
        if section is None:
            # Preview the largest sections until the rest fits the budget.
            sizes = sorted(((len(str(v)), k) for k, v in shown.items()), reverse=True)
            total = sum(n for n, _ in sizes)
            for n, name in sizes:
                if total <= STATE_BUDGET:
                    break
                shown[name], _ = preview(shown[name])
                total -= n
                cut.append(name)
        return cls.built(
            agent_id=s.agent_id,
            version=s.version,
            updated_at=s.updated_at,
            truncated=sorted(cut) or None,
            **shown,
        )


class StateWritten(Result):
    version: int
    checkpoint: str | None = None


# --------------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------------


class ErrorResult(Result):
    """The structured content of every tool error: what went wrong, in data."""

    code: str = Field(description="Stable: invalid_input, not_found, version_conflict, ...")
    message: str = Field(description="What to change.")
    retryable: bool = Field(description="Whether the same call may succeed later.")
    retry_after_s: float | None = None
    current: dict[str, Any] | None = Field(None, description="A conflict's record as it is now (summary).")


def summarize(record: Any, caller_agent: str | None = None) -> dict[str, Any] | None:
    """The compact form of a record a conflict carries (as a tool result would show it)."""
    summary: Result | None
    if isinstance(record, AgentState):
        summary = StateResult.of(record)
    elif isinstance(record, Decision):
        summary = DecisionSummary.of(record, caller_agent)
    elif isinstance(record, Pattern):
        summary = PatternSummary.of(record, caller_agent)
    elif isinstance(record, InboxEntry):
        summary = SignalSummary.of(record)
    elif isinstance(record, Signal):
        summary = SignalSummary.of(
            InboxEntry(agent_id=record.source_agent, signal=record, delivery=Delivery())
        )
    elif isinstance(record, BaseModel):
        return record.model_dump(mode="json", exclude_none=True)
    else:
        return None
    return summary.model_dump(mode="json", exclude_none=True)


class AnalyticsResult(Result):
    """The analytics report (fields as documented in docs/ANALYTICS.md), without nulls, with floats
    rounded, and without sections that would repeat the totals (one agent's breakdown)."""

    model_config = ConfigDict(extra="allow")


# --------------------------------------------------------------------------------------------------
# budgets
# --------------------------------------------------------------------------------------------------


class BudgetStatus(Result):
    """The answer to one consume (or check) of a rate-limit budget."""

    allowed: bool = Field(description="True: the units are yours, make the call. False: nothing was taken.")
    key: str
    limit: int
    cost: int = Field(description="Units this call asked for (0 = only checked).")
    used: int = Field(description="Units used in the current window, after this call.")
    remaining: int = Field(description="Units left in the current window.")
    window: str
    reset_at: Time = Field(description="When the current window ends and the budget is full again (UTC).")
    retry_after_s: float | None = Field(
        None, description="When not allowed: seconds until the window resets."
    )
