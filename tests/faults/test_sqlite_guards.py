"""The SQLite engine's guards under real faults: a full disk (a small tmpfs), a damaged file, a
wall clock that jumps, a file from a newer version, a lock held by another process.

Each test asserts what the caller sees (code, retryable, text) and that what was stored is intact.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
import uuid
from pathlib import Path

import pytest

from agent_memory.errors import (
    ConfigurationError,
    StorageBusy,
    StorageCorrupt,
    StorageFull,
)
from agent_memory.storage.engine import Put
from agent_memory.storage.sqlite import SCHEMA_VERSION, SqliteEngine
from agent_memory.storage.sqlite.engine import JOURNAL_SIZE_LIMIT
from tests.faults.mounts import small_tmpfs
from tests.fixtures.sqlite import sqlite_engine

DAY = 86400.0


def _fill(path: Path) -> None:
    """Take every free byte of the file system holding ``path``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


async def test_a_full_disk_is_storage_full_and_freed_space_brings_writes_back(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", 768) as disk:
        db = disk / "memory.db"
        async with sqlite_engine(db, quick_check_seconds=0) as engine:
            stored = []
            for i in range(20):
                item = {"pk": "kept", "sk": f"{i:03d}", "body": "k" * 2000}
                await engine.write([Put("state", item)])
                stored.append(item)
            _fill(disk / "ballast")
            with pytest.raises(StorageFull) as caught:
                for i in range(2000):
                    await engine.write([Put("state", {"pk": "more", "sk": f"{i:04d}", "body": "m" * 3000})])
            error = caught.value
            assert (error.code, error.retryable) == ("storage_full", False)
            assert "disk holding the database is full" in error.message
            assert "free disk space" in error.message and "resume by themselves" in error.message
            # Reads still work, and nothing acknowledged was lost.
            page = await engine.query("state", "kept", limit=100)
            assert page.items == stored

            (disk / "ballast").unlink()
            await engine.write([Put("state", {"pk": "after", "sk": "1", "body": "back"})])
            assert await engine.get("state", "after", "1") == {"pk": "after", "sk": "1", "body": "back"}
            assert (await engine.query("state", "kept", limit=100)).items == stored
        # The WAL was checkpointed and truncated, not left at its largest.
        assert _size(Path(f"{db}-wal")) <= JOURNAL_SIZE_LIMIT


def _damage(db: Path) -> None:
    """Overwrite the pages after the first two with garbage (the header and schema stay)."""
    size = db.stat().st_size
    with open(db, "r+b") as f:
        f.seek(2 * 4096)
        f.write(b"\xa5" * (size - 2 * 4096))


async def _damaged_db(tmp_path: Path) -> Path:
    db = tmp_path / "memory.db"
    async with sqlite_engine(db) as engine:
        for i in range(200):
            await engine.write([Put("state", {"pk": f"p{i % 7}", "sk": f"{i:04d}", "body": "x" * 300})])
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    _damage(db)
    return db


async def test_a_damaged_file_found_at_start_up_refuses_writes(tmp_path: Path) -> None:
    db = await _damaged_db(tmp_path)
    before = db.read_bytes()
    async with sqlite_engine(db, quick_check_seconds=5) as engine:
        assert engine.corruption is not None
        with pytest.raises(StorageCorrupt) as caught:
            await engine.write([Put("state", {"pk": "new", "sk": "1"})])
        error = caught.value
        assert (error.code, error.retryable) == ("storage_corrupt", False)
        assert "damaged" in error.message and "import the last export" in error.message
    assert db.read_bytes() == before  # nothing more was written into the damaged file


async def test_the_first_malformed_read_refuses_writes_from_then_on(tmp_path: Path) -> None:
    db = await _damaged_db(tmp_path)
    async with sqlite_engine(db, quick_check_seconds=0) as engine:
        assert engine.corruption is None  # not checked at start-up
        with pytest.raises(StorageCorrupt) as read:
            for i in range(7):
                await engine.query("state", f"p{i}", limit=100)
        assert read.value.code == "storage_corrupt"
        # Before #13 the damaged file kept accepting writes while reads failed as "disk full?".
        with pytest.raises(StorageCorrupt, match="writes are refused"):
            await engine.write([Put("state", {"pk": "new", "sk": "1"})])


async def test_a_clock_jump_does_not_make_the_purge_delete_live_items(tmp_path: Path) -> None:
    db = tmp_path / "memory.db"
    now = time.time()
    live = [{"pk": "live", "sk": f"{i}", "ttl": int(now + 50 * DAY)} for i in range(5)]
    expired = {"pk": "old", "sk": "1", "ttl": int(now - 60)}
    async with sqlite_engine(db, purge_every=1, wall_clock=lambda: now) as engine:
        await engine.write([Put("signals", item) for item in [*live, expired]])
        await engine.write([Put("state", {"pk": "w", "sk": "1"})])
        assert await engine.get("signals", "old", "1") is None  # a true expiry is purged

    jumped = now + 100 * DAY
    for _ in range(2):  # in one process, and again after a restart
        async with sqlite_engine(db, purge_every=1, wall_clock=lambda: jumped) as engine:
            for i in range(3):
                await engine.write([Put("state", {"pk": "w", "sk": f"{i}"})])
            assert await engine.purge_expired() == 0
            assert (await engine.query("signals", "live")).items == live

    # An operator (or a job) that knows the time can still purge explicitly.
    async with sqlite_engine(db, wall_clock=lambda: jumped) as engine:
        assert await engine.purge_expired(now=jumped) == 5


async def test_a_small_clock_step_is_believed(tmp_path: Path) -> None:
    db = tmp_path / "memory.db"
    now = time.time()
    soon = {"pk": "soon", "sk": "1", "ttl": int(now + DAY)}
    async with sqlite_engine(db, purge_every=1, wall_clock=lambda: now) as engine:
        await engine.write([Put("signals", soon)])
    async with sqlite_engine(db, purge_every=1, wall_clock=lambda: now + 2 * DAY) as engine:
        await engine.write([Put("state", {"pk": "w", "sk": "1"})])
        assert await engine.get("signals", "soon", "1") is None


async def test_a_future_version_file_is_refused_before_it_is_changed(tmp_path: Path) -> None:
    db = tmp_path / "memory.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE items (x)")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(ConfigurationError, match="newer agent-memory"):
        await SqliteEngine.open(db)
    assert db.read_bytes() == before
    assert _size(Path(f"{db}-wal")) == 0
    check = sqlite3.connect(db)
    assert check.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # never switched to WAL
    check.close()


async def test_the_database_and_its_wal_are_private(tmp_path: Path) -> None:
    db = tmp_path / "fresh" / "memory.db"
    old = os.umask(0o022)
    try:
        async with sqlite_engine(db) as engine:
            await engine.write([Put("state", {"pk": "a", "sk": "1"})])
            for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    finally:
        os.umask(old)


async def test_a_lock_held_past_the_timeout_is_storage_busy(tmp_path: Path) -> None:
    db = tmp_path / "memory.db"
    async with sqlite_engine(db, lock_timeout=0.5, busy_timeout=0.1) as engine:
        await engine.write([Put("state", {"pk": "a", "sk": "1"})])
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StorageBusy) as caught:
                await engine.write([Put("state", {"pk": "b", "sk": f"{uuid.uuid4()}"})])
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        error = caught.value
        assert (error.code, error.retryable) == ("storage_busy", True)
        assert error.retry_after_s is not None and "locked by another process" in error.message
        assert await engine.get("state", "a", "1") == {"pk": "a", "sk": "1"}
