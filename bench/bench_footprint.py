"""Benchmark: bytes on disk per decision, and DynamoDB write units per log_decision/record_outcome.

    python -m bench.bench_footprint [--decisions 2000] [--write-docs]

Logs ``--decisions`` decisions through the real write path (``Memory.log_decision`` then
``record_outcome``, the bench_stdio workload's context and reasoning) into a fresh embedded store
and reports:

- bytes on disk per decision: growth of the SQLite file (after a WAL checkpoint) over the
  decisions, divided by their number; and the bytes of the items' data column (their JSON,
  compressed from SQLite schema v5 on) and key columns;
- DynamoDB write units per call, computed from the items the record layer writes by DynamoDB's
  rules (1 WRU per started KB of the item, twice that in a transaction; an update is billed by the
  whole item after it), and separately the writes the table's global secondary indexes add (every
  index projects all attributes, so an item in an index is written there again, 1 WRU per KB).

Section ``footprint`` of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import sqlite3
import statistics
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agent_memory.memory.identity import Caller
from agent_memory.memory.service import Memory
from agent_memory.models import Outcome, utcnow
from agent_memory.storage.dynamodb.codec import item_size
from agent_memory.storage.engine import TABLES, Put, Update, WriteOp
from agent_memory.storage.sqlite import SqliteEngine
from agent_memory.storage.store import MemoryStore
from bench.bench_stdio import DECISION_TYPE, context_of
from bench.common import DOC_PATH, bench_settings, machine_note, markdown_table, progress, publish


class Metered:
    """The SQLite engine, with the DynamoDB write units of every write computed on the side."""

    def __init__(self, engine: SqliteEngine) -> None:
        self.engine = engine
        self.table_wru = 0.0
        self.index_wru = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    async def write(self, ops: Sequence[WriteOp]) -> None:
        await self.engine.write(ops)
        transactional = len(ops) > 1
        for op in ops:
            if isinstance(op, Put):
                item = op.item
            elif isinstance(op, Update):
                item = await self.engine.get(op.table, op.pk, op.sk) or {}
            else:
                continue
            kb = math.ceil(item_size(item) / 1024)
            self.table_wru += kb * (2 if transactional else 1)
            for index in TABLES[op.table]:
                if f"{index}pk" in item and f"{index}sk" in item:
                    self.index_wru += kb

    async def update(self, op: Update) -> Any:
        return await self.engine.update(op)


def _disk(db: Path) -> int:
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return db.stat().st_size


def _btrees(db: Path) -> dict[str, int]:
    """Bytes of pages per B-tree (the items table and each index), from SQLite's ``dbstat``
    virtual table; empty if this SQLite lacks it."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
    except sqlite3.Error:
        return {}
    finally:
        conn.close()
    return {str(name): int(size) for name, size in rows}


def _context(i: int, pad: int) -> dict[str, Any]:
    context = context_of(i)
    if pad:
        # A realistic larger context: prices and indicators of a few assets, ``pad`` bytes of JSON.
        assets: dict[str, Any] = {}
        while len(str(assets)) < pad:
            k = len(assets)
            assets[f"asset_{k}"] = {
                "price": 100.25 + k + i % 7,
                "rsi": 40 + k % 30,
                "trend": "up" if k % 2 else "down",
            }
        context["assets"] = assets
    return context


async def measure(workdir: Path, n: int, pad: int = 0) -> dict[str, float]:
    db = workdir / f"footprint-{pad}.db"
    engine = await SqliteEngine.open(db)
    metered = Metered(engine)
    try:
        memory = Memory(MemoryStore(metered, utcnow), bench_settings(), utcnow)  # type: ignore[arg-type]
        me = Caller("bench")
        await memory.register(me)
        # Warm-up: the day's rollup items and the registry exist before the measured decisions.
        for i in range(20):
            d, _ = await memory.log_decision(me, DECISION_TYPE, context=context_of(i), reasoning={"x": i})
            await memory.record_outcome(me, d.decision_id, Outcome(success=True))
        before, trees_before = _disk(db), _btrees(db)
        metered.table_wru = metered.index_wru = 0.0
        log_t, log_i, out_t, out_i = [], [], [], []
        for i in range(n):
            t0, i0 = metered.table_wru, metered.index_wru
            d, _ = await memory.log_decision(
                me,
                DECISION_TYPE,
                context=_context(i, pad),
                reasoning={"chosen": "whaleMovements", "score": 0.8},
            )
            t1, i1 = metered.table_wru, metered.index_wru
            await memory.record_outcome(me, d.decision_id, Outcome(success=i % 3 != 0, quality_score=0.75))
            log_t.append(t1 - t0)
            log_i.append(i1 - i0)
            out_t.append(metered.table_wru - t1)
            out_i.append(metered.index_wru - i1)
            if (i + 1) % 500 == 0:
                progress(f"{i + 1}/{n} decisions")
        after, trees_after = _disk(db), _btrees(db)
    finally:
        await engine.close()
    conn = sqlite3.connect(db)
    stored = conn.execute(
        "SELECT SUM(LENGTH(data)), SUM(LENGTH(pk) + LENGTH(sk) + COALESCE(LENGTH(gsi1pk), 0) + "
        "COALESCE(LENGTH(gsi1sk), 0) + COALESCE(LENGTH(gsi2pk), 0) + COALESCE(LENGTH(gsi2sk), 0) + "
        "COALESCE(LENGTH(gsi3pk), 0) + COALESCE(LENGTH(gsi3sk), 0)), COUNT(*) "
        "FROM items WHERE tbl = 'decisions'"
    ).fetchone()
    conn.close()
    decisions = n + 20
    trees = {
        name: (size - trees_before.get(name, 0)) / n
        for name, size in trees_after.items()
        if name.startswith("items")
    }
    result: dict[str, float] = {
        **{f"tree:{name}": per for name, per in sorted(trees.items())},
        "disk": (after - before) / n,
        "json": stored[0] / decisions,
        "keys": stored[1] / decisions,
        "items": stored[2] / decisions,
        "log_table": statistics.median(log_t),
        "log_index": statistics.median(log_i),
        "outcome_table": statistics.median(out_t),
        "outcome_index": statistics.median(out_i),
    }
    return result


def table(runs: dict[str, dict[str, float]]) -> str:
    measures: list[tuple[str, Callable[[dict[str, float]], str]]] = [
        ("bytes on disk per decision (SQLite file growth)", lambda m: f"{m['disk']:,.0f}"),
        ("data column per decision (decisions table)", lambda m: f"{m['json']:,.0f}"),
        ("key columns per decision (decisions table)", lambda m: f"{m['keys']:,.0f}"),
        ("items per decision (decisions table)", lambda m: f"{m['items']:g}"),
        ("DynamoDB WRU per log_decision (transaction)", lambda m: f"{m['log_table']:g}"),
        ("DynamoDB WRU per log_decision (+ index writes)", lambda m: f"{m['log_table'] + m['log_index']:g}"),
        ("DynamoDB WRU per record_outcome (transaction)", lambda m: f"{m['outcome_table']:g}"),
        (
            "DynamoDB WRU per record_outcome (+ index writes)",
            lambda m: f"{m['outcome_table'] + m['outcome_index']:g}",
        ),
    ]
    trees = sorted({k for m in runs.values() for k in m if k.startswith("tree:")})

    def tree_size(key: str) -> Callable[[dict[str, float]], str]:
        return lambda m: f"{m.get(key, 0):,.0f}"

    measures[1:1] = [
        (
            "- of which the items table (rows)" if key == "tree:items" else f"- of which index {key[5:]}",
            tree_size(key),
        )
        for key in trees
    ]
    rows = [[name, *(fmt(m) for m in runs.values())] for name, fmt in measures]
    return markdown_table(["measure", *runs], rows, "l" + "r" * len(runs))


DISK_GOAL = 0.5
"""Bytes per decision on disk: at most half the before run's (issue #14)."""


def _data_comment(runs: dict[str, dict[str, float]], label: str | None) -> str:
    data: dict[str, object] = {"runs": runs}
    if label:
        data["label"] = label
    return f"<!-- data {json.dumps(data, separators=(',', ':'))} -->"


def _read_before() -> dict[str, object] | None:
    text = DOC_PATH.read_text(encoding="utf-8") if DOC_PATH.exists() else ""
    body = text.partition("<!-- bench:footprint-before:start -->")[2].partition(
        "<!-- bench:footprint-before:end -->"
    )[0]
    found = re.search(r"<!-- data (.*?) -->", body)
    data: dict[str, object] | None = json.loads(found.group(1)) if found else None
    return data


def comparison(runs: dict[str, dict[str, float]], before: dict[str, object]) -> str:
    """The reading of the run against the stored before run, generated from both."""
    before_runs = before["runs"]
    assert isinstance(before_runs, dict)
    lines = [f"Before: {before.get('label', 'the before run')} (section footprint-before); after: this run."]
    for name, m in runs.items():
        b = before_runs.get(name)
        if b is None:
            continue
        goal = b["disk"] * DISK_GOAL
        verdict = "met" if m["disk"] <= goal else "**not met**"
        lines.append(
            f"- {name}: {b['disk']:,.0f} -> {m['disk']:,.0f} bytes on disk per decision "
            f"({m['disk'] / b['disk'] - 1:+.0%}); the goal (halved: <= {goal:,.0f}) is {verdict}. "
            f"Data column {b['json']:,.0f} -> {m['json']:,.0f}, key columns {b['keys']:,.0f} -> "
            f"{m['keys']:,.0f} bytes. DynamoDB WRU per log_decision {b['log_table']:g} -> "
            f"{m['log_table']:g} (with index writes {b['log_table'] + b['log_index']:g} -> "
            f"{m['log_table'] + m['log_index']:g}), per record_outcome {b['outcome_table']:g} -> "
            f"{m['outcome_table']:g}."
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=2000, help="decisions logged (default 2000)")
    parser.add_argument("--write-docs", action="store_true", help="update the docs (default: print only)")
    parser.add_argument(
        "--before",
        metavar="LABEL",
        help="measure the code on PYTHONPATH as the 'before' of a change (section footprint-before, "
        "LABEL names that code); a later run without it compares itself with it",
    )
    args = parser.parse_args(argv)
    runs: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-footprint-") as tmp:
        runs["small context (bench_stdio's, ~90 B)"] = asyncio.run(measure(Path(tmp), args.decisions))
        runs["1.2 KB context"] = asyncio.run(measure(Path(tmp), args.decisions, pad=1200))
    notes = [
        f"{machine_note()} {args.decisions:,} decisions logged and given an outcome through `Memory` "
        "(the tools' path) on a fresh embedded store, after 20 warm-up decisions; WRU figures are medians "
        "per call.",
        "",
        "- Disk: SQLite file size after `PRAGMA wal_checkpoint(TRUNCATE)`, before and after the decisions "
        "(rows, the key and index B-trees, page slack); split by B-tree from SQLite's `dbstat` (pages "
        "including their free space). The rollup items they update are shared and stay a constant size.",
        "- WRU: computed from the written items by DynamoDB's rules, not measured on DynamoDB; index writes "
        "assume the tables' ALL projection (docs/DYNAMODB.md).",
    ]
    if args.before:
        notes.append(f"- Code measured: {args.before}.")
    parts = [table(runs)]
    before = None if args.before else _read_before()
    if before is not None:
        parts.append(comparison(runs, before))
    parts += ["\n".join(notes), _data_comment(runs, args.before)]
    section = "footprint-before" if args.before else "footprint"
    publish(section, "\n\n".join(parts), write=args.write_docs)


if __name__ == "__main__":
    main()
