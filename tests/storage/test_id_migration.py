"""Stores of the earlier layout, whose decision, pattern and signal ids were one global namespace,
migrate to per-author id spaces (issue #12): SQLite by its schema migration when the file is opened,
DynamoDB by ``agent-memory tables migrate`` (servers refuse such tables until then), and an export
of an earlier version by ``import``. Each test writes the earlier items itself (their keys spelled
here as literals: the source keeps no builder for them), migrates, then works through the real MCP
client: everything is found, and the same ids now name different records for different agents.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from agent_memory.errors import ConfigurationError
from agent_memory.models import AgentProfile, Decision, Delivery, Pattern, Signal
from agent_memory.storage import keys
from agent_memory.storage.engine import Delete, ItemEngine, Put, TableName
from agent_memory.storage.factory import open_store
from agent_memory.storage.records.base import dump, dump_compact
from agent_memory.storage.sqlite import SqliteEngine
from agent_memory.storage.sqlite.schema import SCHEMA_VERSION
from agent_memory.storage.store import MemoryStore
from agent_memory.storage.transfer import export_to, import_from
from tests.fixtures.dynamodb import FAKE_AWS_ENV, dynamo_engine, dynamo_settings
from tests.fixtures.sqlite import file_at_version, insert_text_row, sqlite_engine
from tests.server.conftest import team
from tests.support import T0, FakeClock

HUNTER, RISK = "market-hunter", "risk-manager"

PER_AUTHOR_IDS = 4
"""The SQLite schema version that moved ids into their authors' partitions."""
CREATED = T0 - timedelta(hours=1)
QUOTA_ITEM = {"pk": keys.quota_pk(RISK), "sk": keys.QUOTA_SK, "n_patterns": 1, "b": 1000}
"""Storage quota counters of the earlier store: no id migration touches them."""


def _old_items() -> list[tuple[TableName, dict[str, Any]]]:
    """Records of both agents as the earlier version wrote them (global id items, signal by id,
    inbox keys without the source)."""
    out: list[tuple[TableName, dict[str, Any]]] = []
    for agent, decision_id, dtype in ((HUNTER, "d-1", "ENTRY"), (RISK, "r-1", "RISK")):
        d = Decision(
            decision_id=decision_id, agent_id=agent, decision_type=dtype, created_at=CREATED,
            expires_at=CREATED + timedelta(days=90), context={"whales": 7},
        )  # fmt: skip
        ttl = keys.epoch(d.expires_at)
        sk = keys.decision_sk(CREATED, decision_id)
        out.append(("decisions", {
            **dump_compact(d, "outcome"), "pk": keys.decision_pk(agent, dtype), "sk": sk, "ttl": ttl,
            "gsi2pk": keys.decision_type_pk(dtype), "gsi2sk": keys.decision_type_sk(CREATED, agent, decision_id),
            "gsi3pk": keys.decision_timeline_pk(agent), "gsi3sk": sk,
        }))  # fmt: skip
        out.append(("decisions", {
            "pk": f"decision#{decision_id}", "sk": "#id", "ttl": ttl, "agent_id": agent,
            "decision_type": dtype, "created_at": keys.iso(CREATED),
        }))  # fmt: skip
    p = Pattern(
        pattern_id="p-1", agent_id=HUNTER, description="whales precede pumps", confidence=0.7,
        success_rate=0.7, sample_size=30, shared_with=[RISK], created_at=CREATED, updated_at=CREATED,
    )  # fmt: skip
    rank = keys.pattern_rank_sk(p.confidence, p.pattern_id)
    shared_rank = keys.shared_rank_sk(p.confidence, HUNTER, p.pattern_id)
    out.append(("ltm", {
        **dump(p, "feedback", "evidence"), "pk": keys.pattern_pk(HUNTER), "sk": "p-1",
        "gsi1pk": keys.pattern_pk(HUNTER), "gsi1sk": rank, "gsi2pk": keys.shared_domain_pk(p.domain),
        "gsi2sk": shared_rank, "gsi3pk": keys.SHARED_ALL_PK, "gsi3sk": shared_rank,
    }))  # fmt: skip
    out.append(("ltm", {**dump(p, "feedback", "evidence"), "pk": keys.pattern_history_pk(HUNTER),
                        "sk": keys.pattern_history_sk("p-1", 1)}))  # fmt: skip
    out.append(("ltm", {"pk": "pattern#p-1", "sk": "#id", "agent_id": HUNTER}))
    out.append(("ltm", {
        "pk": keys.shared_reader_pk(RISK), "sk": keys.shared_reader_rank_sk(0.0, HUNTER, "p-1"), "agent_id": HUNTER,
        "pattern_id": "p-1", "domain": "general", "decision_type": None, "conditions": [],
        "shared_with": [RISK], "rank": 0.0,
    }))  # fmt: skip
    s = Signal(
        signal_id="s-1", signal_type="WHALE", source_agent=HUNTER, target_agents=[RISK], confidence=0.9,
        data={"decision_id": "d-1"}, created_at=CREATED, expires_at=CREATED + timedelta(hours=24),
    )  # fmt: skip
    ttl = keys.epoch(s.expires_at)
    out.append(("signals", {
        **dump(s, "processing_status"), f"ps/{RISK}": dump(Delivery()), "pk": "signal#s-1", "sk": "#signal",
        "ttl": ttl, "gsi1pk": keys.signal_type_pk("WHALE"), "gsi1sk": f"{keys.iso(CREATED)}#s-1",
    }))  # fmt: skip
    out.append(("state", dict(QUOTA_ITEM)))
    out.append(("signals", {
        "pk": f"inbox#{RISK}", "sk": f"pending#{keys.iso(CREATED)}#s-1", "ttl": ttl, "agent_id": RISK,
        "signal": dump(s, "processing_status"), "delivery": dump(Delivery()),
    }))  # fmt: skip
    return out


async def _register(engine: ItemEngine, clock: FakeClock) -> None:
    store = MemoryStore(engine, clock)
    for agent in (HUNTER, RISK):
        await store.register_agent(AgentProfile(agent_id=agent, first_seen=CREATED, last_seen=CREATED))


async def _quota_counters(engine: ItemEngine) -> dict[str, Any] | None:
    return await engine.get("state", keys.quota_pk(RISK), keys.QUOTA_SK)


async def _works_per_author(engine: ItemEngine, clock: FakeClock, *, counted_before: int = 1) -> None:
    """The migrated records are found through the MCP tools, and ids are per author; the writes
    are counted against the quotas, from the counters the store held (``counted_before`` patterns)."""
    await MemoryStore(engine, clock).backfill_shared_index()  # what a server's start runs
    async with team(engine, clock, HUNTER, RISK) as (hunter, risk):
        assert (await hunter.resource("memory://decisions/d-1"))["context"] == {"whales": 7}
        assert (await hunter.ok("record_outcome", decision_id="d-1", success=True))["recorded"]
        inbox = await risk.ok("read_inbox")
        assert [(e["signal_id"], e["source_agent"]) for e in inbox["entries"]] == [("s-1", HUNTER)]
        assert (await risk.resource("memory://signals/s-1"))["data"] == {"decision_id": "d-1"}
        assert [p["version"] for p in (await risk.ok("pattern_history", pattern_id="p-1"))["patterns"]] == [1]
        logged = await risk.ok(
            "log_decision", decision_type="RISK", decision_id="r-2", parent_decision_id="r-1",
            patterns_applied=["p-1"],
        )  # fmt: skip
        assert logged["created"]
        acked = await risk.ok("ack_signal", signal_id="s-1", status="processed", decision_id="r-2")
        assert acked["acknowledged"]
        assert (await hunter.resource("memory://signals/s-1"))["processing_status"][RISK][
            "decision_id"
        ] == "r-2"

        # The same ids from the other agent are its own records: nothing answers "in use".
        mine = await risk.ok("log_decision", decision_type="RISK", decision_id="d-1", context={"mine": True})
        assert mine["created"]
        assert (await risk.resource("memory://decisions/d-1"))["context"] == {"mine": True}
        assert (await hunter.resource("memory://decisions/d-1"))["context"] == {"whales": 7}
        stored = await risk.ok(
            "store_pattern", pattern_id="p-1", description="risk's own", conditions=[], outcomes={},
            confidence=0.5, success_rate=0.5, sample_size=5,
        )  # fmt: skip
        assert stored["version"] == 1
        sent = await risk.ok(
            "publish_signal",
            signal_type="LIMIT",
            data={},
            target_agents=[HUNTER],
            confidence=0.5,
            signal_id="s-1",
        )
        assert sent["created"]
        # The hunter published an s-1 and received risk's: the id alone is ambiguous, and says so.
        ambiguous = await hunter.error("ack_signal", signal_id="s-1", status="processed")
        assert "pass from_agent" in ambiguous and RISK in ambiguous
        acked = await hunter.ok("ack_signal", signal_id="s-1", status="processed", from_agent=RISK)
        assert acked["acknowledged"]
        limit = await hunter.resource(f"memory://agents/{RISK}/signals/s-1")
        assert limit["signal_type"] == "LIMIT" and limit["processing_status"][HUNTER]["status"] == "processed"
        assert (await hunter.ok("pattern_history", pattern_id="p-1"))["patterns"][0][
            "description"
        ].startswith("whales")
    counters = await _quota_counters(engine)
    assert counters is not None
    # risk's writes: decisions r-2 and d-1, pattern p-1, signal s-1.
    assert (counters["n_decisions"], counters["n_patterns"], counters["n_signals"]) == (
        2,
        counted_before + 1,
        1,
    )


async def test_a_sqlite_file_of_global_ids_migrates_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = file_at_version(path, PER_AUTHOR_IDS - 1)  # the version before per-author ids
    for table, item in _old_items():
        insert_text_row(conn, table, item)
    conn.close()

    clock = FakeClock()
    engine = await SqliteEngine.open(path)  # migrates, in the transaction of the version bump
    try:
        check = sqlite3.connect(path)
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        earlier = check.execute(
            "SELECT count(*) FROM items WHERE pk LIKE 'decision#%' OR pk LIKE 'signal#%' OR sk = '#id' AND tbl = 'ltm'"
        ).fetchone()[0]
        check.close()
        assert earlier == 0
        assert await _quota_counters(engine) == QUOTA_ITEM  # left as it was
        await _register(engine, clock)
        await _works_per_author(engine, clock)
    finally:
        await engine.close()


def _cli(settings_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **FAKE_AWS_ENV, **settings_env}
    return subprocess.run(
        [sys.executable, "-m", "agent_memory.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_dynamodb_tables_of_global_ids_are_refused_then_migrated(
    dynamodb_endpoint: str, tmp_path: Path
) -> None:
    settings = dynamo_settings(dynamodb_endpoint)
    clock = FakeClock()
    async with dynamo_engine(dynamodb_endpoint, prefix=settings.table_prefix) as engine:
        await engine.write([Put(table, item) for table, item in _old_items()])
        await _register(engine, clock)
        # An export taken before the upgrade, for the import test below.
        old_export = io.StringIO()
        await export_to(engine, old_export)

        with pytest.raises(ConfigurationError, match="tables migrate"):
            async with open_store(settings):
                pass

        env = {
            "AGENT_MEMORY_BACKEND": "dynamodb",
            "AGENT_MEMORY_DYNAMODB_ENDPOINT_URL": dynamodb_endpoint,
            "AGENT_MEMORY_AWS_REGION": "us-east-1",
            "AGENT_MEMORY_TABLE_PREFIX": settings.table_prefix,
        }
        # Interrupted half-way: one item rewritten by hand as the command would (resumable).
        await engine.write([Put("decisions", {**_old_items()[1][1], "pk": keys.decision_id_pk(HUNTER, "d-1")}),
                            Delete("decisions", "decision#d-1", "#id")])  # fmt: skip
        done = await asyncio.to_thread(_cli, env, "tables", "migrate")
        assert done.returncode == 0, done.stderr
        assert (
            json.loads(done.stdout)["rewritten"] == 4
        )  # a decision id, a pattern id, a signal, an inbox entry
        again = await asyncio.to_thread(_cli, env, "tables", "migrate")
        assert json.loads(again.stdout)["rewritten"] == 0  # idempotent
        async with open_store(settings):
            pass  # served now
        assert await _quota_counters(engine) == QUOTA_ITEM  # left as it was
        await _works_per_author(engine, clock)

    # An export of the earlier version imports into a new store as per-author ids.
    async with sqlite_engine(tmp_path / "imported.db") as target:
        report = await import_from(target, old_export.getvalue().splitlines())
        # the sharing index entry is keyed by its pattern as it is imported (issue #15)
        assert await target.get("ltm", keys.shared_reader_pk(RISK), keys.shared_reader_sk(HUNTER, "p-1"))
        assert report.added["signal ref"] == 1 and report.added["decision id"] == 2
        assert await _quota_counters(target) is None  # a store's own counters are not imported
        await _works_per_author(target, FakeClock(), counted_before=0)
