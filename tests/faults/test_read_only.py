"""An SQLite store that cannot be written (a read-only file system, a read-only file): the server
still opens it and serves reads, every write answers ``storage_read_only`` with what the operator
must do, and nothing stored is lost or changed. Through the real MCP client on the real server."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from agent_memory.server.app import build_server
from tests.faults.mounts import read_only_file, remounted_read_only, small_tmpfs
from tests.server.conftest import Agent
from tests.support import settings_for

OPERATOR_ACTION = "make the file and its directory writable by the server, then restart it"

WRITES: list[tuple[str, dict[str, Any]]] = [
    ("log_decision", {"decision_type": "TRADE", "decision_id": "d-new"}),
    ("store_stm", {"key": "context/new", "value": 1}),
    ("update_state", {"patch": {"current": {"cycle": 2}}, "expected_version": 1}),
    ("publish_signal", {"signal_type": "WHALE", "data": {}, "target_agents": ["risk"], "confidence": 0.5}),
    ("record_outcome", {"decision_id": "d-0", "success": True}),
]


@asynccontextmanager
async def agent(db: Path) -> AsyncIterator[Agent]:
    async with Client(build_server(settings_for(agent_id="hunter", sqlite_path=db))) as client:
        yield Agent(client)


async def _fill(db: Path) -> dict[str, Any]:
    async with agent(db) as hunter:
        for i in range(3):
            await hunter.ok("log_decision", decision_type="TRADE", decision_id=f"d-{i}", context={"i": i})
        await hunter.ok("store_stm", key="context/market", value={"trend": "up"})
        await hunter.ok("update_state", patch={"current": {"cycle": 1}}, expected_version=0)
        return await _memory(hunter)


async def _memory(hunter: Agent) -> dict[str, Any]:
    """What the agent can read of its memory."""
    recent = await hunter.ok("recall_stm")
    state = await hunter.ok("get_state")
    whole = await hunter.resource("memory://decisions/d-1")
    return {
        "decisions": [d["decision_id"] for d in recent["decisions"]],
        "notes": recent["notes"],
        "state": (state["version"], state["current"]),
        "d-1": whole["context"],
    }


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def _check_read_only(
    db: Path, made_read_only: Callable[[], AbstractContextManager[None]], why: str
) -> None:
    before = await _fill(db)
    digest = _digest(db)
    with made_read_only():
        async with agent(db) as hunter:
            assert await _memory(hunter) == before  # reads work
            for tool, args in WRITES:
                text, error = await hunter.failure(tool, **args)
                assert error["code"] == "storage_read_only" and error["retryable"] is False, text
                assert f"cannot be written ({why})" in text and OPERATOR_ACTION in text, text
                assert "nothing was written" in text
            assert await _memory(hunter) == before  # nothing changed, nothing half-written
        assert _digest(db) == digest
    # Writable again: the memory is whole, and writes resume on a restarted server.
    async with agent(db) as hunter:
        assert await _memory(hunter) == before
        await hunter.ok("log_decision", decision_type="TRADE", decision_id="d-after")


async def test_a_read_only_file_system_serves_reads_and_refuses_writes(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", 4096) as disk:
        await _check_read_only(disk / "memory.db", lambda: remounted_read_only(disk), "read-only file system")


async def test_a_read_only_file_serves_reads_and_refuses_writes(tmp_path: Path) -> None:
    db = tmp_path / "memory.db"
    await _check_read_only(db, lambda: read_only_file(db), "read-only file")


async def test_a_read_only_store_that_needs_an_upgrade_is_refused_saying_why(tmp_path: Path) -> None:
    import sqlite3

    from agent_memory.errors import StorageReadOnly
    from tests.fixtures.sqlite import sqlite_engine

    with small_tmpfs(tmp_path / "disk", 4096) as disk:
        db = disk / "memory.db"
        await _fill(db)
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA user_version = 1")  # as if written by an older agent-memory
        conn.close()
        digest = _digest(db)
        with remounted_read_only(disk), pytest.raises(StorageReadOnly) as refused:
            async with sqlite_engine(db):
                pass
        assert "schema needs an upgrade, which cannot be written" in refused.value.message
        assert OPERATOR_ACTION in refused.value.message and _digest(db) == digest
