"""The typed storage contract: records in, records out, over any :class:`ItemEngine`.

This module is the only place that knows how records map onto items (with :mod:`keys`). It
enforces what must hold on every backend: conditional creates, versioned updates, idempotent
retries, transactional fan-out, rollups written in the same transaction as what they count, expiry
filtered on every read, opaque cursors. Access rules (who may read what) live one layer up, in
:mod:`agent_memory.memory`.

Every method documents the requests it sends; docs/DYNAMODB.md tabulates them per tool.
Raises: :class:`Conflict` / :class:`VersionConflict` (with the current record),
:class:`NotFound`, :class:`InvalidInput`, :class:`LimitExceeded`, :class:`StorageUnavailable`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from agent_memory import rollups
from agent_memory.errors import Conflict, InvalidInput, NotFound, VersionConflict
from agent_memory.models import (
    AgentProfile,
    AgentState,
    Decision,
    Delivery,
    DeliveryStatus,
    InboxEntry,
    Note,
    Outcome,
    Page,
    Pattern,
    PatternFeedback,
    Signal,
    StateCheckpoint,
)
from agent_memory.storage import cursor as cursors
from agent_memory.storage import keys
from agent_memory.storage.engine import (
    Cond,
    ConditionFailed,
    Delete,
    IndexName,
    Item,
    ItemEngine,
    Key,
    Put,
    TableName,
    Update,
    WriteOp,
)

R = TypeVar("R")
STORED = {"stored": True}
"""Validation context of records read back from storage (see models._payload)."""
MAX_SCANNED = 1000
"""Most items one filtered query examines before it returns a partial page with a cursor: keeps
every call's cost bounded even when a filter rejects most of a partition."""

_KEY_ATTRS = ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk", "ttl")


def _strip(item: Item, *extra: str) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in _KEY_ATTRS and k not in extra}


def _dump(record: BaseModel, *exclude: str) -> dict[str, Any]:
    return record.model_dump(mode="json", exclude=set(exclude) or None)


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


@dataclass(frozen=True)
class RollupRow:
    bucket: str
    decision_type: str | None
    counters: dict[str, Any]


class MemoryStore:
    """Records over an item engine. Construct with the engine and a clock (tests pass a fake)."""

    def __init__(self, engine: ItemEngine, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.clock = clock

    # ------------------------------------------------------------------------------------------
    # generic helpers
    # ------------------------------------------------------------------------------------------

    def _live(self, item: Item | None, now: datetime | None = None) -> bool:
        """Expiry is enforced on read: an item past its ``ttl`` is gone, whether or not the
        backend has deleted it yet (DynamoDB's TTL deletion lags by up to two days)."""
        if item is None:
            return False
        ttl = item.get("ttl")
        return ttl is None or ttl > (now or self.clock()).timestamp()

    async def _page(
        self,
        table: TableName,
        pk: str,
        convert: Callable[[Item], R],
        *,
        limit: int,
        cursor: str | None,
        digest_parts: Sequence[Any],
        index: IndexName | None = None,
        sk_gte: str | None = None,
        sk_lte: str | None = None,
        sk_prefix: str | None = None,
        forward: bool = True,
        consistent: bool = True,
        keep: Callable[[Item], bool] | None = None,
    ) -> Page[R]:
        """One page of a (possibly filtered) query with an opaque cursor.

        Expired items are always dropped. The cursor is the key of the last item examined, so a
        filter never makes a page skip or repeat items.
        """
        digest = cursors.query_digest(table, index, pk, sk_gte, sk_lte, sk_prefix, forward, *digest_parts)
        start = cursors.decode(cursor, digest)
        now = self.clock()
        out: list[R] = []
        scanned = 0
        while True:
            want = min(limit - len(out) + 1 if keep is None else 100, MAX_SCANNED - scanned)
            page = await self.engine.query(
                table,
                pk,
                index=index,
                sk_gte=sk_gte,
                sk_lte=sk_lte,
                sk_prefix=sk_prefix,
                forward=forward,
                limit=max(1, want),
                start=start,
                consistent=consistent,
            )
            for item in page.items:
                scanned += 1
                if self._live(item, now) and (keep is None or keep(item)):
                    if len(out) == limit:
                        # One more matching item exists: the page is full and has a successor.
                        assert start is not None
                        return Page(items=out, next_cursor=cursors.encode(start, digest))
                    out.append(convert(item))
                start = _key_of(item, index)
                if scanned >= MAX_SCANNED:
                    return Page(items=out, next_cursor=cursors.encode(start, digest))
            if page.last_key is None:
                return Page(items=out, next_cursor=None)
            start = page.last_key

    # ------------------------------------------------------------------------------------------
    # decisions
    # ------------------------------------------------------------------------------------------

    def _rollup_ops(
        self, agent: str, created: datetime, decision_type: str, delta: rollups.Delta
    ) -> list[Update]:
        return [
            Update(
                "state",
                keys.rollup_pk(agent, grain),
                keys.rollup_sk(keys.bucket(created, grain), decision_type),
                set={"bucket": keys.bucket(created, grain), "decision_type": decision_type},
                add=delta,
            )
            for grain in ("hour", "day")
        ]

    async def put_decision(
        self, decision: Decision, pattern_refs: Sequence[tuple[str, str]] = ()
    ) -> tuple[Decision, bool]:
        """Create a decision (and its outcome, if given) idempotently.

        One transaction: the decision, its id item, two rollup counters, and access counters of
        applied patterns. Returns (decision, created). A retry with the same ``decision_id`` and
        payload returns the stored decision with created=False; another payload is a Conflict.
        Requests: 1 transaction (+1 get + 1 get when the id already exists).
        """
        d = decision
        pk, sk = keys.decision_pk(d.agent_id, d.decision_type), keys.decision_sk(d.created_at, d.decision_id)
        ttl = keys.epoch(d.expires_at)
        item: Item = {
            **_dump(d, "outcome"),
            "pk": pk,
            "sk": sk,
            "ttl": ttl,
            "gsi2pk": keys.decision_type_pk(d.decision_type),
            "gsi2sk": keys.decision_type_sk(d.created_at, d.agent_id, d.decision_id),
            "gsi3pk": keys.decision_timeline_pk(d.agent_id),
            "gsi3sk": keys.decision_sk(d.created_at, d.decision_id),
        }
        delta = rollups.decision_logged(d.memory_influenced)
        if d.outcome is not None:
            item["outcome"] = _dump(d.outcome)
            item["gsi1pk"] = keys.decision_success_pk(d.agent_id, d.outcome.success)
            item["gsi1sk"] = keys.decision_sk(d.created_at, d.decision_id)
            delta = rollups.merge(delta, rollups.outcome_recorded(d.outcome, d.memory_influenced))
        id_item: Item = {
            "pk": keys.decision_id_pk(d.decision_id),
            "sk": keys.ID_SK,
            "ttl": ttl,
            "decision_id": d.decision_id,
            "agent_id": d.agent_id,
            "decision_type": d.decision_type,
            "created_at": keys.iso(d.created_at),
            "memory_influenced": d.memory_influenced,
            "pattern_refs": [list(ref) for ref in pattern_refs],
            "ref_pk": pk,
            "ref_sk": sk,
        }
        ops: list[WriteOp] = [
            Put("decisions", id_item, (Cond.not_exists(),)),
            Put("decisions", item, (Cond.not_exists(),)),
            *self._rollup_ops(d.agent_id, d.created_at, d.decision_type, delta),
            *self._feedback_ops(pattern_refs, applied=False, success=None, now=d.created_at),
        ]
        try:
            await self.engine.write(ops)
        except ConditionFailed as exc:
            if exc.index not in (0, 1):
                raise
            existing = await self.get_decision(d.decision_id)
            if existing is None:
                raise Conflict(
                    f"decision_id {d.decision_id!r} is being written concurrently: retry the call"
                ) from exc
            if existing.agent_id != d.agent_id:
                raise Conflict(
                    f"decision_id {d.decision_id!r} is already in use: choose another id "
                    "(or omit it and the server generates one)"
                ) from exc
            if not existing.content_equals(d):
                raise Conflict(
                    f"decision {d.decision_id!r} was already logged with different content: "
                    "use a new decision_id for a new decision, or resend the original payload",
                    current=existing,
                ) from exc
            return existing, False
        return d, True

    async def get_decision_ref(self, decision_id: str) -> DecisionRef | None:
        """The id item of a decision. Requests: 1 consistent get."""
        item = await self.engine.get("decisions", keys.decision_id_pk(decision_id), keys.ID_SK)
        if not self._live(item):
            return None
        assert item is not None
        return DecisionRef(
            decision_id=item["decision_id"],
            agent_id=item["agent_id"],
            decision_type=item["decision_type"],
            created_at=datetime.fromisoformat(item["created_at"].replace("Z", "+00:00")),
            memory_influenced=bool(item["memory_influenced"]),
            pattern_refs=tuple((a, p) for a, p in item.get("pattern_refs", [])),
            pk=item["ref_pk"],
            sk=item["ref_sk"],
        )

    async def get_decision(self, decision_id: str) -> Decision | None:
        """A decision by id alone. Requests: 2 consistent gets."""
        ref = await self.get_decision_ref(decision_id)
        if ref is None:
            return None
        item = await self.engine.get("decisions", ref.pk, ref.sk)
        return _decision(item) if self._live(item) and item is not None else None

    async def set_outcome(self, ref: DecisionRef, outcome: Outcome) -> tuple[Decision, bool]:
        """Attach an outcome once. Same outcome again: no-op (created=False); another: Conflict.

        One transaction: the decision (conditional on having no outcome), its two rollup items,
        and the effectiveness counters of the patterns it applied. Requests: 1 transaction and
        1 consistent get (the decision as stored, returned to the caller).
        """
        gsi_sk = keys.decision_sk(ref.created_at, ref.decision_id)
        ops: list[WriteOp] = [
            Update(
                "decisions",
                ref.pk,
                ref.sk,
                set={
                    "outcome": _dump(outcome),
                    "gsi1pk": keys.decision_success_pk(ref.agent_id, outcome.success),
                    "gsi1sk": gsi_sk,
                },
                conditions=(Cond.exists(), Cond.lacks("outcome")),
            ),
            *self._rollup_ops(
                ref.agent_id,
                ref.created_at,
                ref.decision_type,
                rollups.outcome_recorded(outcome, ref.memory_influenced),
            ),
            *self._feedback_ops(
                ref.pattern_refs, applied=True, success=outcome.success, now=outcome.recorded_at
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
                return current, False
            raise Conflict(
                f"decision {ref.decision_id!r} already has an outcome (success={current.outcome.success}, "
                f"recorded {keys.iso(current.outcome.recorded_at)}); outcomes are recorded once: "
                "log a follow-up decision with parent_decision_id to record a later result",
                current=current,
            ) from exc
        item = await self.engine.get("decisions", ref.pk, ref.sk)
        assert item is not None
        return _decision(item), True

    async def query_decisions(self, q: DecisionQuery, *, limit: int, cursor: str | None) -> Page[Decision]:
        """Decisions newest first (or oldest first), choosing the key path by the filters:

        - agent + type       -> table, pk agent:{a}#decision#{T}, sk time range (success filtered)
        - agent + success    -> gsi1 agent:{a}#success#{s}
        - agent              -> gsi3 agent:{a}#decisions
        - type, all agents   -> gsi2 decision_type#{T} (success filtered)
        Requests: ceil(examined / page) queries, at most MAX_SCANNED items examined per call.
        """
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
            _decision,
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

    async def query_rollups(
        self, agent: str, grain: keys.Grain, first: str, last: str, decision_type: str | None = None
    ) -> list[RollupRow]:
        """Decision rollups of one agent for buckets first..last (inclusive). Requests: one query
        per 1 MB of rollups (a 30-day window of daily rollups is a few KB)."""
        rows: list[RollupRow] = []
        start: Key | None = None
        while True:
            page = await self.engine.query(
                "state",
                keys.rollup_pk(agent, grain),
                sk_gte=first,
                sk_lte=last + "#\uffff",
                start=start,
                limit=1000,
            )
            for item in page.items:
                if decision_type is None or item.get("decision_type") == decision_type:
                    rows.append(RollupRow(item["bucket"], item.get("decision_type"), _strip(item)))
            if page.last_key is None:
                return rows
            start = page.last_key

    async def query_signal_rollups(self, agent: str, first: str, last: str) -> list[RollupRow]:
        rows: list[RollupRow] = []
        start: Key | None = None
        while True:
            page = await self.engine.query(
                "state",
                keys.signal_rollup_pk(agent, "hour"),
                sk_gte=first,
                sk_lte=last,
                start=start,
                limit=1000,
            )
            rows.extend(RollupRow(item["sk"], None, _strip(item)) for item in page.items)
            if page.last_key is None:
                return rows
            start = page.last_key

    # ------------------------------------------------------------------------------------------
    # patterns
    # ------------------------------------------------------------------------------------------

    def _pattern_index_attrs(self, p: Pattern) -> tuple[dict[str, Any], tuple[str, ...]]:
        """Index keys to set and to remove: only active patterns are ranked; only shared ones
        appear in the shared indexes (sparse indexes keep recall proportional to its result)."""
        set_: dict[str, Any] = {}
        remove: list[str] = []
        if p.status == "active":
            set_["gsi1pk"] = keys.pattern_pk(p.agent_id)
            set_["gsi1sk"] = keys.pattern_rank_sk(p.confidence, p.pattern_id)
        else:
            remove += ["gsi1pk", "gsi1sk"]
        if p.status == "active" and p.is_shared:
            rank = keys.shared_rank_sk(p.confidence, p.agent_id, p.pattern_id)
            set_.update(
                gsi2pk=keys.shared_domain_pk(p.domain), gsi2sk=rank, gsi3pk=keys.SHARED_ALL_PK, gsi3sk=rank
            )
        else:
            remove += ["gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk"]
        return set_, tuple(remove)

    def _history_put(self, p: Pattern) -> Put:
        return Put(
            "ltm",
            {
                **_dump(p, "feedback"),
                "pk": keys.pattern_history_pk(p.agent_id),
                "sk": keys.pattern_history_sk(p.pattern_id, p.version),
            },
            (Cond.not_exists(),),
        )

    async def create_pattern(self, p: Pattern) -> Pattern:
        """Create version 1. Requests: 1 transaction (pattern, id item, history entry)."""
        index_set, _ = self._pattern_index_attrs(p)
        item = {**_dump(p, "feedback"), **index_set, "pk": keys.pattern_pk(p.agent_id), "sk": p.pattern_id}
        id_item = {"pk": keys.pattern_id_pk(p.pattern_id), "sk": keys.ID_SK, "agent_id": p.agent_id}
        try:
            await self.engine.write(
                [
                    Put("ltm", id_item, (Cond.not_exists(),)),
                    Put("ltm", item, (Cond.not_exists(),)),
                    self._history_put(p),
                ]
            )
        except ConditionFailed as exc:
            owner = await self.engine.get("ltm", keys.pattern_id_pk(p.pattern_id), keys.ID_SK)
            if owner is not None and owner.get("agent_id") != p.agent_id:
                raise Conflict(f"pattern_id {p.pattern_id!r} is already in use: choose another id") from exc
            current = await self.get_own_pattern(p.agent_id, p.pattern_id)
            version = current.version if current else None
            raise VersionConflict(
                f"pattern {p.pattern_id!r} already exists at version {version}: pass "
                f"expected_version={version} to store a new version",
                current=current,
                current_version=version,
            ) from exc
        return p

    async def update_pattern(self, p: Pattern, expected_version: int) -> Pattern:
        """Store ``p`` as the next version if the current one is ``expected_version``.

        Feedback counters are never overwritten (they are added to concurrently).
        Requests: 1 transaction (+1 get on conflict).
        """
        index_set, index_remove = self._pattern_index_attrs(p)
        content = _dump(p, "feedback", "agent_id", "pattern_id", "created_at")
        try:
            await self.engine.write(
                [
                    Update(
                        "ltm",
                        keys.pattern_pk(p.agent_id),
                        p.pattern_id,
                        set={**content, **index_set},
                        remove=index_remove,
                        conditions=(Cond.eq("version", expected_version),),
                    ),
                    self._history_put(p),
                ]
            )
        except ConditionFailed as exc:
            current = await self.get_own_pattern(p.agent_id, p.pattern_id)
            if current is None:
                raise NotFound(
                    f"pattern {p.pattern_id!r} does not exist: omit expected_version to create it"
                ) from exc
            raise VersionConflict(
                f"pattern {p.pattern_id!r}: version {expected_version} is stale; current version is "
                f"{current.version}: re-read the pattern and retry with expected_version={current.version}",
                current=current,
                current_version=current.version,
            ) from exc
        stored = await self.get_own_pattern(p.agent_id, p.pattern_id)
        assert stored is not None
        return stored

    async def get_own_pattern(
        self, agent: str, pattern_id: str, *, consistent: bool = True
    ) -> Pattern | None:
        """Requests: 1 get."""
        item = await self.engine.get("ltm", keys.pattern_pk(agent), pattern_id, consistent=consistent)
        return _pattern(item) if item is not None else None

    async def pattern_author(self, pattern_id: str) -> str | None:
        """Requests: 1 consistent get."""
        item = await self.engine.get("ltm", keys.pattern_id_pk(pattern_id), keys.ID_SK)
        return str(item["agent_id"]) if item else None

    async def query_own_patterns(
        self,
        agent: str,
        *,
        min_confidence: float,
        limit: int,
        cursor: str | None,
        keep: Callable[[Item], bool] | None,
    ) -> Page[Pattern]:
        """Active patterns of one author by confidence, highest first (gsi1; DAX-cacheable)."""
        return await self._page(
            "ltm",
            keys.pattern_pk(agent),
            _pattern,
            limit=limit,
            cursor=cursor,
            digest_parts=("own",),
            index="gsi1",
            sk_gte=keys.score(min_confidence),
            forward=False,
            consistent=False,
            keep=keep,
        )

    async def query_shared_patterns(
        self,
        domain: str | None,
        *,
        min_confidence: float,
        limit: int,
        cursor: str | None,
        keep: Callable[[Item], bool],
    ) -> Page[Pattern]:
        """Active shared patterns (of one domain: gsi2; of all: gsi3) by confidence (DAX-cacheable)."""
        return await self._page(
            "ltm",
            keys.shared_domain_pk(domain) if domain else keys.SHARED_ALL_PK,
            _pattern,
            limit=limit,
            cursor=cursor,
            digest_parts=("shared",),
            index="gsi2" if domain else "gsi3",
            sk_gte=keys.score(min_confidence),
            forward=False,
            consistent=False,
            keep=keep,
        )

    async def list_patterns(self, agent: str, *, limit: int, cursor: str | None) -> Page[Pattern]:
        """Every pattern of an author, any status, by id. Requests: 1+ consistent queries."""
        return await self._page(
            "ltm", keys.pattern_pk(agent), _pattern, limit=limit, cursor=cursor, digest_parts=()
        )

    async def pattern_history(
        self, agent: str, pattern_id: str, *, limit: int, cursor: str | None
    ) -> Page[Pattern]:
        """Versions of a pattern, newest first."""
        return await self._page(
            "ltm",
            keys.pattern_history_pk(agent),
            _pattern,
            limit=limit,
            cursor=cursor,
            digest_parts=(),
            sk_prefix=f"{pattern_id}#v",
            forward=False,
        )

    def _feedback_ops(
        self, refs: Sequence[tuple[str, str]], *, applied: bool, success: bool | None, now: datetime
    ) -> list[Update]:
        """Counter updates on applied patterns. At log time: an access; at outcome time: one
        application and its success. Conditional on the pattern existing (never resurrects)."""
        ops = []
        for author, pattern_id in refs:
            add: dict[str, int | float] = (
                {"fb_applied": 1, "fb_successes": 1 if success else 0} if applied else {"fb_access": 1}
            )
            ops.append(
                Update(
                    "ltm",
                    keys.pattern_pk(author),
                    pattern_id,
                    set={} if applied else {"fb_last": keys.iso(now)},
                    add=add,
                    conditions=(Cond.exists(),),
                )
            )
        return ops

    async def get_learner_mark(self, agent: str, scope: str) -> dict[str, Any] | None:
        item = await self.engine.get("ltm", keys.learner_pk(agent), scope)
        return _strip(item) if item else None

    async def put_learner_mark(self, agent: str, scope: str, mark: Mapping[str, Any]) -> None:
        await self.engine.write([Put("ltm", {**mark, "pk": keys.learner_pk(agent), "sk": scope})])

    # ------------------------------------------------------------------------------------------
    # state, checkpoints, registry
    # ------------------------------------------------------------------------------------------

    async def get_state(self, agent: str) -> AgentState:
        """The current state (version 0 and empty when never written). Requests: 1 consistent get."""
        item = await self.engine.get("state", keys.state_pk(agent), keys.STATE_SK)
        return AgentState.model_validate(_strip(item), context=STORED) if item else AgentState(agent_id=agent)

    async def put_state(
        self, state: AgentState, expected_version: int, checkpoint_label: str | None = None
    ) -> AgentState:
        """Write ``state`` (whose version is expected_version + 1) if the stored version is
        ``expected_version`` (0 = never written). A checkpoint, if asked, is written in the same
        transaction. Requests: 1 write or transaction (+1 get on conflict)."""
        item = {**_dump(state), "pk": keys.state_pk(state.agent_id), "sk": keys.STATE_SK}
        cond = Cond.not_exists() if expected_version == 0 else Cond.eq("version", expected_version)
        ops: list[WriteOp] = [Put("state", item, (cond,))]
        if checkpoint_label is not None:
            assert state.updated_at is not None
            cp = StateCheckpoint(
                agent_id=state.agent_id,
                version=state.version,
                label=checkpoint_label,
                created_at=state.updated_at,
                state=state,
            )
            ops.append(
                Put(
                    "state",
                    {
                        **_dump(cp),
                        "pk": keys.state_pk(state.agent_id),
                        "sk": keys.checkpoint_sk(state.version),
                    },
                )
            )
        try:
            await self.engine.write(ops)
        except ConditionFailed as exc:
            current = await self.get_state(state.agent_id)
            raise VersionConflict(
                f"state version {expected_version} is stale; current version is {current.version}: "
                f"re-read the state, re-apply your change and retry with expected_version={current.version}",
                current=current,
                current_version=current.version,
            ) from exc
        return state

    async def list_checkpoints(self, agent: str, *, limit: int, cursor: str | None) -> Page[StateCheckpoint]:
        """Checkpoints newest first. Requests: 1+ consistent queries."""
        return await self._page(
            "state",
            keys.state_pk(agent),
            lambda item: StateCheckpoint.model_validate(_strip(item), context=STORED),
            limit=limit,
            cursor=cursor,
            digest_parts=(),
            sk_prefix=keys.CHECKPOINT_PREFIX,
            forward=False,
        )

    async def get_agent(self, agent: str) -> AgentProfile | None:
        item = await self.engine.get("state", keys.REGISTRY_PK, keys.registry_sk(agent))
        return AgentProfile.model_validate(_strip(item), context=STORED) if item else None

    async def register_agent(self, profile: AgentProfile) -> AgentProfile:
        """Create the registry entry, or refresh ``last_seen`` (and version/role) of an existing one.
        Requests: 1 get + 1 write."""
        pk, sk = keys.REGISTRY_PK, keys.registry_sk(profile.agent_id)
        existing = await self.get_agent(profile.agent_id)
        if existing is None:
            try:
                await self.engine.write(
                    [Put("state", {**_dump(profile), "pk": pk, "sk": sk}, (Cond.not_exists(),))]
                )
                return profile
            except ConditionFailed:
                pass  # registered concurrently by another connection of the same agent
        changes: dict[str, Any] = {"last_seen": keys.iso(profile.last_seen), "role": profile.role}
        if profile.agent_version:
            changes["agent_version"] = profile.agent_version
        item = await self.engine.update(Update("state", pk, sk, set=changes, conditions=(Cond.exists(),)))
        return AgentProfile.model_validate(_strip(item), context=STORED)

    async def list_agents(self, *, limit: int, cursor: str | None) -> Page[AgentProfile]:
        """The registry by agent id: one partition, queried (no Scan)."""
        return await self._page(
            "state",
            keys.REGISTRY_PK,
            lambda item: AgentProfile.model_validate(_strip(item), context=STORED),
            limit=limit,
            cursor=cursor,
            digest_parts=(),
        )

    async def add_tool_usage(self, day: str, tool: str, delta: Mapping[str, int | float]) -> None:
        """Add a process's accumulated per-tool usage (calls, requests, units) to the day's
        counters. Requests: 1 update (flushed periodically, not per call)."""
        await self.engine.write(
            [Update("state", keys.usage_pk(day), tool, set={"tool": tool}, add=dict(delta))]
        )

    async def query_tool_usage(self, days: Sequence[str]) -> dict[str, dict[str, float]]:
        """Per-tool usage counters summed over ``days``. Requests: 1 query per day."""
        totals: dict[str, dict[str, float]] = {}
        for day in days:
            page = await self.engine.query("state", keys.usage_pk(day), limit=1000)
            for item in page.items:
                bucket = totals.setdefault(item["sk"], {})
                for name, value in _strip(item, "tool").items():
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        bucket[name] = bucket.get(name, 0) + value
        return totals

    # ------------------------------------------------------------------------------------------
    # notes
    # ------------------------------------------------------------------------------------------

    async def put_note(self, note: Note) -> Note:
        """Upsert a note (last writer wins: a note is a scratch value). Requests: 1 put."""
        item = {
            **_dump(note),
            "pk": keys.note_pk(note.agent_id),
            "sk": note.key,
            "ttl": keys.epoch(note.expires_at),
        }
        await self.engine.write([Put("state", item)])
        return note

    async def query_notes(self, agent: str, *, limit: int, cursor: str | None) -> Page[Note]:
        return await self._page(
            "state",
            keys.note_pk(agent),
            lambda item: Note.model_validate(_strip(item), context=STORED),
            limit=limit,
            cursor=cursor,
            digest_parts=(),
        )

    # ------------------------------------------------------------------------------------------
    # signals
    # ------------------------------------------------------------------------------------------

    def _signal_rollup(self, agent: str, when: datetime, delta: rollups.Delta) -> Update:
        return Update("state", keys.signal_rollup_pk(agent, "hour"), keys.bucket(when, "hour"), add=delta)

    async def publish_signal(self, signal: Signal) -> tuple[Signal, bool]:
        """Store a signal and one pending inbox entry per target, all or nothing.

        One transaction: signal + N inbox entries + the rollup counters (source: published;
        each target: received in the publish hour, due in the expiry hour). Idempotent on
        ``signal_id`` like decisions. Requests: 1 transaction (+1 get on a retry).
        """
        s = signal.model_copy(update={"processing_status": {t: Delivery() for t in signal.target_agents}})
        ttl = keys.epoch(s.expires_at)
        sig_item: Item = {
            **_dump(s, "processing_status"),
            **{keys.delivery_attr(t): _dump(Delivery()) for t in s.target_agents},
            "pk": keys.signal_pk(s.signal_id),
            "sk": keys.SIGNAL_SK,
            "ttl": ttl,
            "gsi1pk": keys.signal_type_pk(s.signal_type),
            "gsi1sk": keys.signal_type_sk(s.created_at, s.signal_id),
        }
        signal_doc = _dump(s, "processing_status")
        ops: list[WriteOp] = [Put("signals", sig_item, (Cond.not_exists(),))]
        for target in s.target_agents:
            ops.append(
                Put(
                    "signals",
                    {
                        "pk": keys.inbox_pk(target),
                        "sk": keys.inbox_sk("pending", s.created_at, s.signal_id),
                        "ttl": ttl,
                        "agent_id": target,
                        "signal": signal_doc,
                        "delivery": _dump(Delivery()),
                    },
                )
            )
        # Rollup deltas merged per item: one item may not appear twice in a transaction.
        deltas: dict[tuple[str, str], rollups.Delta] = {}

        def add(agent: str, when: datetime, delta: rollups.Delta) -> None:
            key = (agent, keys.bucket(when, "hour"))
            deltas[key] = rollups.merge(deltas.get(key, {}), delta)

        add(s.source_agent, s.created_at, {rollups.PUBLISHED: 1})
        for target in s.target_agents:
            add(target, s.created_at, {rollups.RECEIVED: 1})
            add(target, s.expires_at, {rollups.DUE: 1})
        ops += [
            Update("state", keys.signal_rollup_pk(agent, "hour"), hour, add=delta)
            for (agent, hour), delta in deltas.items()
        ]
        try:
            await self.engine.write(ops)
        except ConditionFailed as exc:
            if exc.index != 0:
                raise
            existing = await self.get_signal(s.signal_id)
            if existing is None:
                raise Conflict(
                    f"signal_id {s.signal_id!r} is already in use (or expired): choose another id"
                ) from exc
            if existing.source_agent != s.source_agent:
                raise Conflict(f"signal_id {s.signal_id!r} is already in use: choose another id") from exc
            if not existing.content_equals(s):
                raise Conflict(
                    f"signal {s.signal_id!r} was already published with different content: "
                    "use a new signal_id for a new signal",
                    current=existing,
                ) from exc
            return existing, False
        return s, True

    async def get_signal(self, signal_id: str) -> Signal | None:
        """Requests: 1 consistent get."""
        item = await self.engine.get("signals", keys.signal_pk(signal_id), keys.SIGNAL_SK)
        return _signal(item) if self._live(item) and item is not None else None

    async def read_inbox(
        self, agent: str, *, status: DeliveryStatus, signal_type: str | None, limit: int, cursor: str | None
    ) -> Page[InboxEntry]:
        """Deliveries to ``agent`` with ``status``, newest first, unexpired; strongly consistent
        (never cached). Requests: 1+ queries on pk inbox#{agent}, sk prefix {status}#."""
        keep = None
        if signal_type is not None:

            def keep(item: Item) -> bool:
                return bool(item["signal"]["signal_type"] == signal_type)

        return await self._page(
            "signals",
            keys.inbox_pk(agent),
            _inbox,
            limit=limit,
            cursor=cursor,
            digest_parts=(signal_type,),
            sk_prefix=f"{status}#",
            forward=False,
            keep=keep,
        )

    async def count_pending(self, agent: str, cap: int = 100) -> int:
        """Pending, unexpired deliveries, counted up to ``cap``. Requests: 1 query."""
        page = await self.read_inbox(agent, status="pending", signal_type=None, limit=cap, cursor=None)
        return len(page.items)

    async def ack(
        self, agent: str, signal: Signal, status: Literal["processed", "rejected"], decision_id: str | None
    ) -> tuple[InboxEntry, bool]:
        """Mark ``agent``'s delivery of ``signal`` processed/rejected, once.

        One transaction: remove the pending entry (must exist), add the entry under its new
        status, set the signal's processing_status for this agent, and the rollup counters.
        Acking again with the same status and decision: no-op; otherwise Conflict.
        Requests: 1 transaction (+1 get on a repeat).
        """
        now = self.clock()
        delivery = Delivery(status=status, processed_at=now, decision_id=decision_id)
        signal_doc = _dump(signal, "processing_status")
        done_item: Item = {
            "pk": keys.inbox_pk(agent),
            "sk": keys.inbox_sk(status, signal.created_at, signal.signal_id),
            "ttl": keys.epoch(signal.expires_at),
            "agent_id": agent,
            "signal": signal_doc,
            "delivery": _dump(delivery),
        }
        deltas: dict[str, rollups.Delta] = {}
        done: rollups.Delta = {rollups.DUE_DONE: 1}
        for when, delta in (
            (signal.created_at, rollups.signal_acked(status, signal.created_at, now)),
            (signal.expires_at, done),
        ):
            hour = keys.bucket(when, "hour")
            deltas[hour] = rollups.merge(deltas.get(hour, {}), delta)
        ops: list[WriteOp] = [
            # The pending entry must still be there: that is what makes an ack happen once.
            Delete(
                "signals",
                keys.inbox_pk(agent),
                keys.inbox_sk("pending", signal.created_at, signal.signal_id),
                (Cond.exists(),),
            ),
        ]
        ops.append(Put("signals", done_item))
        ops.append(
            Update(
                "signals",
                keys.signal_pk(signal.signal_id),
                keys.SIGNAL_SK,
                set={keys.delivery_attr(agent): _dump(delivery)},
                conditions=(Cond.exists(),),
            )
        )
        ops += [
            Update("state", keys.signal_rollup_pk(agent, "hour"), hour, add=delta)
            for hour, delta in deltas.items()
        ]
        try:
            await self.engine.write(ops)
        except ConditionFailed as exc:
            if exc.index not in (0, 2):
                raise
            current = await self.get_signal(signal.signal_id)
            if current is None:
                raise NotFound(f"signal {signal.signal_id!r} has expired") from exc
            prior = current.processing_status.get(agent)
            if prior is not None and prior.status == status and prior.decision_id == decision_id:
                return InboxEntry(agent_id=agent, signal=current, delivery=prior), False
            state = prior.status if prior else "unknown"
            raise Conflict(
                f"signal {signal.signal_id!r} was already acknowledged by you as {state!r}; "
                "a delivery is acknowledged once",
                current=current,
            ) from exc
        signal_after = signal.model_copy(
            update={"processing_status": {**signal.processing_status, agent: delivery}}
        )
        return InboxEntry(agent_id=agent, signal=signal_after, delivery=delivery), True


# --------------------------------------------------------------------------------------------------
# item -> record
# --------------------------------------------------------------------------------------------------


def _key_of(item: Item, index: IndexName | None) -> Key:
    key = {"pk": item["pk"], "sk": item["sk"]}
    if index is not None:
        key[f"{index}pk"] = item[f"{index}pk"]
        key[f"{index}sk"] = item[f"{index}sk"]
    return key


def _decision(item: Item) -> Decision:
    return Decision.model_validate(_strip(item), context=STORED)


def _pattern(item: Item) -> Pattern:
    data = _strip(item, "fb_applied", "fb_successes", "fb_access", "fb_last")
    data["feedback"] = PatternFeedback(
        applied_count=int(item.get("fb_applied", 0)),
        applied_successes=int(item.get("fb_successes", 0)),
        access_count=int(item.get("fb_access", 0)),
        last_accessed=item.get("fb_last"),
    )
    return Pattern.model_validate(data, context=STORED)


def _signal(item: Item) -> Signal:
    prefix = keys.delivery_attr("")
    data = {k: v for k, v in _strip(item).items() if not k.startswith(prefix)}
    data["processing_status"] = {
        k[len(prefix) :]: Delivery.model_validate(v, context=STORED)
        for k, v in item.items()
        if k.startswith(prefix)
    }
    return Signal.model_validate(data, context=STORED)


def _inbox(item: Item) -> InboxEntry:
    return InboxEntry(
        agent_id=item["agent_id"],
        signal=Signal.model_validate(item["signal"], context=STORED),
        delivery=Delivery.model_validate(item["delivery"], context=STORED),
    )


def _same_outcome(a: Outcome, b: Outcome) -> bool:
    return a.model_dump(exclude={"recorded_at"}) == b.model_dump(exclude={"recorded_at"})


def window_start(now: datetime, hours: int) -> datetime:
    return now - timedelta(hours=hours)
