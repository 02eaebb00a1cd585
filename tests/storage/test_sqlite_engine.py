"""What only the SQLite backend has: its file, schema migrations, query plans, locking, purging."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_memory.deadline import deadline
from agent_memory.errors import (
    ConfigurationError,
    InvalidInput,
    LimitExceeded,
    StorageBusy,
    StorageUnavailable,
    StorageUnreachable,
)
from agent_memory.storage import usage
from agent_memory.storage.engine import Check, Cond, ConditionFailed, Delete, Put, Update
from agent_memory.storage.sqlite import SCHEMA_VERSION, SqliteEngine
from agent_memory.storage.sqlite import schema as schema_module
from agent_memory.storage.sqlite.engine import (
    CHECKPOINT_EVERY,
    INLINE_MAX_BYTES,
    build_query_sql,
    prefix_upper_bound,
)
from agent_memory.storage.sqlite.schema import Migration
from tests.fixtures.sqlite import sqlite_engine


def raw(path: Path) -> sqlite3.Connection:
    """A plain connection to the engine's file, in autocommit mode, as another process would have."""
    return sqlite3.connect(path, isolation_level=None, timeout=0.1, check_same_thread=False)


@contextlib.contextmanager
def lock_held(path: Path) -> Iterator[None]:
    """Another process's connection holding the file's write lock until the block ends."""
    holder = raw(path)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def nested(levels: int) -> Any:
    """A number inside ``levels`` lists."""
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def _size(path: Path) -> int:
    return path.stat().st_size


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "memory.db"


# --- file and schema ------------------------------------------------------------------------------


async def test_a_fresh_file_gets_the_schema_in_a_new_directory(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "there" / "memory.db"
    async with sqlite_engine(path):
        pass
    conn = raw(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
    assert {"items", "items_key", "items_gsi1", "items_gsi2", "items_gsi3", "items_ttl"} <= names
    ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'items'").fetchone()[0]
    # A rowid table: rows up to ~4 KB stay on their page (see migration 2).
    assert "WITHOUT ROWID" not in ddl
    for n in (1, 2, 3):
        index_ddl = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = ?", (f"items_gsi{n}",)
        ).fetchone()[0]
        assert f"WHERE gsi{n}pk IS NOT NULL" in index_ddl
    conn.close()


async def test_reopening_is_idempotent_and_keeps_the_data(db: Path) -> None:
    async with sqlite_engine(db) as engine:
        await engine.write([Put("decisions", {"pk": "p", "sk": "s", "v": 1})])
    for _ in range(2):
        async with sqlite_engine(db) as engine:
            assert await engine.get("decisions", "p", "s") == {"pk": "p", "sk": "s", "v": 1}
    conn = raw(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == 1
    conn.close()


async def test_opening_an_up_to_date_file_does_not_wait_for_writers(db: Path) -> None:
    async with sqlite_engine(db):
        pass
    with lock_held(db):
        started = time.monotonic()
        async with sqlite_engine(db, busy_timeout=0.05, lock_timeout=0.2) as engine:
            assert await engine.get("state", "p", "s") is None
        assert time.monotonic() - started < 1.0


async def test_concurrent_opens_of_a_fresh_file_all_succeed(db: Path) -> None:
    engines = await asyncio.gather(*(SqliteEngine.open(db) for _ in range(4)))
    try:
        await asyncio.gather(
            *(e.write([Put("state", {"pk": f"p{i}", "sk": "s"})]) for i, e in enumerate(engines))
        )
        for engine in engines:
            assert len([item async for item in engine.scan("state")]) == 4
    finally:
        for engine in engines:
            await engine.close()
    conn = raw(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


async def test_migrations_upgrade_an_older_file_in_order(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with sqlite_engine(db) as engine:
        await engine.write([Put("ltm", {"pk": "p", "sk": "s"})])
    migration = Migration(
        SCHEMA_VERSION + 1, "test", ("CREATE TABLE extra (x)", "INSERT INTO extra VALUES (1)")
    )
    monkeypatch.setattr(schema_module, "MIGRATIONS", (*schema_module.MIGRATIONS, migration))
    monkeypatch.setattr(schema_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    for _ in range(2):  # the second open finds nothing to do (the INSERT would run twice otherwise)
        async with sqlite_engine(db) as engine:
            assert await engine.get("ltm", "p", "s") == {"pk": "p", "sk": "s"}
    conn = raw(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    assert conn.execute("SELECT count(*) FROM extra").fetchone()[0] == 1
    conn.close()


async def test_a_failing_migration_changes_nothing(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with sqlite_engine(db):
        pass
    migration = Migration(SCHEMA_VERSION + 1, "broken", ("CREATE TABLE extra (x)", "THIS IS NOT SQL"))
    monkeypatch.setattr(schema_module, "MIGRATIONS", (*schema_module.MIGRATIONS, migration))
    monkeypatch.setattr(schema_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(ConfigurationError):
        await SqliteEngine.open(db)
    conn = raw(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'extra'").fetchone()[0] == 0
    conn.close()


async def test_a_file_from_a_newer_version_is_refused(db: Path) -> None:
    async with sqlite_engine(db):
        pass
    conn = raw(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(ConfigurationError) as refused:
        await SqliteEngine.open(db)
    message = str(refused.value)
    assert f"schema version {SCHEMA_VERSION + 1}" in message
    assert str(db) in message
    assert "newer" in message


async def test_a_path_under_a_regular_file_is_a_configuration_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    path = blocker / "sub" / "memory.db"
    with pytest.raises(ConfigurationError) as refused:
        await SqliteEngine.open(path)
    assert str(path) in str(refused.value)
    assert "AGENT_MEMORY_SQLITE_PATH" in str(refused.value)


async def test_a_directory_as_path_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as refused:
        await SqliteEngine.open(tmp_path)
    assert str(tmp_path) in str(refused.value)
    assert "AGENT_MEMORY_SQLITE_PATH" in str(refused.value)


async def test_a_file_that_is_not_a_database_is_a_configuration_error(db: Path) -> None:
    with open(db, "wb") as garbage:  # noqa: ASYNC230 - a tiny local file in a test
        garbage.write(b"this is not an SQLite database, just some text that is long enough " * 20)
    with pytest.raises(ConfigurationError) as refused:
        await SqliteEngine.open(db)
    assert "AGENT_MEMORY_SQLITE_PATH" in str(refused.value)


# --- query plans ----------------------------------------------------------------------------------

PLAN_CASES: list[dict[str, Any]] = [
    {},
    {"forward": False},
    {"sk_gte": "b"},
    {"sk_lte": "m"},
    {"sk_gte": "b", "sk_lte": "m", "forward": False},
    {"sk_prefix": "k#"},
    {"sk_prefix": "k#", "forward": False},
]
STARTS = [False, True]


def _plan(conn: sqlite3.Connection, sql: str, params: list[Any]) -> list[str]:
    return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]


@pytest.fixture(scope="module")
async def planned_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Enough rows that a scan and a seek would differ, and no ANALYZE: the plans the engine gets.
    db = tmp_path_factory.mktemp("plans") / "memory.db"
    async with sqlite_engine(db) as engine:
        for chunk in range(0, 600, 100):
            ops = [
                Put(
                    "decisions",
                    {
                        "pk": f"p{i % 10}",
                        "sk": f"k#{i:04d}",
                        "gsi1pk": f"g{i % 3}",
                        "gsi1sk": f"k#{i % 50:03d}",
                        "gsi2pk": "one",
                        "gsi2sk": f"k#{i:04d}",
                        **({"gsi3pk": "few", "gsi3sk": f"k#{i}"} if i % 20 == 0 else {}),
                        "ttl": 1000 + i,
                    },
                )
                for i in range(chunk, chunk + 100)
            ]
            await engine.write(ops)
    return db


@pytest.mark.parametrize("index", [None, "gsi1", "gsi2", "gsi3"])
@pytest.mark.parametrize("with_start", STARTS, ids=["first-page", "next-page"])
@pytest.mark.parametrize(
    "case", PLAN_CASES, ids=[",".join(f"{k}={v}" for k, v in c.items()) or "all" for c in PLAN_CASES]
)
def test_queries_seek_an_index_and_never_sort(
    planned_db: Path, index: str | None, with_start: bool, case: dict[str, Any]
) -> None:
    start = None
    if with_start:
        start = {"pk": "G", "sk": "k#0003"}
        if index is not None:
            start = {"pk": "p3", "sk": "k#0003", f"{index}pk": "G", f"{index}sk": "k#003"}
    built = build_query_sql("decisions", "G", index=index, limit=10, start=start, **case)  # type: ignore[arg-type]
    assert built is not None
    sql, params = built
    conn = raw(planned_db)
    plan = _plan(conn, sql, params)
    conn.close()
    step = plan[0]
    expected = "USING INDEX items_key " if index is None else f"USING INDEX items_{index} "
    assert step.startswith("SEARCH items ") and expected in step, step
    assert "SCAN" not in step and "TEMP B-TREE" not in step
    if index is None:
        assert len(plan) == 1, plan
    else:
        # An index entry holds no base key (schema v5): SQLite orders each run of equal index sort
        # keys by (pk, sk) as it reads them, and stops at the limit. Never a sort of the whole range.
        assert plan[1:] in ([], ["USE TEMP B-TREE FOR RIGHT PART OF ORDER BY"]), plan
    if with_start:
        # The continuation must be part of the seek, not a filter applied after it (an index's sort
        # key is the expression COALESCE(gsiNsk, sk), which the plan shows as <expr>).
        seek = f"{'sk' if index is None else '<expr>'}{'<' if not case.get('forward', True) else '>'}?"
        assert seek in step, step


def test_scan_get_and_purge_seek_their_indexes(planned_db: Path) -> None:
    from agent_memory.storage.sqlite import engine as engine_module

    conn = raw(planned_db)
    plans = {
        "get": _plan(conn, engine_module._GET_SQL, ["decisions", "p", "s"]),
        "scan_first": _plan(conn, engine_module._SCAN_FIRST_SQL, ["decisions", 10]),
        "scan_next": _plan(conn, engine_module._SCAN_NEXT_SQL, ["decisions", "p", "s", 10]),
        "purge": _plan(conn, engine_module._PURGE_SQL, [1.0, 10]),
    }
    conn.close()
    for name, plan in plans.items():
        assert not any("SCAN" in step or "TEMP B-TREE" in step for step in plan), (name, plan)
    assert any("USING COVERING INDEX items_ttl" in step for step in plans["purge"])


def test_continuation_replaces_the_lower_bound_it_supersedes() -> None:
    built = build_query_sql(
        "decisions", "G", index="gsi1", sk_gte="a", start={"pk": "p", "sk": "s", "gsi1pk": "G", "gsi1sk": "b"}
    )
    assert built is not None
    sql = built[0]
    assert sql.count("COALESCE(gsi1sk, sk) >= ?") == 1 and "(pk, sk) <= (?, ?)" in sql
    assert built[1][2:6] == ["b", "b", "p", "s"]
    # A start before the range is moot: the range's own bound is the tighter one.
    built = build_query_sql(
        "decisions", "G", index="gsi1", sk_gte="c", start={"pk": "p", "sk": "s", "gsi1pk": "G", "gsi1sk": "b"}
    )
    assert built is not None
    assert "COALESCE(gsi1sk, sk) >= ?" in built[0] and "(pk, sk)" not in built[0] and "b" not in built[1]


@pytest.mark.parametrize(
    ("prefix", "bound"),
    [
        ("a", "b"),
        ("k#", "k$"),
        ("a\U0010ffff", "b"),
        ("\U0010ffff", None),
        ("a\ud7ff", "a\ue000"),
        ("a\uffff", "a\U00010000"),
        ("", None),
    ],
)
def test_prefix_upper_bound(prefix: str, bound: str | None) -> None:
    assert prefix_upper_bound(prefix) == bound


# --- ordering details -----------------------------------------------------------------------------


async def test_index_ties_are_ordered_by_base_key(db: Path) -> None:
    items = [
        {"pk": pk, "sk": sk, "gsi1pk": "G", "gsi1sk": "same"} for pk in ("b", "a", "c") for sk in ("2", "1")
    ]
    items += [{"pk": "z", "sk": sk, "gsi1pk": "G", "gsi1sk": sk} for sk in ("sama", "samf")]
    async with sqlite_engine(db) as engine:
        await engine.write([Put("ltm", item) for item in items])
        forward = await engine.query("ltm", "G", index="gsi1")
        expected = sorted(items, key=lambda i: (i["gsi1sk"], i["pk"], i["sk"]))
        assert forward.items == expected
        assert (await engine.query("ltm", "G", index="gsi1", forward=False)).items == expected[::-1]
        # Pages that start and end inside the run of ties continue it in the same order.
        for limit in (1, 2, 4):
            for direction in (True, False):
                paged: list[Any] = []
                start = None
                while True:
                    page = await engine.query(
                        "ltm", "G", index="gsi1", limit=limit, start=start, forward=direction
                    )
                    paged += page.items
                    if page.last_key is None:
                        break
                    start = page.last_key
                assert paged == (expected if direction else expected[::-1]), (limit, direction)
        ranged = await engine.query("ltm", "G", index="gsi1", sk_gte="same", sk_lte="same", limit=3)
        assert ranged.items == expected[1:4]
        assert (await engine.query("ltm", "G", index="gsi1", sk_gte="same", start=ranged.last_key)).items == (
            expected[4:]
        )


async def test_empty_and_crossed_bounds(db: Path) -> None:
    async with sqlite_engine(db) as engine:
        await engine.write([Put("ltm", {"pk": "p", "sk": sk}) for sk in ("a", "b", "c")])
        assert len((await engine.query("ltm", "p", sk_prefix="")).items) == 3
        assert len((await engine.query("ltm", "p", sk_gte="")).items) == 3
        assert (await engine.query("ltm", "p", sk_lte="")).items == []
        assert (await engine.query("ltm", "p", sk_gte="c", sk_lte="a")).items == []


# --- expiry ---------------------------------------------------------------------------------------


def _count(path: Path) -> int:
    conn = raw(path)
    try:
        return int(conn.execute("SELECT count(*) FROM items").fetchone()[0])
    finally:
        conn.close()


async def test_writes_purge_expired_items_lazily(db: Path) -> None:
    now = time.time()
    async with sqlite_engine(db, purge_every=4, purge_interval=3600, purge_batch=100) as engine:
        await engine.write([Put("state", {"pk": "first", "sk": "s"})])  # the first write purges
        expired = [Put("signals", {"pk": "x", "sk": f"{i}", "ttl": int(now) - 60 - i}) for i in range(6)]
        kept = [
            Put("signals", {"pk": "k", "sk": "future", "ttl": int(now) + 3600}),
            Put("signals", {"pk": "k", "sk": "float-future", "ttl": now + 3600.5}),
            Put("signals", {"pk": "k", "sk": "no-ttl"}),
            Put("signals", {"pk": "k", "sk": "text-ttl", "ttl": "yesterday"}),
        ]
        await engine.write(expired)  # write 2
        await engine.write(kept)  # write 3
        # Until a purge runs, expired items read as stored: the record layer filters them.
        assert (await engine.get("signals", "x", "0")) == {"pk": "x", "sk": "0", "ttl": int(now) - 60}
        assert len((await engine.query("signals", "x")).items) == 6
        await engine.write([Put("state", {"pk": "a", "sk": "s"})])  # write 4
        assert _count(db) == 1 + 6 + 4 + 1
        await engine.write([Delete("state", "a", "s")])  # write 5, the 4th since the last purge
        assert (await engine.query("signals", "x")).items == []
        assert len((await engine.query("signals", "k")).items) == 4
        assert _count(db) == 1 + 4


async def test_purge_is_bounded_per_round(db: Path) -> None:
    async with sqlite_engine(db, purge_batch=4, purge_every=10_000, purge_interval=3600) as engine:
        await engine.write([Put("state", {"pk": "warm", "sk": "s"})])
        await engine.write(
            [Put("signals", {"pk": "x", "sk": f"{i:02d}", "ttl": 1000 + i}) for i in range(10)]
        )
        assert await engine.purge_expired() == 4
        assert await engine.purge_expired(limit=100) == 6
        assert await engine.purge_expired() == 0
        assert await engine.purge_expired(now=0) == 0


# --- locking --------------------------------------------------------------------------------------


async def test_a_lock_held_too_long_becomes_storage_unavailable(db: Path) -> None:
    async with sqlite_engine(db, busy_timeout=0.05, lock_timeout=0.3) as engine:
        with lock_held(db):
            with pytest.raises(StorageUnavailable) as unavailable:
                await engine.write([Put("state", {"pk": "p", "sk": "s"})])
            assert "locked" in str(unavailable.value) and str(db) in str(unavailable.value)
            # WAL: reads go on while another process holds the write lock.
            assert await engine.get("state", "p", "s") is None
        await engine.write([Put("state", {"pk": "p", "sk": "s"})])
        assert await engine.get("state", "p", "s") == {"pk": "p", "sk": "s"}


async def test_a_briefly_held_lock_is_invisible(db: Path) -> None:
    async with sqlite_engine(db, busy_timeout=0.05, lock_timeout=10) as engine:
        holder = raw(db)
        holder.execute("BEGIN IMMEDIATE")
        holder.execute(
            "INSERT INTO items (tbl, pk, sk, data) VALUES ('state', 'h', 's', '{\"pk\":\"h\",\"sk\":\"s\"}')"
        )
        release = threading.Timer(0.5, lambda: holder.execute("COMMIT"))
        release.start()
        try:
            started = time.monotonic()
            await engine.write([Put("state", {"pk": "p", "sk": "s"}, (Cond.not_exists(),))])
            assert time.monotonic() - started >= 0.3
        finally:
            release.join()
            holder.close()
        assert await engine.get("state", "h", "s") == {"pk": "h", "sk": "s"}
        assert await engine.get("state", "p", "s") == {"pk": "p", "sk": "s"}


async def test_concurrent_writes_from_one_engine_are_serialised(db: Path) -> None:
    async with sqlite_engine(db) as engine:
        await engine.write([Put("state", {"pk": "c", "sk": "s", "n": 0})])

        async def bump() -> None:
            await engine.update(Update("state", "c", "s", add={"n": 1}))

        await asyncio.gather(*(bump() for _ in range(50)))
        assert await engine.get("state", "c", "s") == {"pk": "c", "sk": "s", "n": 50}


# --- accounting, lifecycle, validation -------------------------------------------------------------


async def test_every_call_is_reported_once(db: Path) -> None:
    async with sqlite_engine(db) as engine:
        with usage.metered() as used:
            await engine.write([Put("state", {"pk": "p", "sk": "s"})])
            await engine.write(
                [Put("state", {"pk": "q", "sk": "s"}), Check("state", "p", "s", (Cond.exists(),))]
            )
            await engine.update(Update("state", "p", "s", set={"a": 1}))
            await engine.get("state", "p", "s")
            await engine.query("state", "p")
            _ = [item async for item in engine.scan("state")]
    assert used.by_operation == {
        "sqlite.write": 2,
        "sqlite.update": 1,
        "sqlite.get": 1,
        "sqlite.query": 1,
        "sqlite.scan": 1,
    }
    assert used.requests == 6
    assert used.read_units == used.write_units == 0


async def test_scan_crosses_its_internal_pages(db: Path) -> None:
    async with sqlite_engine(db, scan_page=7) as engine:
        items = [{"pk": f"p{i % 3}", "sk": f"{i:02d}"} for i in range(30)]
        await engine.write([Put("ltm", item) for item in items])
        scanned = [item async for item in engine.scan("ltm")]
        assert sorted(scanned, key=lambda i: i["sk"]) == items


async def test_index_columns_follow_the_tables_indexes(db: Path) -> None:
    keys = {"gsi1pk": "a", "gsi1sk": "b", "gsi2pk": "c", "gsi2sk": "d"}
    async with sqlite_engine(db) as engine:
        await engine.write(
            [Put("state", {"pk": "p", "sk": "s", **keys}), Put("signals", {"pk": "p", "sk": "s", **keys})]
        )
        # "state" has no index, so any type is fine there, as in DynamoDB.
        await engine.write([Put("state", {"pk": "q", "sk": "s", "gsi1pk": 5})])
    conn = raw(db)
    rows = dict(
        (r[0], r[1:])
        for r in conn.execute("SELECT tbl, gsi1pk, gsi1sk, gsi2pk, gsi2sk FROM items WHERE pk = 'p'")
    )
    conn.close()
    assert rows == {"state": (None, None, None, None), "signals": ("a", "b", None, None)}


async def test_closed_engine_refuses_calls_and_closes_twice(db: Path) -> None:
    engine = await SqliteEngine.open(db)
    await engine.close()
    await engine.close()
    # Using a closed engine is a bug of the caller, not a storage fault.
    with pytest.raises(RuntimeError, match="closed"):
        await engine.get("state", "p", "s")


async def test_large_numbers_keep_their_exact_value(db: Path) -> None:
    item = {"pk": "p", "sk": "s", "n": 10**40, "ttl": 10**30, "m": -(10**38 - 1)}
    async with sqlite_engine(db) as engine:
        await engine.write([Put("state", item)])
        assert await engine.get("state", "p", "s") == item


@pytest.mark.parametrize(
    ("op", "error"),
    [
        (Put("state", {"pk": "", "sk": "s"}), InvalidInput),
        (Put("state", {"pk": "p"}), InvalidInput),
        (Put("state", {"pk": "p", "sk": 5}), InvalidInput),
        (Put("state", {"pk": "p" * 2049, "sk": "s"}), LimitExceeded),
        (Put("state", {"pk": "p", "sk": "s" * 1025}), LimitExceeded),
        (Put("decisions", {"pk": "p", "sk": "s", "gsi1pk": 5, "gsi1sk": "x"}), InvalidInput),
        (Put("decisions", {"pk": "p", "sk": "s", "gsi2sk": ""}), InvalidInput),
        (Put("state", {"pk": "p", "sk": "s", "tags": {"a", "b"}}), InvalidInput),
        (Put("state", {"pk": "p", "sk": "s", "bad": "\ud800"}), InvalidInput),
        (Put("state", {"pk": "p", "sk": "s", "deep": nested(33)}), LimitExceeded),
        (Update("state", "p", "s", set={"pk": "q"}), ValueError),
        (Update("state", "p", "s", set={"a": 1}, remove=("a",)), ValueError),
        (Update("state", "p", "s", add={"a": True}), TypeError),
        (Update("state", "p", "s", add={"a": "1"}), TypeError),  # type: ignore[dict-item]
        (Delete("nowhere", "p", "s"), ValueError),  # type: ignore[arg-type]
        (Check("state", "p", "s", (Cond("eq"),)), ValueError),
    ],
)
async def test_invalid_writes_are_refused_before_anything_is_stored(
    db: Path, op: Any, error: type[Exception]
) -> None:
    async with sqlite_engine(db) as engine:
        with pytest.raises(error):
            await engine.write([op])
        assert [item async for item in engine.scan("state")] == []
        assert [item async for item in engine.scan("decisions")] == []


async def test_invalid_transactions_and_updates_are_refused(db: Path) -> None:
    async with sqlite_engine(db) as engine:
        await engine.write([Put("state", {"pk": "p", "sk": "s", "name": "x"})])
        with pytest.raises(ValueError, match="twice"):  # a record-layer bug, not bad data
            await engine.write([Put("state", {"pk": "q", "sk": "s"}), Delete("state", "q", "s")])
        with pytest.raises(InvalidInput):
            await engine.update(Update("state", "p", "s", add={"name": 1}))
        with pytest.raises(LimitExceeded):
            body = "x" * 300_000
            await engine.write([Put("ltm", {"pk": f"p{i}", "sk": "s", "body": body}) for i in range(14)])
        assert await engine.get("state", "q", "s") is None
        assert await engine.get("state", "p", "s") == {"pk": "p", "sk": "s", "name": "x"}
        assert [item async for item in engine.scan("ltm")] == []
        # An empty write is a no-op.
        await engine.write([])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"index": "gsi1", "table": "state"},
        {"index": "gsi2", "table": "signals"},
        {"sk_prefix": "a", "sk_gte": "a"},
        {"limit": 0},
        {"limit": True},
        {"start": {"pk": "other", "sk": "s"}},
        {"start": {"pk": "p"}},
        {"index": "gsi1", "start": {"pk": "p", "sk": "s"}},
    ],
    ids=str,
)
async def test_invalid_queries_are_refused(db: Path, kwargs: dict[str, Any]) -> None:
    # Malformed queries are programming errors of the record layer: plain ValueError, never a
    # tool-facing InvalidInput.
    table = kwargs.pop("table", "decisions")
    async with sqlite_engine(db) as engine:
        with pytest.raises(ValueError):
            await engine.query(table, "p", **kwargs)


@pytest.mark.parametrize(
    ("stored", "compared"),
    [(True, 1), (1, True), (False, 0), (None, False), ("1", 1), ([1], {"0": 1})],
    ids=["true-vs-1", "1-vs-true", "false-vs-0", "null-vs-false", "str-vs-int", "list-vs-map"],
)
async def test_eq_never_matches_across_types(db: Path, stored: Any, compared: Any) -> None:
    # DynamoDB compares typed values (BOOL is not N). Not in the contract suite because moto, which
    # stands in for DynamoDB there, compares the Python values and finds True == 1.
    async with sqlite_engine(db) as engine:
        await engine.write([Put("state", {"pk": "p", "sk": "s", "v": stored})])
        with pytest.raises(ConditionFailed):
            await engine.write([Put("state", {"pk": "p", "sk": "s", "v": "new"}, (Cond.eq("v", compared),))])
        await engine.write([Put("state", {"pk": "p", "sk": "s", "v": "new"}, (Cond.eq("v", stored),))])


async def test_a_version_1_file_is_upgraded_and_keeps_its_items(tmp_path: Path) -> None:
    from agent_memory.storage.engine import Put
    from agent_memory.storage.sqlite.schema import MIGRATIONS

    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATIONS[0].statements:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO items (tbl, pk, sk, data, gsi1pk, gsi1sk) VALUES (?, ?, ?, ?, ?, ?)",
        (
            "ltm",
            "agent:a#pattern",
            "p1",
            '{"pk": "agent:a#pattern", "sk": "p1", "gsi1pk": "G", "gsi1sk": "0.5#p1", "x": 1}',
            "G",
            "0.5#p1",
        ),
    )
    conn.close()
    async with sqlite_engine(path) as engine:
        assert (await engine.get("ltm", "agent:a#pattern", "p1"))["x"] == 1  # type: ignore[index]
        page = await engine.query("ltm", "G", index="gsi1")
        assert [item["sk"] for item in page.items] == ["p1"]
        await engine.write([Put("ltm", {"pk": "agent:a#pattern", "sk": "p1", "x": 2})])
        assert (await engine.get("ltm", "agent:a#pattern", "p1"))["x"] == 2  # type: ignore[index]
    check = raw(path)
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert check.execute("SELECT count(*) FROM items").fetchone()[0] == 1


# --- calls on the event loop's thread ---------------------------------------------------------------


async def test_short_calls_run_on_the_loop_and_large_ones_on_the_worker(db: Path) -> None:
    async with sqlite_engine(db) as engine:
        stats = engine.inline_stats
        await engine.write([Put("state", {"pk": "first", "sk": "s"})])  # the first write purges: worker
        calls = stats.calls
        await engine.write([Put("state", {"pk": "small", "sk": "s", "v": 1})])
        assert await engine.get("state", "small", "s") == {"pk": "small", "sk": "s", "v": 1}
        assert (stats.calls - calls, stats.to_worker) == (2, 0)
        big = {"pk": "big", "sk": "s", "text": "x" * (INLINE_MAX_BYTES + 1)}
        await engine.write([Put("state", big)])
        assert await engine.get("state", "big", "s") == big
        page = await engine.query("state", "big")
        assert page.items == [big]
        # Each tried the loop's thread, met more than the budget, and was redone, whole, on the worker.
        assert stats.to_worker == 3
        updated = await engine.update(Update("state", "big", "s", add={"n": 1}))
        assert updated == {**big, "n": 1} and stats.to_worker == 4


async def test_reads_answer_while_a_write_waits_for_another_process(db: Path) -> None:
    async with sqlite_engine(db, busy_timeout=0.05, lock_timeout=10) as engine:
        await engine.write([Put("state", {"pk": "r", "sk": "s"})])
        big = {"pk": "big", "sk": "s", "text": "x" * (INLINE_MAX_BYTES + 1)}
        await engine.write([Put("state", big)])
        with lock_held(db):
            waiting = asyncio.create_task(engine.write([Put("state", {"pk": "w", "sk": "s"})]))
            await asyncio.sleep(0.2)
            assert not waiting.done()  # it waits for the lock without holding up the loop
            started = time.monotonic()
            assert await engine.get("state", "r", "s") == {"pk": "r", "sk": "s"}
            # A read over the inline budget runs on the worker thread: the waiting write leaves it free.
            assert await engine.get("state", "big", "s") == big
            assert time.monotonic() - started < 0.5
        await waiting
        assert await engine.get("state", "w", "s") == {"pk": "w", "sk": "s"}


async def test_writes_waiting_for_another_process_poll_the_lock_one_at_a_time(db: Path) -> None:
    async with sqlite_engine(db, lock_timeout=10) as engine:
        await engine.write([Put("state", {"pk": "first", "sk": "s"})])  # (the first write purges)
        stats = engine.inline_stats
        with lock_held(db):
            before = stats.calls
            writes = [
                asyncio.create_task(engine.write([Put("state", {"pk": f"w{i}", "sk": "s", "i": i})]))
                for i in range(20)
            ]
            await asyncio.sleep(0.3)
            assert not any(w.done() for w in writes)
            attempts = stats.calls - before
        await asyncio.gather(*writes)
        # Each tried once; then only the first in line polled (each of 20 polling on its own made
        # about 10 attempts per call in the first 25 ms alone).
        assert 20 < attempts < 20 + 50
        for i in range(20):
            assert await engine.get("state", f"w{i}", "s") == {"pk": f"w{i}", "sk": "s", "i": i}
        assert stats.to_worker == 0


async def test_a_cancelled_write_hands_its_turn_in_line_to_the_next(db: Path) -> None:
    async with sqlite_engine(db, lock_timeout=10) as engine:
        await engine.write([Put("state", {"pk": "first", "sk": "s"})])
        with lock_held(db):
            writes = [
                asyncio.create_task(engine.write([Put("state", {"pk": f"w{i}", "sk": "s"})]))
                for i in range(4)
            ]
            await asyncio.sleep(0.1)
            writes[0].cancel()  # the first in line, polling
            writes[2].cancel()  # one waiting for its turn
            await asyncio.sleep(0.1)
        done = await asyncio.wait_for(asyncio.gather(*writes, return_exceptions=True), 5)
        assert [isinstance(r, asyncio.CancelledError) for r in done] == [True, False, True, False]
        assert [await engine.get("state", f"w{i}", "s") is not None for i in range(4)] == [
            False,
            True,
            False,
            True,
        ]


async def test_writes_waiting_in_line_are_busy_past_the_lock_timeout(db: Path) -> None:
    async with sqlite_engine(db, lock_timeout=0.3) as engine:
        await engine.write([Put("state", {"pk": "first", "sk": "s"})])
        with lock_held(db):
            started = time.monotonic()
            results = await asyncio.gather(
                *(engine.write([Put("state", {"pk": f"w{i}", "sk": "s"})]) for i in range(5)),
                return_exceptions=True,
            )
            assert time.monotonic() - started < 2.0
        assert all(isinstance(r, StorageBusy) and "locked by another process" in r.message for r in results)
        for i in range(5):
            assert await engine.get("state", f"w{i}", "s") is None
        # The line is empty again: the next write goes through at once.
        await engine.write([Put("state", {"pk": "after", "sk": "s"})])
        assert await engine.get("state", "after", "s") == {"pk": "after", "sk": "s"}


async def test_the_wal_stays_small_under_a_steady_write_load_from_two_processes(db: Path) -> None:
    # Incompressible text (items are stored compressed): each write adds several pages to the WAL.
    text = os.urandom(6000).hex()
    writes = 1500
    async with sqlite_engine(db) as one, sqlite_engine(db) as other:

        async def client(first: int) -> None:  # 20 calls in flight, as a server has
            for i in range(first, writes, 20):
                await (one, other)[i % 2].write([Put("state", {"pk": f"p{i}", "sk": "s", "text": text})])

        await asyncio.gather(*(client(k) for k in range(20)))
        # Without restarts it held every page written since the start: about 30 MB.
        assert _size(Path(f"{db}-wal")) < 12 * 1024 * 1024
        for i in range(0, writes, 7):
            item = await (other, one)[i % 2].get("state", f"p{i}", "s")
            assert item == {"pk": f"p{i}", "sk": "s", "text": text}


async def test_inline_writes_are_checkpointed_by_the_worker(db: Path) -> None:
    async with sqlite_engine(db) as engine:
        for i in range(CHECKPOINT_EVERY + 1):
            await engine.write([Put("state", {"pk": f"p{i}", "sk": "s", "blob": "y" * 2000})])
        # The checkpoint runs on the worker thread, queued: the next job there finds it done.
        await engine.purge_expired()
        conn = raw(db)
        busy, wal_frames, checkpointed = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        conn.close()
        assert busy == 0 and wal_frames > 0
        # Almost everything was already copied into the database before this last checkpoint.
        assert checkpointed == wal_frames


# --- writes in flight together: one transaction ---------------------------------------------------


def _commits(engine: SqliteEngine) -> list[str]:
    """The COMMITs of the engine's loop connection, from now on."""
    seen: list[str] = []
    assert engine._inline is not None
    engine._inline.set_trace_callback(lambda sql: seen.append(sql) if sql == "COMMIT" else None)
    return seen


async def test_writes_in_flight_together_are_committed_once(db: Path) -> None:
    async with sqlite_engine(db) as engine:
        await engine.write([Put("state", {"pk": "first", "sk": "s"})])  # (the first write purges)
        commits = _commits(engine)
        await asyncio.gather(*(engine.write([Put("state", {"pk": f"p{k}", "sk": "s"})]) for k in range(5)))
        assert len(commits) == 1
        for k in range(5):
            assert await engine.get("state", f"p{k}", "s") == {"pk": f"p{k}", "sk": "s"}
        await engine.write([Put("state", {"pk": "alone", "sk": "s"})])  # a write alone: its own
        assert len(commits) == 2


async def test_a_failed_condition_in_a_group_undoes_only_its_own_write(db: Path) -> None:
    async with sqlite_engine(db) as engine:
        await engine.write([Put("state", {"pk": "n", "sk": "s", "v": 0})])
        commits = _commits(engine)
        bump = [Update("state", "n", "s", add={"v": 1})]
        results = await asyncio.gather(
            engine.write([*bump, Put("state", {"pk": "a", "sk": "s"})]),
            # Its condition sees what the write before it in the group did (v == 1).
            engine.write(
                [
                    Put("state", {"pk": "c", "sk": "s"}),
                    Update("state", "n", "s", add={"v": 1}, conditions=(Cond.eq("v", 0),)),
                ]
            ),
            engine.write([*bump, Put("state", {"pk": "b", "sk": "s"})]),
            return_exceptions=True,
        )
        assert len(commits) == 1
        assert results[0] is None and results[2] is None
        failed = results[1]
        assert isinstance(failed, ConditionFailed)
        assert (failed.index, failed.item) == (1, {"pk": "n", "sk": "s", "v": 1})
        assert await engine.get("state", "n", "s") == {"pk": "n", "sk": "s", "v": 2}
        assert await engine.get("state", "b", "s") == {"pk": "b", "sk": "s"}
        assert await engine.get("state", "c", "s") is None


async def test_a_group_that_finds_the_file_locked_waits_as_one(db: Path) -> None:
    async with sqlite_engine(db, lock_timeout=10) as engine:
        await engine.write([Put("state", {"pk": "first", "sk": "s"})])
        commits = _commits(engine)
        with lock_held(db):
            writes = [
                asyncio.create_task(engine.update(Update("state", "n", "s", add={"v": 1}))) for _ in range(4)
            ]
            await asyncio.sleep(0.2)
            assert not any(w.done() for w in writes)  # nothing answered: nothing was committed
        assert sorted(item["v"] for item in await asyncio.gather(*writes)) == [1, 2, 3, 4]
        assert len(commits) == 1  # the group's next poll found the lock free and took them all
        assert await engine.get("state", "n", "s") == {"pk": "n", "sk": "s", "v": 4}


async def test_grouped_writes_waiting_for_a_lock_fail_at_their_own_deadlines(db: Path) -> None:
    async with sqlite_engine(db, lock_timeout=0.3) as engine:
        await engine.write([Put("state", {"pk": "first", "sk": "s"})])
        with lock_held(db):
            started = time.monotonic()

            async def soon() -> None:
                with deadline(0.1):
                    await engine.write([Put("state", {"pk": "soon", "sk": "s"})])

            results = await asyncio.gather(
                soon(), engine.write([Put("state", {"pk": "late", "sk": "s"})]), return_exceptions=True
            )
            took = time.monotonic() - started
        assert isinstance(results[0], StorageUnreachable) and "deadline" in results[0].message
        assert isinstance(results[1], StorageBusy) and "locked by another process" in results[1].message
        assert 0.3 <= took < 1.0
        assert await engine.get("state", "soon", "s") is None
        assert await engine.get("state", "late", "s") is None


async def test_a_write_of_a_group_over_the_budget_runs_alone_on_the_worker(db: Path) -> None:
    async with sqlite_engine(db) as engine:
        big = {"pk": "big", "sk": "s", "text": "x" * (INLINE_MAX_BYTES + 1)}
        await engine.write([Put("state", big)])
        to_worker = engine.inline_stats.to_worker
        results = await asyncio.gather(
            engine.write([Put("state", {"pk": "a", "sk": "s"})]),
            engine.update(Update("state", "big", "s", add={"n": 1})),  # reads the big item
            engine.write([Put("state", {"pk": "b", "sk": "s"})]),
        )
        assert results[1] == {**big, "n": 1}
        assert engine.inline_stats.to_worker == to_worker + 1
        assert await engine.get("state", "a", "s") == {"pk": "a", "sk": "s"}
        assert await engine.get("state", "b", "s") == {"pk": "b", "sk": "s"}


async def test_a_write_cancelled_before_its_group_commits_is_not_written(db: Path) -> None:
    async with sqlite_engine(db) as engine:
        await engine.write([Put("state", {"pk": "first", "sk": "s"})])
        kept = asyncio.create_task(engine.write([Put("state", {"pk": "kept", "sk": "s"})]))
        dropped = asyncio.create_task(engine.write([Put("state", {"pk": "dropped", "sk": "s"})]))
        await asyncio.sleep(0)  # both are waiting for their group now
        dropped.cancel()
        await kept
        with pytest.raises(asyncio.CancelledError):
            await dropped
        assert await engine.get("state", "kept", "s") == {"pk": "kept", "sk": "s"}
        assert await engine.get("state", "dropped", "s") is None


class _FailingCommit:
    """The engine's loop connection, whose next COMMIT fails (as a full disk or an I/O error would)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.fail = 1

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT" and self.fail:
            self.fail -= 1
            raise sqlite3.OperationalError("disk I/O error")
        return self.conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


async def test_a_group_whose_commit_fails_writes_each_alone_and_once(db: Path) -> None:
    async with sqlite_engine(db) as engine:
        await engine.write([Put("state", {"pk": "first", "sk": "s"})])
        assert engine._inline is not None
        failing = _FailingCommit(engine._inline)
        engine._inline = failing  # type: ignore[assignment]
        bumps = [engine.update(Update("state", "n", "s", add={"v": 1})) for _ in range(3)]
        assert sorted(item["v"] for item in await asyncio.gather(*bumps)) == [1, 2, 3]
        assert failing.fail == 0
        assert await engine.get("state", "n", "s") == {"pk": "n", "sk": "s", "v": 3}
