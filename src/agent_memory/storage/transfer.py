"""Export and import a whole memory as JSON Lines, between any two backends, losslessly.

Export works on items (the key design is the same on every backend), so every record, version
history, checkpoint, rollup and inbox entry moves as it is, ``ttl`` included. Lines are sorted by
table and key, and numbers are written in canonical form (an integral number as an integer:
DynamoDB does not distinguish 1 from 1.0), so exporting the same memory from two backends gives
byte-identical files.

Import merges into the target store, which may already hold memory (README, "Move a memory"):

- records are matched by key (a decision, signal or pattern by its id): a record the target lacks
  is added; an identical one is left alone; when both copies differ, the more complete or newer one
  wins: a decision with an outcome over one without, a pattern or state with the higher version,
  an acknowledged delivery over a pending one; on any other difference the target's copy is kept
  (and counted as such in the report);
- counters are never overwritten: decision and signal rollups are recomputed from the records the
  import adds or completes (exactly what the store adds when those records are written live); a
  rollup bucket the target does not have at all is copied from the file (so figures of records past
  retention in the source survive an import into a fresh store); tool-usage counters keep, per day
  and tool, the larger count of the two stores;
- an export of an earlier version, whose decision, pattern and signal ids were global, is
  rewritten into per-author ids as it is read (see :mod:`agent_memory.storage.layout`);
- importing the same file twice changes nothing the second time; an import interrupted half-way can
  be run again (each record is written in one transaction with its counters, counter copies last);
- ``dry_run`` plans everything and writes nothing: the report says what would change.

Line format: ``{"table": "decisions", "item": {...}}``; the first line is a header
``{"format": "agent-memory-export", "version": 1}``.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from agent_memory import rollups
from agent_memory.errors import InvalidInput
from agent_memory.models import Outcome
from agent_memory.storage import keys
from agent_memory.storage.engine import TABLES, Delete, Item, ItemEngine, Put, TableName, Update, WriteOp
from agent_memory.storage.layout import upgrade
from agent_memory.storage.records.base import REQUEST_TOKEN
from agent_memory.storage.records.patterns import current_sharing_item
from agent_memory.storage.records.quotas import is_quota_item
from agent_memory.storage.records.validate import InvalidItem, validate_item

FORMAT = "agent-memory-export"
VERSION = 1
_ACKED = ("processed", "rejected")


def canonical(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


HEADER = json.dumps({"format": FORMAT, "version": VERSION})


def portable(item: Item) -> Item:
    """The item as it travels between stores: without the request token of the write that made it
    (a retry marker of that store, meaningless in another)."""
    return {k: v for k, v in item.items() if k != REQUEST_TOKEN}


def item_line(table: TableName, item: dict[str, Any]) -> str:
    return json.dumps({"table": table, "item": canonical(portable(item))}, sort_keys=True, ensure_ascii=False)


async def export_lines(engine: ItemEngine) -> AsyncIterator[str]:
    yield HEADER
    for table in TABLES:
        items = [item async for item in engine.scan(table)]
        items.sort(key=lambda item: (item["pk"], item["sk"]))
        for item in items:
            if not is_quota_item(table, item):  # the store's own bookkeeping (records/quotas.py)
                yield item_line(table, item)


async def export_to(engine: ItemEngine, out: IO[str]) -> int:
    count = -1
    async for line in export_lines(engine):
        out.write(line + "\n")
        count += 1
    return count


def parse_lines(lines: Iterable[str]) -> Iterable[tuple[TableName, dict[str, Any]]]:
    header_seen = False
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"line {number} is not JSON: {exc.msg}") from exc
        if not header_seen:
            if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
                raise InvalidInput(f"not an {FORMAT} v{VERSION} file (line 1 must be its header)")
            header_seen = True
            continue
        table, item = data.get("table"), data.get("item") if isinstance(data, dict) else None
        if table not in TABLES or not isinstance(item, dict) or "pk" not in item or "sk" not in item:
            raise InvalidInput(
                f"line {number}: expected {{'table': one of {list(TABLES)}, 'item': {{pk, sk, ...}}}}"
            )
        try:
            # An export of an earlier version (global ids) is rewritten into per-author ids first.
            current = [current_sharing_item(table, one) or one for one in upgrade(table, item) or [item]]
            for one in current:
                # Every line through its record model, keys recomputed from the content: a line
                # cannot forge a record "by" another agent, nor plant a row that breaks later reads.
                validate_item(table, one)
        except (InvalidItem, KeyError, TypeError, ValueError) as exc:
            problem = exc if isinstance(exc, InvalidItem) else f"not an item agent-memory writes ({exc!r})"
            raise InvalidInput(f"line {number} ({table}): {problem}; nothing was imported") from exc
        for one in current:
            if not is_quota_item(table, one):  # a target keeps its own quota counters
                yield table, one


# --------------------------------------------------------------------------------------------------
# the merge plan
# --------------------------------------------------------------------------------------------------


def kind_of(table: TableName, item: Item) -> str:
    """The record kind of an item, as the report names it (from the key design in ``keys``)."""
    pk, sk = str(item["pk"]), str(item["sk"])
    if table == "decisions":
        return "decision id" if "#decision_id#" in pk else "decision"
    if table == "ltm":
        for suffix, kind in (("#pattern", "pattern"), ("#pattern_history", "pattern version"),
                             ("#learner", "learner state")):  # fmt: skip
            if pk.endswith(suffix):
                return kind
        return "pattern id" if pk.startswith("pattern#") else "other"
    if table == "signals":
        if pk.startswith("inbox#"):
            return "inbox entry"
        return "signal ref" if "#signal_ref#" in pk else "signal" if "#signal#" in pk else "other"
    for prefix, kind in (("rollup#", "decision rollup"), ("sigrollup#", "signal rollup"),
                         ("usage#", "tool usage"), ("registry", "agent")):  # fmt: skip
        if pk.startswith(prefix):
            return kind
    if pk.endswith("#note"):
        return "note"
    if sk == "CURRENT":
        return "state"
    return "checkpoint" if sk.startswith("CHECKPOINT#") else "other"


COUNTER_KINDS = ("decision rollup", "signal rollup", "tool usage")


@dataclass
class ImportReport:
    """What an import did (or, in a dry run, would do), by record kind."""

    added: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    """The file's copy replaced the target's (outcome attached, higher version, acknowledged)."""
    unchanged: Counter[str] = field(default_factory=Counter)
    kept: Counter[str] = field(default_factory=Counter)
    """Both stores hold a different copy and no rule prefers the file's: the target's is kept."""
    recomputed: Counter[str] = field(default_factory=Counter)
    """Counter items both stores hold with different counts: the target's plus the counts of the
    records the import adds (never the file's counts, which overlap the target's)."""
    counters_adjusted: Counter[str] = field(default_factory=Counter)
    """Counter updates: a bucket copied, or incremented for one record; usage raised."""
    dry_run: bool = False
    read: int = 0

    @property
    def changes(self) -> int:
        return sum((self.added + self.updated + self.counters_adjusted).values())

    def lines(self) -> list[str]:
        verb = "would be" if self.dry_run else "were"
        out = []
        kinds = sorted(
            set(self.added) | set(self.updated) | set(self.unchanged) | set(self.kept) | set(self.recomputed)
        )
        for kind in kinds:
            parts = [
                f"{self.added[kind]} added" if self.added[kind] else "",
                f"{self.updated[kind]} updated" if self.updated[kind] else "",
                f"{self.unchanged[kind]} unchanged" if self.unchanged[kind] else "",
                f"{self.kept[kind]} kept as in the target (its copy differs)" if self.kept[kind] else "",
                f"{self.recomputed[kind]} merged from the records" if self.recomputed[kind] else "",
            ]
            out.append(f"  {kind}: " + ", ".join(p for p in parts if p))
        adjusted = ", ".join(f"{n} {kind}" for kind, n in sorted(self.counters_adjusted.items()))
        out.append(f"  counter updates: {adjusted or 'none'}")
        head = f"{self.read} items read; {self.changes} items {verb} written"
        return [head, *out]


def _same(a: Item, b: Item) -> bool:
    return bool(canonical(portable(a)) == canonical(portable(b)))


def _when(value: Any) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


class _Counters:
    """Counter deltas per item, keyed by (pk, sk); one transaction may touch an item only once."""

    def __init__(self, copied: set[tuple[str, str]]) -> None:
        self.copied = copied
        self.deltas: dict[tuple[str, str], tuple[dict[str, Any], rollups.Delta]] = {}

    def add(self, pk: str, sk: str, delta: rollups.Delta, set_: dict[str, Any] | None = None) -> None:
        if (pk, sk) in self.copied:
            return  # the bucket is copied whole from the file: it already counts this record
        current_set, current = self.deltas.get((pk, sk), ({}, {}))
        self.deltas[(pk, sk)] = ({**current_set, **(set_ or {})}, rollups.merge(current, delta))

    def ops(self) -> list[Update]:
        return [
            Update("state", pk, sk, set=set_, add=delta)
            for (pk, sk), (set_, delta) in self.deltas.items()
            if delta
        ]


def _decision_counters(item: Item, counters: _Counters, *, logged: bool, outcome: bool) -> None:
    created = _when(item["created_at"])
    influenced = bool(item.get("memory_influenced"))
    delta: rollups.Delta = rollups.decision_logged(influenced) if logged else {}
    if outcome and item.get("outcome") is not None:
        delta = rollups.merge(
            delta, rollups.outcome_recorded(Outcome.model_validate(item["outcome"]), influenced)
        )
    for grain in ("hour", "day"):
        bucket = keys.bucket(created, grain)
        counters.add(
            keys.rollup_pk(item["agent_id"], grain),
            keys.rollup_sk(bucket, item["decision_type"]),
            delta,
            {"bucket": bucket, "decision_type": item["decision_type"]},
        )


def _signal_counters(item: Item, counters: _Counters) -> None:
    created, expires = _when(item["created_at"]), _when(item["expires_at"])
    hour = keys.signal_rollup_pk

    counters.add(hour(item["source_agent"], "hour"), keys.bucket(created, "hour"), {rollups.PUBLISHED: 1})
    for target in item["target_agents"]:
        counters.add(hour(target, "hour"), keys.bucket(created, "hour"), {rollups.RECEIVED: 1})
        due: rollups.Delta = {rollups.DUE: 1, rollups.pending_minute(expires): 1}
        counters.add(hour(target, "hour"), keys.bucket(expires, "hour"), due)


def _ack_counters(item: Item, counters: _Counters) -> None:
    signal, delivery = item["signal"], item["delivery"]
    created, expires = _when(signal["created_at"]), _when(signal["expires_at"])
    acked = _when(delivery["processed_at"]) if delivery.get("processed_at") else created
    agent = keys.signal_rollup_pk(item["agent_id"], "hour")
    counters.add(
        agent, keys.bucket(created, "hour"), rollups.signal_acked(delivery["status"], created, acked)
    )
    done: rollups.Delta = {rollups.DUE_DONE: 1, rollups.pending_minute(expires): -1}
    counters.add(agent, keys.bucket(expires, "hour"), done)


def _merge_deliveries(target: Item, incoming: Item) -> Item | None:
    """The target's signal item with the file's acknowledgements added; None if nothing changes."""
    merged = dict(target)
    for attr, delivery in incoming.items():
        if not attr.startswith(keys.delivery_attr("")) or not isinstance(delivery, dict):
            continue
        mine = target.get(attr)
        if delivery.get("status") in _ACKED and (
            not isinstance(mine, dict) or mine.get("status") == "pending"
        ):
            merged[attr] = delivery
    return None if merged == target else merged


class _Planner:
    def __init__(self, engine: ItemEngine, concurrency: int) -> None:
        self.engine = engine
        self.gate = asyncio.Semaphore(concurrency)
        self.report = ImportReport()

    async def get(self, table: TableName, pk: str, sk: str) -> Item | None:
        async with self.gate:
            return await self.engine.get(table, pk, sk)

    async def record(self, table: TableName, item: Item, counters: _Counters) -> list[WriteOp]:
        """The writes that merge one record into the target (one transaction)."""
        kind = kind_of(table, item)
        if kind == "inbox entry":
            return await self._inbox(item, counters)
        current = await self.get(table, item["pk"], item["sk"])
        if current is None:
            self.report.added[kind] += 1
            if kind == "decision":
                _decision_counters(item, counters, logged=True, outcome=True)
            elif kind == "signal":
                _signal_counters(item, counters)
            return [Put(table, item)]
        if _same(current, item):
            self.report.unchanged[kind] += 1
            return []
        replacement: Item | None = None
        if kind == "decision" and current.get("outcome") is None and item.get("outcome") is not None:
            replacement = item
            _decision_counters(item, counters, logged=False, outcome=True)
        elif kind in ("pattern", "state") and int(item.get("version", 0)) > int(current.get("version", 0)):
            replacement = item
        elif kind == "signal":
            replacement = _merge_deliveries(current, item)
        if replacement is None:
            self.report.kept[kind] += 1
            return []
        self.report.updated[kind] += 1
        return [Put(table, replacement)]

    async def _inbox(self, item: Item, counters: _Counters) -> list[WriteOp]:
        status, rest = str(item["sk"]).split("#", 1)
        found = {s: await self.get("signals", item["pk"], f"{s}#{rest}") for s in ("pending", *_ACKED)}
        kind = "inbox entry"
        if found.get(status) is not None and _same(found[status] or {}, item):
            self.report.unchanged[kind] += 1
            return []
        if status == "pending" or any(found[s] is not None for s in _ACKED):
            if any(v is not None for v in found.values()):
                self.report.kept[kind] += 1
                return []
            self.report.added[kind] += 1
            return [Put("signals", item)]
        _ack_counters(item, counters)
        if found["pending"] is not None:
            self.report.updated[kind] += 1
            return [Delete("signals", item["pk"], f"pending#{rest}"), Put("signals", item)]
        self.report.added[kind] += 1
        return [Put("signals", item)]

    async def counter_copy(self, table: TableName, item: Item, current: Item | None) -> WriteOp | None:
        """A counter item: copied whole when the target lacks it, usage raised to the larger
        count; otherwise left to the deltas of the records."""
        kind = kind_of(table, item)
        numbers = {
            k: v
            for k, v in item.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and k not in ("pk", "sk", "ttl")
        }
        others = {k: v for k, v in item.items() if k not in numbers and k not in ("pk", "sk")}
        if current is None:
            self.report.added[kind] += 1
            # An update that adds onto nothing: the file's counts, without losing any increment a
            # running server makes meanwhile.
            return Update(table, item["pk"], item["sk"], set=others, add=numbers)
        if kind == "tool usage":
            raise_by = {k: v - current.get(k, 0) for k, v in numbers.items() if v > current.get(k, 0)}
            if raise_by:
                self.report.updated[kind] += 1
                return Update(table, item["pk"], item["sk"], add=raise_by)
        if _same(current, item):
            self.report.unchanged[kind] += 1
        else:
            self.report.recomputed[kind] += 1
        return None


async def import_from(
    engine: ItemEngine, lines: Iterable[str], *, dry_run: bool = False, concurrency: int = 16
) -> ImportReport:
    """Merge an export into ``engine``'s store (see the module docstring for the rules).

    The whole file is validated before anything is read or written.
    """
    records = list(parse_lines(lines))
    planner = _Planner(engine, concurrency)
    planner.report.dry_run = dry_run
    planner.report.read = len(records)
    counter_items = [(t, i) for t, i in records if kind_of(t, i) in COUNTER_KINDS]
    others = [(t, i) for t, i in records if kind_of(t, i) not in COUNTER_KINDS]

    currents = await asyncio.gather(*(planner.get(t, i["pk"], i["sk"]) for t, i in counter_items))
    copied = {(i["pk"], i["sk"]) for (t, i), cur in zip(counter_items, currents, strict=True) if cur is None}
    counter_ops = [
        op
        for (t, i), cur in zip(counter_items, currents, strict=True)
        if (op := await planner.counter_copy(t, i, cur)) is not None
    ]

    async def plan(table: TableName, item: Item) -> list[WriteOp]:
        counters = _Counters(copied)
        ops = await planner.record(table, item, counters)
        if ops:
            deltas = counters.ops()
            for op in deltas:
                planner.report.counters_adjusted[kind_of("state", {"pk": op.pk, "sk": op.sk})] += 1
            ops = [*ops, *deltas]
        return ops

    transactions = [ops for ops in await asyncio.gather(*(plan(t, i) for t, i in others)) if ops]
    for op in counter_ops:
        if isinstance(op, Update):
            planner.report.counters_adjusted[kind_of("state", {"pk": op.pk, "sk": op.sk})] += 1
    if not dry_run:
        # Records first (each with its own counters), counter copies last: an interrupted import
        # run again neither loses nor double-counts anything.
        await _run(engine, transactions, concurrency)
        await _run(engine, [[op] for op in counter_ops], concurrency)
    return planner.report


async def _run(engine: ItemEngine, transactions: Sequence[list[WriteOp]], concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def write(ops: list[WriteOp]) -> None:
        async with gate:
            await engine.write(ops)

    await asyncio.gather(*(write(ops) for ops in transactions))
