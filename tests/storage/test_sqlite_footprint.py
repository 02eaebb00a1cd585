"""Schema v5 of the embedded store (issue #14): index entries without the base key and item JSON
compressed in the data column. A store of schema 4 upgrades in place and answers every MCP read as
before; the data column round-trips any item, and refuses damaged data in our own words; the bytes
on disk per decision stay under the goal."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agent_memory.errors import StorageCorrupt
from agent_memory.memory.identity import Caller
from agent_memory.models import Outcome
from agent_memory.storage.engine import Put, Update
from agent_memory.storage.sqlite import SqliteEngine
from agent_memory.storage.sqlite import items as rows
from agent_memory.storage.sqlite.schema import SCHEMA_VERSION
from tests.fixtures.sqlite import INSERT_ROW, file_at_version, sqlite_engine
from tests.server.conftest import Agent, team
from tests.support import FakeClock, memory_on

HUNTER, RISK = "market-hunter", "risk-manager"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "memory.db"


async def _work(hunter: Agent, risk: Agent, clock: FakeClock) -> None:
    for i in range(6):
        logged = await hunter.ok(
            "log_decision",
            decision_type="SOURCE_SELECTION" if i % 2 else "RISK_CHECK",
            decision_id=f"d-{i}",
            context={"whale_count": i, "note": "été ☃"},
            reasoning={"chosen": "whales"},
        )
        assert logged["created"]
        if i < 4:
            await hunter.ok("record_outcome", decision_id=f"d-{i}", success=i % 3 != 0, quality_score=0.5)
        clock.advance(seconds=1)
    await hunter.ok(
        "store_pattern", pattern_id="p-1", description="whales lead", conditions=[], outcomes={"win": 1},
        confidence=0.7, success_rate=0.6, sample_size=9, shared_with=["*"],
    )  # fmt: skip
    await hunter.ok(
        "publish_signal",
        signal_type="WHALES",
        data={"decision_id": "d-1"},
        target_agents=[RISK],
        confidence=0.8,
    )
    await risk.ok("update_state", patch={"current": {"mode": "calm"}}, expected_version=0)


async def _reads(hunter: Agent, risk: Agent) -> list[Any]:
    """What the MCP reads answer: through every index the store has."""
    return [
        await hunter.ok("search_decisions"),
        await hunter.ok("search_decisions", oldest_first=True, limit=2),
        await hunter.ok("search_decisions", decision_type="SOURCE_SELECTION"),
        await hunter.ok("search_decisions", success=True),
        await hunter.ok("search_decisions", success=False),
        await risk.ok("search_decisions", decision_type="RISK_CHECK", all_agents=False),
        await hunter.resource("memory://decisions/d-3"),
        await hunter.ok("recall_stm"),
        await risk.ok("recall_patterns", context={"whale_count": 3}),
        await hunter.ok("pattern_history", pattern_id="p-1"),
        await risk.ok("read_inbox"),
        await risk.ok("get_state"),
        {k: v for k, v in (await hunter.ok("get_analytics", window="24h")).items() if k != "generated_at"},
    ]


def _index_sql(path: Path) -> dict[str, str]:
    conn = sqlite3.connect(path)
    try:
        found = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        return {name: sql for name, sql in found}
    finally:
        conn.close()


async def test_a_version_4_store_upgrades_in_place_and_answers_every_read_as_before(tmp_path: Path) -> None:
    current, old = tmp_path / "current.db", tmp_path / "v4.db"
    clock = FakeClock()
    async with sqlite_engine(current) as engine, team(engine, clock, HUNTER, RISK) as (hunter, risk):
        await _work(hunter, risk, clock)
        expected = await _reads(hunter, risk)

    # The same items in a file of schema 4, as it stored them: the JSON as TEXT, the indexes ending
    # with (pk, sk).
    source = sqlite3.connect(current)
    items = source.execute(
        "SELECT tbl, pk, sk, data, ttl, gsi1pk, gsi1sk, gsi2pk, gsi2sk, gsi3pk, gsi3sk FROM items"
    ).fetchall()
    source.close()
    assert any(isinstance(item[3], bytes) for item in items)
    conn = file_at_version(old, 4)
    for item in items:
        text = rows.decode_data(item[3])
        conn.execute(INSERT_ROW, (*item[:3], text if isinstance(text, str) else text.decode(), *item[4:]))
    conn.close()
    assert "pk, sk)" in _index_sql(old)["items_gsi1"]

    async with sqlite_engine(old) as engine, team(engine, clock, HUNTER, RISK) as (hunter, risk):
        assert await _reads(hunter, risk) == expected
        check = sqlite3.connect(old)
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert check.execute("SELECT count(*) FROM items").fetchone()[0] == len(items)
        # Rows are compressed when next written, not by the upgrade (reads write only counters).
        blob = "SELECT count(*) FROM items WHERE tbl = 'decisions' AND typeof(data) = 'blob'"
        assert check.execute(blob).fetchone()[0] == 0
        check.close()
        await hunter.ok("record_outcome", decision_id="d-5", success=True)
        found = (await hunter.ok("search_decisions", success=True))["decisions"]
        assert "d-5" in [d["decision_id"] for d in found]
        assert (await hunter.resource("memory://decisions/d-5"))["context"] == {
            "whale_count": 5,
            "note": "été ☃",
        }
    check = sqlite3.connect(old)
    assert check.execute(blob + " AND sk LIKE '%#d-5'").fetchone()[0] == 1
    check.close()
    for n in (1, 2, 3):
        sql = _index_sql(old)[f"items_gsi{n}"]
        assert (
            sql == _index_sql(current)[f"items_gsi{n}"] and f"(tbl, gsi{n}pk, COALESCE(gsi{n}sk, sk))" in sql
        )


@pytest.mark.parametrize(
    "item",
    [
        {"a": 1},
        {"decision_id": "d-1", "context": {"text": 'été ☃ 𝄞 \u0000 "quoted"'}, "n": 1.5, "ok": True},
        {"blob": "x" * 300_000},
        {"noise": os.urandom(3000).hex()},
        {"list": [None, [], {}, -0.0, 10**30]},
        {"list": [None, [], {}, -0.0, 10**30] * 40, "big": 10**37 + 1},
    ],
    ids=["short", "unicode", "compressible", "incompressible", "values", "compressed-values"],
)
async def test_the_data_column_round_trips_any_item(db: Path, item: dict[str, Any]) -> None:
    text = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
    stored = rows.encode_data(text)
    assert json.loads(rows.decode_data(stored)) == item
    assert rows.json_length(stored) == (len(text.encode()) if isinstance(stored, bytes) else len(text))
    if isinstance(stored, bytes):
        assert len(stored) < len(text.encode())
    async with sqlite_engine(db) as engine:
        await engine.write([_put({"pk": "p", "sk": "s", **item})])
        assert await engine.get("state", "p", "s") == {"pk": "p", "sk": "s", **item}
        # Twice: the second read finds the row's JSON remembered (its digit scan with it).
        for _ in range(2):
            assert (await engine.query("state", "p")).items == [{"pk": "p", "sk": "s", **item}]


def _put(item: dict[str, Any]) -> Put:
    return Put("state", item)


async def test_an_item_written_by_an_update_is_kept_as_plain_json(db: Path) -> None:
    """Counters (rollups, quotas) are read, changed and rewritten by every write that counts in
    them: the engine keeps an item an update adds to uncompressed, whatever its size, while a
    put of the same JSON, or an update that only sets attributes, compresses it; all read back."""
    counters = {f"count#{i:03d}": i for i in range(60)}
    async with sqlite_engine(db) as engine:
        for pk in ("put", "add", "set"):
            await engine.write([_put({"pk": pk, "sk": "s", **counters})])
        await engine.update(Update("state", "add", "s", add={"count#000": 1}))
        await engine.update(Update("state", "set", "s", set={"count#000": 1}))
        for pk in ("add", "set"):
            assert await engine.get("state", pk, "s") == {"pk": pk, "sk": "s", **counters, "count#000": 1}
    conn = sqlite3.connect(db)
    kinds = dict(conn.execute("SELECT pk, typeof(data) FROM items").fetchall())
    conn.close()
    assert kinds == {"put": "blob", "add": "text", "set": "blob"}


async def test_signal_items_are_stored_as_plain_json_and_compressed_ones_read_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signals table's items (a signal, its inbox entries and refs) all expire with their
    signal: they are stored as plain JSON. A store whose signal items were compressed (written
    before) answers every signal read and acknowledgement as one written now, and an item it
    rewrites is then plain."""
    answers: dict[str, list[Any]] = {}
    kinds: dict[str, set[str]] = {}
    for name, plain in (("compressed", frozenset[str]()), ("plain", rows.PLAIN_TABLES)):
        db, clock = tmp_path / f"{name}.db", FakeClock()
        monkeypatch.setattr(rows, "PLAIN_TABLES", plain)
        async with sqlite_engine(db) as engine, team(engine, clock, HUNTER, RISK, "observer") as agents:
            hunter, risk, observer = agents
            for i in range(2):
                await hunter.ok(
                    "publish_signal",
                    signal_id=f"s-{i}",
                    signal_type="WHALES",
                    data={"note": "whales moving " * 20, "i": i},
                    target_agents=[RISK, "observer"],
                    confidence=0.8,
                )
            conn = sqlite3.connect(db)
            kinds[name] = {k for (k,) in conn.execute("SELECT typeof(data) FROM items WHERE tbl = 'signals'")}
            conn.close()
            monkeypatch.setattr(rows, "PLAIN_TABLES", frozenset(("signals",)))  # as this version writes
            answers[name] = [
                await risk.ok("read_inbox"),
                await risk.ok("ack_signal", signal_id="s-0", status="processed"),
                await risk.ok("read_inbox", status="processed"),
                await observer.ok("read_inbox"),
                await hunter.resource("memory://signals/s-0"),
            ]
        conn = sqlite3.connect(db)
        acked = "SELECT typeof(data) FROM items WHERE tbl = 'signals' AND (pk LIKE '%#signal#s-0' OR sk LIKE 'processed#%')"
        assert {k for (k,) in conn.execute(acked)} == {"text"}
        conn.close()
    assert kinds == {"compressed": {"blob", "text"}, "plain": {"text"}}  # (refs are too short to compress)
    assert answers["compressed"] == answers["plain"]


async def test_damaged_data_is_refused_as_storage_corrupt(db: Path) -> None:
    async with sqlite_engine(db) as engine:
        await engine.write([_put({"pk": "p", "sk": "s", "context": {"text": "whales " * 60}})])
    conn = sqlite3.connect(db)
    (stored,) = conn.execute("SELECT data FROM items WHERE pk = 'p'").fetchone()
    assert isinstance(stored, bytes)
    damaged = {
        "bits": stored[:-6] + b"\xff" * 6,
        "truncated": stored[:-4],
        "format": b"\x09" + stored[1:],
        "header": b"\x01\xff\xff\xff\xff\xff\xff",
    }
    conn.close()
    for name, value in damaged.items():
        conn = sqlite3.connect(db)
        conn.execute("UPDATE items SET data = ? WHERE pk = 'p'", (value,))
        conn.commit()
        conn.close()
        async with sqlite_engine(db) as engine:
            with pytest.raises(StorageCorrupt) as refused:
                await engine.get("state", "p", "s")
        assert "stored item's data" in refused.value.message, name


async def test_bytes_on_disk_per_decision_stay_under_half_of_schema_4s(tmp_path: Path) -> None:
    """The bench_footprint workload (its small context), on a smaller scale: 2,925 bytes per
    decision before issue #14 (docs/BENCHMARKS.md, footprint-before), so at most 1,462."""
    path = tmp_path / "footprint.db"
    clock = FakeClock()
    engine = await SqliteEngine.open(path)
    try:
        memory = memory_on(engine, clock)
        me = Caller("bench")
        await memory.register(me)

        async def decide(i: int) -> None:
            context = {
                "market": {"trend": "bullish" if i % 2 else "bearish", "volatility": round(0.1 * (i % 5), 1)},
                "whale_count": i % 10,
                "cycle": i,
            }
            d, _ = await memory.log_decision(
                me, "SOURCE_SELECTION", context=context, reasoning={"chosen": "whaleMovements", "score": 0.8}
            )
            await memory.record_outcome(me, d.decision_id, Outcome(success=i % 3 != 0, quality_score=0.75))
            clock.advance(seconds=0.37)

        for i in range(20):
            await decide(i)
        before = _disk(path)
        n = 600
        for i in range(n):
            await decide(i)
        per_decision = (_disk(path) - before) / n
    finally:
        await engine.close()
    assert per_decision <= 2925 / 2, per_decision


def _disk(path: Path) -> int:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path.stat().st_size
