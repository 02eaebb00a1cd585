"""Per-agent storage counters, and the quota each write is checked against, in the same write.

One item per agent (table ``state``, pk ``agent:{agent}#quota``, sk ``#usage``) holds what the
agent's records occupy: ``n_{family}`` live records of a family (decisions, notes, signals,
patterns, checkpoints) and ``b`` bytes (DynamoDB's item sizes of the records written). A write
that adds records carries one more operation in its transaction: an ``add`` to those counters,
conditional on each counter staying within its limit (:meth:`Cond.at_most`). The counters are
therefore exact (they move only with the records they count, all or nothing) and a limit holds
under any concurrency on both backends: of concurrent writes that would together pass it, the
ones past it are refused, never admitted.

Expiring records (decisions, notes, signals) are also counted in a bucket named by when they expire
(attributes ``x{YYYYMMDDHH}_...`` for an expiry within 48 h, ``x{YYYYMMDD}_...`` beyond). Once a
bucket's end has passed, every record in it has expired: pruning subtracts the bucket from the live
counters and removes it (one conditional update, so two instances cannot subtract it twice). A
process prunes an agent's buckets on its first counted write of each UTC day, and again before
refusing a write, so an expired record stops counting at most an hour (a day, for decisions)
after it expired. Nothing here scans: a counted write costs one operation more in its
transaction, plus one get and one update per agent and day.

Records written while every quota was off are not counted (the counters start when quotas are on),
nor are records brought in by ``agent-memory import``: the counters are the store's own bookkeeping
of the writes it served, never exported nor imported.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from agent_memory.errors import QuotaExceeded
from agent_memory.item_rules import items_size
from agent_memory.storage import keys
from agent_memory.storage.engine import Cond, ConditionFailed, Item, Update, WriteOp
from agent_memory.storage.records.base import QUOTA_MARK, RecordBase

Family = Literal["decisions", "notes", "signals", "patterns", "checkpoints", "budgets"]

BYTES = "b"
"""Live bytes of every record family of the agent."""
HOURLY_WITHIN = timedelta(hours=48)
"""Records expiring within this are bucketed by hour (notes, signals), later ones by day."""


def is_quota_item(table: str, item: Item) -> bool:
    pk = str(item.get("pk", ""))
    return (
        table == "state"
        and pk.startswith("agent:")
        and pk.endswith("#quota")
        and item.get("sk") == keys.QUOTA_SK
    )


def count_attr(family: Family) -> str:
    return f"n_{family}"


def bucket_of(expires_at: datetime, now: datetime) -> str:
    text = keys.iso(expires_at)  # YYYY-MM-DDTHH:MM:SS.ffffffZ (cached, as a write's keys format it)
    if len(text) != 27:  # a year before 1000
        ts = expires_at.astimezone(UTC)
        return ts.strftime("%Y%m%d%H") if expires_at - now <= HOURLY_WITHIN else ts.strftime("%Y%m%d")
    day = text[:4] + text[5:7] + text[8:10]
    return day + text[11:13] if expires_at - now <= HOURLY_WITHIN else day


def bucket_end(bucket: str) -> datetime:
    """When every record of ``bucket`` has expired."""
    if not bucket.isdigit() or len(bucket) not in (8, 10):
        raise ValueError(f"not a quota bucket: {bucket!r}")
    # (Read by hand: strptime cost a tenth of a note's write, which reads its old note's bucket.)
    start = datetime(int(bucket[:4]), int(bucket[4:6]), int(bucket[6:8]), int(bucket[8:] or 0), tzinfo=UTC)
    return start + (timedelta(hours=1) if len(bucket) == 10 else timedelta(days=1))


def _bucket_attr(bucket: str, counter: str) -> str:
    return f"x{bucket}_{counter}"


def _split_bucket_attr(name: str) -> tuple[str, str] | None:
    """(bucket, live counter) of a bucket attribute, None for any other attribute."""
    if not name.startswith("x") or "_" not in name:
        return None
    bucket, counter = name[1:].split("_", 1)
    return (bucket, counter) if bucket.isdigit() and len(bucket) in (8, 10) else None


@dataclass(frozen=True)
class QuotaLimit:
    quota: str
    """Its name in messages and docs: a family, or ``bytes``."""
    limit: int
    """At least 1 (a quota that is off has no QuotaLimit)."""
    unit: str
    advice: str
    """What frees room, and the setting the operator raises."""


@dataclass(frozen=True)
class Charge:
    """What one write of ``agent_id`` counts, and against which limits (built by
    :mod:`agent_memory.memory.quotas` from the settings; None there when every quota is off)."""

    agent_id: str
    family: Family
    count_limit: QuotaLimit | None
    bytes_limit: QuotaLimit | None


@dataclass(frozen=True)
class Counted:
    """Records a write adds: how many, their items (measured), and when they expire (None: kept)."""

    count: int
    items: Sequence[Item]
    expires_at: datetime | None = None

    @functools.cached_property
    def nbytes(self) -> int:
        """Their size (:func:`items_size`), measured once: a note's write marks it in the note
        and adds it to the counters."""
        return items_size(self.items)


@dataclass(frozen=True)
class QuotaUsage:
    counts: Mapping[str, int]
    """Live records per family."""
    bytes: int


def _merge(into: dict[str, int], delta: Mapping[str, int]) -> None:
    for name, value in delta.items():
        into[name] = into.get(name, 0) + value


class QuotaRecords(RecordBase):
    async def quota_usage(self, agent: str) -> QuotaUsage:
        """What ``agent`` holds, as counted (expired buckets not yet pruned still count).
        Requests: 1 consistent get."""
        item = await self.engine.get("state", keys.quota_pk(agent), keys.QUOTA_SK) or {}
        counts = {k.removeprefix("n_"): int(v) for k, v in item.items() if k.startswith("n_")}
        return QuotaUsage(counts=counts, bytes=int(item.get(BYTES, 0)))

    def quota_mark(self, counted: Counted, charge: Charge | None) -> list[object] | None:
        """What a counted record keeps of its charge (bucket, bytes), so that overwriting it
        (notes) gives back exactly what it took. None when nothing is counted."""
        if charge is None or counted.expires_at is None:
            return None
        return [bucket_of(counted.expires_at, self.clock()), counted.nbytes]

    async def counted_write(
        self,
        ops: Sequence[WriteOp],
        charge: Charge | None,
        counted: Counted,
        replaced: Item | None = None,
    ) -> None:
        """Write ``ops`` (one operation or a transaction) with ``counted`` added to the agent's
        counters in the same transaction, refused with :class:`QuotaExceeded` past a limit.
        ``replaced`` is a counted record this write overwrites (its charge is given back).

        A failed condition of ``ops`` raises :class:`ConditionFailed` with its index, as
        ``engine.write(ops)`` would. Requests: the write (a transaction of one operation more),
        +1 get and at most 1 update for the first counted write of the agent each day in this
        process, +1 get, 1 update and 1 retry of the write when a limit refuses it.
        """
        if charge is None:
            await self.engine.write(ops)
            return
        now = self.clock()
        pruned: dict[str, date] = self.__dict__.setdefault("_quota_pruned", {})
        today = now.astimezone(UTC).date()
        if pruned.get(charge.agent_id) != today:
            await self._prune(charge.agent_id, None, now)
            pruned[charge.agent_id] = today
        nbytes = counted.nbytes
        add: dict[str, int] = {}
        if counted.count:
            add[count_attr(charge.family)] = counted.count
        add[BYTES] = nbytes
        if counted.expires_at is not None:
            bucket = bucket_of(counted.expires_at, now)
            _merge(add, {_bucket_attr(bucket, k): v for k, v in add.items()})
        mark = replaced.get(QUOTA_MARK) if replaced is not None else None
        if isinstance(mark, list) and len(mark) == 2 and bucket_end(str(mark[0])) > now:
            # The record overwritten is still counted (its bucket is live): give its share back.
            back = {count_attr(charge.family): -1, BYTES: -int(mark[1])}
            _merge(back, {_bucket_attr(str(mark[0]), k): v for k, v in back.items()})
            _merge(add, back)
        conditions: list[Cond] = []
        count_delta = add.get(count_attr(charge.family), 0)
        if charge.count_limit is not None and count_delta > 0:
            conditions.append(Cond.at_most(count_attr(charge.family), charge.count_limit.limit - count_delta))
        if charge.bytes_limit is not None and add[BYTES] > 0:
            conditions.append(Cond.at_most(BYTES, charge.bytes_limit.limit - add[BYTES]))
        delta = {k: v for k, v in add.items() if v != 0}
        if not delta:  # an overwrite that takes what the record it replaces took
            await self.engine.write(ops)
            return
        pk = keys.quota_pk(charge.agent_id)
        op = Update("state", pk, keys.QUOTA_SK, add=delta, conditions=tuple(conditions))
        for attempt in (0, 1):
            try:
                await self.engine.write([*ops, op])
                return
            except ConditionFailed as exc:
                if exc.index != len(ops):
                    raise
                if attempt == 0 and await self._prune(charge.agent_id, exc.item, now):
                    continue  # expired records made room: try once more
                raise _exceeded(charge, exc.item, count_delta, add[BYTES]) from None

    async def _prune(self, agent: str, item: Item | None, now: datetime) -> bool:
        """Subtract and remove the buckets whose records have all expired. Returns whether there
        were any. Conditional on the buckets still being there: a concurrent prune of the same
        buckets makes this one a no-op, never a double subtraction."""
        if item is None:
            item = await self.engine.get("state", keys.quota_pk(agent), keys.QUOTA_SK)
        if item is None:
            return False
        stale = [
            (name, split[1], int(value))
            for name, value in item.items()
            if (split := _split_bucket_attr(name)) is not None and bucket_end(split[0]) <= now
        ]
        if not stale:
            return False
        minus: dict[str, int] = {}
        for _, counter, value in stale:
            _merge(minus, {counter: -value})
        with contextlib.suppress(ConditionFailed):  # another instance pruned them first
            await self.engine.write(
                [
                    Update(
                        "state",
                        keys.quota_pk(agent),
                        keys.QUOTA_SK,
                        add={k: v for k, v in minus.items() if v != 0},
                        remove=tuple(name for name, _, _ in stale),
                        conditions=tuple(Cond.has(name) for name, _, _ in stale),
                    )
                ]
            )
        return True


def _exceeded(charge: Charge, item: Item | None, count: int, nbytes: int) -> QuotaExceeded:
    item = item or {}
    used_count = int(item.get(count_attr(charge.family), 0))
    limit = charge.count_limit
    if limit is not None and count > 0 and used_count + count > limit.limit:
        used = used_count
    else:
        limit = charge.bytes_limit
        used = int(item.get(BYTES, 0))
        assert limit is not None, "a quota condition failed without a limit"
    adding = count if limit is charge.count_limit else nbytes
    return QuotaExceeded(
        f"{limit.quota} quota reached: you hold {used:,} {limit.unit} of the {limit.limit:,} one agent "
        f"may hold, and this write adds {adding:,}. Nothing was written. {limit.advice}",
        quota=limit.quota,
        used=used,
        limit=limit.limit,
    )
