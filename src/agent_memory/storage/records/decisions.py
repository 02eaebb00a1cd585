"""Decision records: the decision, its id item, outcomes, and the key paths of decision queries."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from agent_memory import rollups
from agent_memory.api.results import DecisionSummary
from agent_memory.errors import Conflict, InvalidInput, NotFound
from agent_memory.models import Decision, Outcome, Page
from agent_memory.storage import keys
from agent_memory.storage.engine import Cond, ConditionFailed, IndexName, Item, Put, Update, WriteOp
from agent_memory.storage.records.base import (
    KEY_ATTRS,
    REQUEST_TOKEN,
    dump_compact,
    json_time,
    new_request_token,
    stored,
    strip_keys,
    summary_of,
    write_once,
)
from agent_memory.storage.records.patterns import feedback_ops
from agent_memory.storage.records.quotas import Charge, Counted, QuotaRecords
from agent_memory.storage.records.rollups import rollup_ops

R = TypeVar("R")


@dataclass(frozen=True)
class DecisionRef:
    """What the id item of a decision knows: enough to attach an outcome in one transaction."""

    decision_id: str
    agent_id: str
    decision_type: str
    created_at: datetime
    memory_influenced: bool
    pattern_refs: tuple[tuple[str, str], ...]
    """(author, pattern_id) of every pattern the decision applied."""
    pk: str
    sk: str


@dataclass(frozen=True)
class DecisionQuery:
    agent_id: str | None
    """None = every agent (needs ``decision_type``: the by-type index)."""
    decision_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    success: bool | None = None
    newest_first: bool = True
    consistent: bool = True
    """False = staleness-tolerant (older history): may be served from DAX."""


class DecisionRecords(QuotaRecords):
    async def put_decision(
        self, decision: Decision, pattern_refs: Sequence[tuple[str, str]] = (), charge: Charge | None = None
    ) -> tuple[Decision, bool]:
        """Create a decision (and its outcome, if given) idempotently.

        One transaction: the decision, its id item, two rollup counters, and access counters of
        applied patterns. Returns (decision, created). A retry with the same ``decision_id`` and
        payload returns the stored decision with created=False; another payload is a Conflict.
        Ids are per author: another agent's decision with the same id is another record.
        Requests: 1 transaction (+1 get + 1 get when the id already exists).
        """
        d = decision
        pk, sk = keys.decision_pk(d.agent_id, d.decision_type), keys.decision_sk(d.created_at, d.decision_id)
        ttl = keys.epoch(d.expires_at)
        token = new_request_token()
        item: Item = {
            **decision_fields(d),
            "pk": pk,
            "sk": sk,
            "ttl": ttl,
            "gsi2pk": keys.decision_type_pk(d.decision_type),
            "gsi2sk": keys.decision_type_sk(d.created_at, d.agent_id, d.decision_id),
            "gsi3pk": keys.decision_timeline_pk(d.agent_id),
            "gsi3sk": sk,  # (the timeline's sort key is the decision's own)
        }
        delta = rollups.decision_logged(d.memory_influenced)
        if d.outcome is not None:
            item["outcome"] = outcome_fields(d.outcome)
            item["gsi1pk"] = keys.decision_success_pk(d.agent_id, d.outcome.success)
            item["gsi1sk"] = keys.decision_sk(d.created_at, d.decision_id)
            delta = rollups.merge(delta, rollups.outcome_recorded(d.outcome, d.memory_influenced))
        # The id item, in the author's own partitions (ids are per author), holds what the
        # decision's key is built from; items of earlier versions also carried decision_id,
        # ref_pk and ref_sk: both are read.
        id_item: Item = {
            "pk": keys.decision_id_pk(d.agent_id, d.decision_id),
            "sk": keys.ID_SK,
            "ttl": ttl,
            "agent_id": d.agent_id,
            "decision_type": d.decision_type,
            "created_at": keys.iso(d.created_at),
            REQUEST_TOKEN: token,
        }
        if d.memory_influenced:
            id_item["memory_influenced"] = True
        if pattern_refs:
            id_item["pattern_refs"] = [list(ref) for ref in pattern_refs]
        ops: list[WriteOp] = [
            Put("decisions", id_item, (Cond.not_exists(),)),
            Put("decisions", item, (Cond.not_exists(),)),
            *rollup_ops(d.agent_id, d.created_at, d.decision_type, delta),
            *feedback_ops(pattern_refs, applied=False, success=None, now=d.created_at, by=d.agent_id),
        ]
        try:
            counted = Counted(1, [id_item, item], d.expires_at)
            if await write_once(lambda: self.counted_write(ops, charge, counted), token) is not None:
                return d, True  # this very call wrote it; only its first answer was lost
        except ConditionFailed as exc:
            if exc.index not in (0, 1):
                raise
            # The id is taken in the author's own space: by the author itself, so the answer
            # tells nothing about any other agent.
            existing = await self.get_decision(d.agent_id, d.decision_id)
            if existing is None:
                raise Conflict(
                    f"decision_id {d.decision_id!r} is being written concurrently: retry the call"
                ) from exc
            if not existing.content_equals(d):
                raise Conflict(
                    f"decision {d.decision_id!r} was already logged with different content: "
                    "use a new decision_id for a new decision, or resend the original payload",
                    current=existing,
                ) from exc
            return existing, False
        return d, True

    async def get_decision_ref(self, agent: str, decision_id: str) -> DecisionRef | None:
        """The id item of one of ``agent``'s decisions. Requests: 1 consistent get."""
        item = await self.engine.get("decisions", keys.decision_id_pk(agent, decision_id), keys.ID_SK)
        if not self._live(item):
            return None
        assert item is not None
        created_at = datetime.fromisoformat(item["created_at"].replace("Z", "+00:00"))
        agent, decision_type = item["agent_id"], item["decision_type"]
        return DecisionRef(
            decision_id=decision_id,
            agent_id=agent,
            decision_type=decision_type,
            created_at=created_at,
            memory_influenced=bool(item.get("memory_influenced", False)),
            pattern_refs=tuple((a, p) for a, p in item.get("pattern_refs", [])),
            pk=item.get("ref_pk") or keys.decision_pk(agent, decision_type),
            sk=item.get("ref_sk") or keys.decision_sk(created_at, decision_id),
        )

    async def get_decision(self, agent: str, decision_id: str) -> Decision | None:
        """One of ``agent``'s decisions by its id. Requests: 2 consistent gets."""
        ref = await self.get_decision_ref(agent, decision_id)
        if ref is None:
            return None
        item = await self.engine.get("decisions", ref.pk, ref.sk)
        return _decision(item) if self._live(item) and item is not None else None

    async def set_outcome(self, ref: DecisionRef, outcome: Outcome) -> tuple[Decision, bool]:
        """:meth:`attach_outcome`, answering the decision as stored. Requests: 1 transaction and
        1 consistent get (the decision as stored, returned to the caller)."""
        current = await self.attach_outcome(ref, outcome)
        if current is not None:
            return current, False
        item = await self.engine.get("decisions", ref.pk, ref.sk)
        assert item is not None
        return _decision(item), True

    async def attach_outcome(self, ref: DecisionRef, outcome: Outcome) -> Decision | None:
        """Attach an outcome once. Returns None when this call attached it; the decision as stored
        when it already has the same outcome (a no-op); another outcome: Conflict.

        One transaction: the decision (conditional on having no outcome), its two rollup items,
        and the effectiveness counters of the patterns it applied. Requests: 1 transaction.
        """
        gsi_sk = keys.decision_sk(ref.created_at, ref.decision_id)
        ops: list[WriteOp] = [
            Update(
                "decisions",
                ref.pk,
                ref.sk,
                set={
                    "outcome": outcome_fields(outcome),
                    "gsi1pk": keys.decision_success_pk(ref.agent_id, outcome.success),
                    "gsi1sk": gsi_sk,
                },
                conditions=(Cond.exists(), Cond.lacks("outcome")),
            ),
            *rollup_ops(
                ref.agent_id,
                ref.created_at,
                ref.decision_type,
                rollups.outcome_recorded(outcome, ref.memory_influenced),
            ),
            *feedback_ops(
                ref.pattern_refs,
                applied=True,
                success=outcome.success,
                now=outcome.recorded_at,
                by=ref.agent_id,
            ),
        ]
        try:
            await self.engine.write(ops)
        except ConditionFailed as exc:
            if exc.index != 0 or exc.item is None:
                if exc.index != 0:
                    raise
                raise NotFound(f"decision {ref.decision_id!r} has expired") from exc
            current = _decision(exc.item)
            assert current.outcome is not None
            if _same_outcome(current.outcome, outcome):
                return current
            raise Conflict(
                f"decision {ref.decision_id!r} already has an outcome (success={current.outcome.success}, "
                f"recorded {keys.iso(current.outcome.recorded_at)}); outcomes are recorded once: "
                "log a follow-up decision with parent_decision_id to record a later result",
                current=current,
            ) from exc
        return None

    async def query_decision_summaries(
        self, q: DecisionQuery, *, limit: int, cursor: str | None, caller_agent: str | None
    ) -> Page[DecisionSummary]:
        """:meth:`query_decisions` as the summaries a list shows (``DecisionSummary.of`` of each
        decision, as seen by ``caller_agent``), made from the stored items without building each
        :class:`Decision` first (an item of another shape is built, so validated, as before)."""

        def summary(item: Item) -> DecisionSummary:
            return summary_of(_decision_summary, item, caller_agent)

        return await self._decision_page(q, summary, limit=limit, cursor=cursor)

    async def query_decisions(self, q: DecisionQuery, *, limit: int, cursor: str | None) -> Page[Decision]:
        """Decisions newest first (or oldest first), choosing the key path by the filters:

        - agent + type       -> table, pk agent:{a}#decision#{T}, sk time range (success filtered)
        - agent + success    -> gsi1 agent:{a}#success#{s}
        - agent              -> gsi3 agent:{a}#decisions
        - type, all agents   -> gsi2 decision_type#{T} (success filtered)
        Requests: ceil(examined / page) queries, at most MAX_SCANNED items examined per call.
        """
        return await self._decision_page(q, _decision, limit=limit, cursor=cursor)

    async def _decision_page(
        self, q: DecisionQuery, convert: Callable[[Item], R], *, limit: int, cursor: str | None
    ) -> Page[R]:
        lo = keys.iso(q.since) if q.since else None
        hi = keys.iso(q.until) + "\uffff" if q.until else None
        keep: Callable[[Item], bool] | None = None
        if q.success is not None:
            want = q.success

            def keep(item: Item) -> bool:
                out = item.get("outcome")
                return isinstance(out, dict) and out.get("success") is want

        index: IndexName | None
        if q.agent_id is not None and q.decision_type is not None:
            index, pk = None, keys.decision_pk(q.agent_id, q.decision_type)
        elif q.agent_id is not None and q.success is not None:
            index, pk, keep = "gsi1", keys.decision_success_pk(q.agent_id, q.success), None
        elif q.agent_id is not None:
            index, pk = "gsi3", keys.decision_timeline_pk(q.agent_id)
        elif q.decision_type is not None:
            index, pk = "gsi2", keys.decision_type_pk(q.decision_type)
        else:
            raise InvalidInput("searching across agents needs a decision_type")
        return await self._page(
            "decisions",
            pk,
            convert,
            limit=limit,
            cursor=cursor,
            digest_parts=(q.success,),
            index=index,
            sk_gte=lo,
            sk_lte=hi,
            forward=not q.newest_first,
            consistent=q.consistent,
            keep=keep,
        )


def decision_fields(d: Decision) -> dict[str, Any]:
    """``dump_compact(d, "outcome")``, built field by field: the fields not at their default, times
    as pydantic writes them (its dump was a tenth of a decision's write on the embedded store;
    issue #14). A record of another shape (a subclass, a time not in UTC, a payload of tuples,
    which validation never leaves) is dumped by pydantic."""
    if (
        type(d) is not Decision
        or d.created_at.tzinfo is not UTC
        or d.expires_at.tzinfo is not UTC
        or type(d.context) is not dict
        or type(d.reasoning) is not dict
        or type(d.patterns_applied) is not list
    ):
        return dump_compact(d, "outcome")
    out: dict[str, Any] = {"decision_id": d.decision_id, "agent_id": d.agent_id}
    if d.agent_version is not None:
        out["agent_version"] = d.agent_version
    out["decision_type"] = d.decision_type
    out["created_at"] = json_time(d.created_at)
    out["expires_at"] = json_time(d.expires_at)
    if d.context:
        out["context"] = d.context
    if d.reasoning:
        out["reasoning"] = d.reasoning
    if d.parent_decision_id is not None:
        out["parent_decision_id"] = d.parent_decision_id
    if d.parent_agent_id is not None:
        out["parent_agent_id"] = d.parent_agent_id
    if d.patterns_applied:
        out["patterns_applied"] = list(d.patterns_applied)
    if d.memory_influenced:
        out["memory_influenced"] = True
    return out


def outcome_fields(o: Outcome) -> dict[str, Any]:
    """``dump_compact(o)``, built field by field (see :func:`decision_fields`)."""
    if type(o) is not Outcome or o.recorded_at.tzinfo is not UTC or type(o.errors) is not list:
        return dump_compact(o)
    out: dict[str, Any] = {"success": o.success}
    if o.quality_score is not None:
        out["quality_score"] = o.quality_score
    if o.latency_ms is not None:
        out["latency_ms"] = o.latency_ms
    if o.signals_generated:
        out["signals_generated"] = o.signals_generated
    if o.errors:
        out["errors"] = list(o.errors)
    out["recorded_at"] = json_time(o.recorded_at)
    return out


def _decision(item: Item) -> Decision:
    return stored(Decision, strip_keys(item))


def _decision_summary(item: Item, caller_agent: str | None) -> DecisionSummary:
    if item.keys() <= _DECISION_ITEM_KEYS:
        try:
            return DecisionSummary.of_stored(item, caller_agent)
        except (KeyError, TypeError, ValueError):
            pass
    return DecisionSummary.of(_decision(item), caller_agent)


_DECISION_ITEM_KEYS = frozenset(Decision.model_fields) | KEY_ATTRS
"""What a decision's item holds: its fields (those not at their default) and key attributes."""


def _same_outcome(a: Outcome, b: Outcome) -> bool:
    return a.model_dump(exclude={"recorded_at"}) == b.model_dump(exclude={"recorded_at"})
