"""Signal records: the signal, one inbox entry per target and status, acknowledgements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from agent_memory import rollups
from agent_memory.api.results import SignalSummary
from agent_memory.errors import Conflict, NotFound
from agent_memory.limits import MAX_SIGNAL_TTL_HOURS
from agent_memory.models import Delivery, DeliveryStatus, InboxEntry, Page, Signal
from agent_memory.storage import keys
from agent_memory.storage.engine import (
    MAX_TRANSACTION_ITEMS,
    Cond,
    ConditionFailed,
    Delete,
    Item,
    Put,
    Update,
    WriteOp,
)
from agent_memory.storage.records.base import (
    KEY_ATTRS,
    REQUEST_TOKEN,
    dump,
    json_time,
    new_request_token,
    stored,
    write_once,
)
from agent_memory.storage.records.quotas import Charge, Counted, QuotaRecords

R = TypeVar("R")

MAX_SOURCES = 100
"""Most sources of one signal id a target's lookup reads (each source holds an id once)."""


def signal_refs(s: Signal) -> list[Item]:
    """One ref per target, in the target's own partitions: the target finds the signal by the id
    its inbox shows without any read of a key another agent could probe. None for the source
    itself when it is a target: an agent always looks for an id among its own signals first
    (memory/signals.py, ``_find_signal``), so such a ref would only repeat the source's own key
    (stores written before keep theirs, which name the same signal)."""
    ttl = keys.epoch(s.expires_at)
    source = s.source_agent
    sk = keys.signal_ref_sk(source)
    return [
        {"pk": keys.signal_ref_pk(t, s.signal_id), "sk": sk, "ttl": ttl, "source_agent": source}
        for t in s.target_agents
        if t != source
    ]


@dataclass(frozen=True)
class SignalHead:
    """What an acknowledgement needs of a stored signal, read without building the
    :class:`Signal` (its deliveries, its times, every field) and dumping it again for the inbox
    entry (issue #14): who published it, to whom, when, and its fields as every inbox entry holds
    them (``doc``: ``dump(signal, "processing_status")``)."""

    signal_id: str
    source_agent: str
    target_agents: list[str]
    created_at: datetime
    expires_at: datetime
    doc: dict[str, Any]


def signal_head(s: Signal) -> SignalHead:
    return SignalHead(
        s.signal_id, s.source_agent, s.target_agents, s.created_at, s.expires_at, dump(s, "processing_status")
    )


class SignalRecords(QuotaRecords):
    async def publish_signal(self, signal: Signal, charge: Charge | None = None) -> tuple[Signal, bool]:
        """Store a signal and one pending inbox entry per target, all or nothing.

        One transaction: signal + N inbox entries + N signal refs (how a target finds the signal
        by its id) + the rollup counters (source: published; each target: received in the publish
        hour, due in the expiry hour). Idempotent on (source, ``signal_id``) like decisions: ids
        are per source. Requests: 1 transaction (+1 get on a retry); a signal whose operations
        exceed one transaction (DynamoDB holds 100) writes its refs first, in a second one.
        """
        s = signal.model_copy(update={"processing_status": {t: Delivery() for t in signal.target_agents}})
        source, signal_id = s.source_agent, s.signal_id
        ttl = keys.epoch(s.expires_at)
        token = new_request_token()
        # One dump of the signal and of a pending delivery, shared by the items that hold them
        # (items are only read by the engine, never changed). The signal item holds a delivery
        # per target once it is acknowledged: a target without one is pending (see _signal).
        signal_doc = dump(s, "processing_status")
        pending = dump(Delivery())
        sig_item: Item = {
            **signal_doc,
            "pk": keys.signal_pk(source, signal_id),
            "sk": keys.SIGNAL_SK,
            "ttl": ttl,
            REQUEST_TOKEN: token,
        }
        ops: list[WriteOp] = [Put("signals", sig_item, (Cond.not_exists(),))]
        inbox_sk = keys.inbox_sk("pending", s.created_at, source, signal_id)
        for target in s.target_agents:
            entry = {
                "pk": keys.inbox_pk(target),
                "sk": inbox_sk,
                "ttl": ttl,
                "agent_id": target,
                "signal": signal_doc,
                "delivery": pending,
            }
            ops.append(Put("signals", entry))
        ref_items = signal_refs(s)
        # The refs are the source's writes too: counted with the signal.
        counted = Counted(1, [*(op.item for op in ops if isinstance(op, Put)), *ref_items], s.expires_at)
        # Rollup counters, one update per item (an item may not appear twice in a transaction):
        # the source's publish hour counts it published, each target's counts it received, and
        # each target's expiry hour counts it due (in its expiry minute too).
        created_hour, expiry_hour = keys.bucket(s.created_at, "hour"), keys.bucket(s.expires_at, "hour")
        minute = rollups.pending_minute(s.expires_at)
        deltas: dict[tuple[str, str], rollups.Delta] = {(source, created_hour): {rollups.PUBLISHED: 1}}
        for target in s.target_agents:
            received = deltas.setdefault((target, created_hour), {})
            received[rollups.RECEIVED] = 1
            due = deltas.setdefault((target, expiry_hour), {})
            due[rollups.DUE] = due.get(rollups.DUE, 0) + 1
            due[minute] = due.get(minute, 0) + 1
        ops += [
            Update("state", keys.signal_rollup_pk(agent, "hour"), hour, add=delta)
            for (agent, hour), delta in deltas.items()
        ]
        refs: list[WriteOp] = [Put("signals", ref) for ref in ref_items]
        quota_ops = 0 if charge is None else 1  # counted_write adds the counter update
        if len(ops) + len(refs) + quota_ops <= MAX_TRANSACTION_ITEMS:
            ops += refs
        else:
            # Refs first: one whose signal was never written (this transaction failed) points at
            # nothing and is ignored by lookups (they check the signal's targets).
            await self.engine.write(refs)
        try:
            if await write_once(lambda: self.counted_write(ops, charge, counted), token) is not None:
                return s, True  # this very call wrote it; only its first answer was lost
        except ConditionFailed as exc:
            if exc.index != 0:
                raise
            existing = await self.get_signal(source, signal_id)
            if existing is None:
                raise Conflict(
                    f"signal_id {signal_id!r} is already in use (or expired): choose another id"
                ) from exc
            if not existing.content_equals(s):
                raise Conflict(
                    f"signal {signal_id!r} was already published with different content: "
                    "use a new signal_id for a new signal",
                    current=existing,
                ) from exc
            return existing, False
        return s, True

    async def get_signal(self, source: str, signal_id: str) -> Signal | None:
        """A signal ``source`` published. Requests: 1 consistent get."""
        item = await self.engine.get("signals", keys.signal_pk(source, signal_id), keys.SIGNAL_SK)
        return _signal(item) if self._live(item) and item is not None else None

    async def get_signal_head(self, source: str, signal_id: str) -> SignalHead | None:
        """:meth:`get_signal` as the :class:`SignalHead` an acknowledgement takes. Requests: 1
        consistent get."""
        item = await self.engine.get("signals", keys.signal_pk(source, signal_id), keys.SIGNAL_SK)
        return _head(item) if self._live(item) and item is not None else None

    async def signal_sources(self, target: str, signal_id: str) -> list[str]:
        """The sources of the live signals ``signal_id`` addressed to ``target`` (normally one;
        two when two sources chose the same id), but ``target`` itself, whose own signals need no
        ref (see :func:`signal_refs`; refs that stores written before hold may name it too).
        Requests: 1 consistent query of the target's own refs."""
        page = await self.engine.query("signals", keys.signal_ref_pk(target, signal_id), limit=MAX_SOURCES)
        now = self.clock()
        return [str(item["source_agent"]) for item in page.items if self._live(item, now)]

    async def read_inbox(
        self, agent: str, *, status: DeliveryStatus, signal_type: str | None, limit: int, cursor: str | None
    ) -> Page[InboxEntry]:
        """Deliveries to ``agent`` with ``status``, newest first, unexpired; strongly consistent
        (never cached). Requests: 1+ queries on pk inbox#{agent}, sk prefix {status}#."""
        return await self._inbox_page(agent, _inbox, status, signal_type, limit, cursor)

    async def read_inbox_summaries(
        self, agent: str, *, status: DeliveryStatus, signal_type: str | None, limit: int, cursor: str | None
    ) -> Page[SignalSummary]:
        """:meth:`read_inbox` as the summaries the tool answers (``SignalSummary.of`` of each
        entry), made from the stored items without building each :class:`InboxEntry` first (an
        item of another shape is built, so validated, as before). Requests: as read_inbox."""
        return await self._inbox_page(agent, _inbox_summary, status, signal_type, limit, cursor)

    async def _inbox_page(
        self,
        agent: str,
        convert: Callable[[Item], R],
        status: DeliveryStatus,
        signal_type: str | None,
        limit: int,
        cursor: str | None,
    ) -> Page[R]:
        keep = None
        if signal_type is not None:

            def keep(item: Item) -> bool:
                return bool(item["signal"]["signal_type"] == signal_type)

        return await self._page(
            "signals",
            keys.inbox_pk(agent),
            convert,
            limit=limit,
            cursor=cursor,
            digest_parts=(signal_type,),
            sk_prefix=f"{status}#",
            forward=False,
            keep=keep,
        )

    async def count_pending(self, agent: str, cap: int = 100) -> int:
        """Pending, unexpired deliveries, counted up to ``cap``, from the counters publish and ack
        keep in the agent's signal rollups (the same transaction as the deliveries), so the cost
        does not grow with the number pending. Requests: 1 query of the rollup hours from now to
        the longest signal lifetime ahead (an item per hour in which some delivery expires).

        A delivery expiring in a later hour is live: DUE - DUE_DONE of those hours counts them.
        The current hour is partly expired: its per-minute counters count the minutes still ahead.
        When they cannot decide - a delivery expiring in the current minute, or deliveries of a
        store written before the per-minute counters (their sum then differs from the hour's) -
        the pending entries are counted as they are (1 query of up to ``cap`` entries).
        """
        now = self.clock()
        current = keys.bucket(now, "hour")
        minute = rollups.pending_minute(now)
        page = await self.engine.query(
            "state", keys.signal_rollup_pk(agent, "hour"), sk_gte=current, limit=MAX_SIGNAL_TTL_HOURS + 2
        )
        if page.last_key is not None:  # hours beyond any signal's lifetime: not ours to explain
            return await self._count_pending_entries(agent, cap)
        total = 0
        for item in page.items:
            open_ = item.get(rollups.DUE, 0) - item.get(rollups.DUE_DONE, 0)
            if item["sk"] > current or not open_:
                total += open_
                continue
            minutes = {k: v for k, v in item.items() if k.startswith(rollups.PENDING_MINUTE_PREFIX)}
            if sum(minutes.values()) != open_ or minutes.get(minute, 0) > 0:
                return await self._count_pending_entries(agent, cap)
            total += sum(v for k, v in minutes.items() if k > minute)
        return int(min(total, cap))

    async def _count_pending_entries(self, agent: str, cap: int) -> int:
        page = await self.read_inbox(agent, status="pending", signal_type=None, limit=cap, cursor=None)
        return len(page.items)

    async def ack(
        self, agent: str, signal: Signal, status: Literal["processed", "rejected"], decision_id: str | None
    ) -> tuple[InboxEntry, bool]:
        """:meth:`acknowledge`, answering ``agent``'s entry as it now is and whether this call
        acknowledged it. Requests: as :meth:`acknowledge`."""
        now = self.clock()
        delivery = Delivery(status=status, processed_at=now, decision_id=decision_id)
        earlier = await self.acknowledge(agent, signal_head(signal), status, decision_id, now=now)
        if earlier is not None:
            return earlier, False
        signal_after = signal.model_copy(
            update={"processing_status": {**signal.processing_status, agent: delivery}}
        )
        return InboxEntry(agent_id=agent, signal=signal_after, delivery=delivery), True

    async def acknowledge(
        self,
        agent: str,
        signal: SignalHead,
        status: Literal["processed", "rejected"],
        decision_id: str | None,
        *,
        now: datetime | None = None,
    ) -> InboxEntry | None:
        """Mark ``agent``'s delivery of ``signal`` processed/rejected, once (at ``now``, default
        the clock's time). Returns None when this call acknowledged it; the entry as stored when
        an earlier call did, with the same status and decision (a no-op); another: Conflict.

        One transaction: remove the pending entry (must exist), add the entry under its new
        status, set the signal's processing_status for this agent, and the rollup counters.
        Requests: 1 transaction (+1 get on a repeat).
        """
        now = self.clock() if now is None else now
        delivery_doc = delivery_fields(status, now, decision_id)
        inbox_pk = keys.inbox_pk(agent)
        pending_sk = keys.inbox_sk("pending", signal.created_at, signal.source_agent, signal.signal_id)
        done_item: Item = {
            "pk": inbox_pk,
            "sk": keys.inbox_sk_as(pending_sk, status),
            "ttl": keys.epoch(signal.expires_at),
            "agent_id": agent,
            "signal": signal.doc,
            "delivery": delivery_doc,
        }
        # Rollups: the publish hour counts it acknowledged (and its lag), the expiry hour done.
        acked = rollups.signal_acked(status, signal.created_at, now)
        done: rollups.Delta = {rollups.DUE_DONE: 1, rollups.pending_minute(signal.expires_at): -1}
        created_hour = keys.bucket(signal.created_at, "hour")
        expiry_hour = keys.bucket(signal.expires_at, "hour")
        deltas = (
            {created_hour: rollups.merge(acked, done)}
            if created_hour == expiry_hour
            else {created_hour: acked, expiry_hour: done}
        )
        ops: list[WriteOp] = [
            # The pending entry must still be there: that is what makes an ack happen once.
            Delete("signals", inbox_pk, pending_sk, (Cond.exists(),)),
            Put("signals", done_item),
            Update(
                "signals",
                keys.signal_pk(signal.source_agent, signal.signal_id),
                keys.SIGNAL_SK,
                set={keys.delivery_attr(agent): delivery_doc},
                conditions=(Cond.exists(),),
            ),
        ]
        ops += [
            Update("state", keys.signal_rollup_pk(agent, "hour"), hour, add=delta)
            for hour, delta in deltas.items()
        ]
        try:
            await self.engine.write(ops)
        except ConditionFailed as exc:
            if exc.index not in (0, 2):
                raise
            current = await self.get_signal(signal.source_agent, signal.signal_id)
            if current is None:
                raise NotFound(f"signal {signal.signal_id!r} has expired") from exc
            prior = current.processing_status.get(agent)
            if prior is not None and prior.status == status and prior.decision_id == decision_id:
                return InboxEntry(agent_id=agent, signal=current, delivery=prior)
            state = prior.status if prior else "unknown"
            raise Conflict(
                f"signal {signal.signal_id!r} was already acknowledged by you as {state!r}; "
                "a delivery is acknowledged once",
                current=current,
            ) from exc
        return None


def delivery_fields(
    status: Literal["processed", "rejected"], processed_at: datetime, decision_id: str | None
) -> dict[str, Any]:
    """``dump(Delivery(status=..., processed_at=..., decision_id=...))``, built directly (as
    ``records.decisions.decision_fields`` builds a decision's; issue #14): the status is one of
    the record's, ``decision_id`` names a decision the caller was found to have. A time not in UTC
    is left to the record to convert (or refuse)."""
    if processed_at.tzinfo is not UTC:
        return dump(Delivery(status=status, processed_at=processed_at, decision_id=decision_id))
    return {"status": status, "processed_at": json_time(processed_at), "decision_id": decision_id}


def _fields(item: Item) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields of a signal item but its deliveries, and its deliveries by target."""
    prefix = keys.delivery_attr("")
    data: dict[str, Any] = {}
    held: dict[str, Any] = {}
    for name, value in item.items():
        if name.startswith(prefix):
            held[name[len(prefix) :]] = value
        elif name not in KEY_ATTRS:
            data[name] = value
    return data, held


def _signal(item: Item) -> Signal:
    """The signal of a signal item, its deliveries in the order of its targets: those the item
    holds (one per acknowledgement; stores written before hold a pending one per target too),
    and a pending delivery for each target without one."""
    data, held = _fields(item)
    deliveries: dict[str, Delivery] = {}
    targets = data.get("target_agents")
    for target in targets if type(targets) is list else ():
        if type(target) is str:
            found = held.pop(target, None)
            deliveries[target] = stored(Delivery, {} if found is None else found)
    for target, found in held.items():  # a delivery of no target (import refuses such items)
        deliveries[target] = stored(Delivery, found)
    data["processing_status"] = deliveries
    return stored(Signal, data)


_DOC_FIELDS = tuple(name for name in Signal.model_fields if name != "processing_status")


def _head(item: Item) -> SignalHead:
    """``signal_head(_signal(item))`` from the item's fields as they are, when it holds them as
    the store writes them: every field (in the record's order in ``doc``), the times in UTC as
    pydantic writes them, a float confidence (DynamoDB gives back 1.0 as 1). An item of another
    shape is built into its :class:`Signal` first (so converted, or validated, as before)."""
    data, _ = _fields(item)
    if len(data) == len(_DOC_FIELDS):
        try:
            doc = {name: data[name] for name in _DOC_FIELDS}
            created, expires = doc["created_at"], doc["expires_at"]
            created_at, expires_at = datetime.fromisoformat(created), datetime.fromisoformat(expires)
            source, targets = doc["source_agent"], doc["target_agents"]
            if (
                created_at.tzinfo is UTC
                and expires_at.tzinfo is UTC
                and json_time(created_at) == created
                and json_time(expires_at) == expires
                and type(doc["confidence"]) is float
                and type(doc["signal_id"]) is str
                and type(source) is str
                and type(targets) is list
            ):
                return SignalHead(doc["signal_id"], source, targets, created_at, expires_at, doc)
        except (KeyError, TypeError, ValueError):
            pass
    return signal_head(_signal(item))


def _inbox(item: Item) -> InboxEntry:
    return stored(
        InboxEntry, {"agent_id": item["agent_id"], "signal": item["signal"], "delivery": item["delivery"]}
    )


def _inbox_summary(item: Item) -> SignalSummary:
    if "agent_id" in item:
        try:
            return SignalSummary.of_stored(item["signal"], item["delivery"])
        except (KeyError, TypeError, ValueError):
            pass
    return SignalSummary.of(_inbox(item))
