"""Four OS processes write one store at once, through the real record layer: decisions of one
shared agent, signals with acks, and versioned updates of one shared state. Every acknowledged
write must be there afterwards, every state version won by exactly one writer (no lost update),
the rollup counters must count every decision and signal, and no "database is locked" may reach
a caller. On the embedded store (one SQLite file) and on DynamoDB Local (Amazon's engine; moto
cannot show this race: it is not atomic across its threads).
(The reference memory server loses writes here: modelcontextprotocol/servers #4797.)"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from agent_memory import rollups
from agent_memory.config import Settings
from agent_memory.errors import VersionConflict
from agent_memory.memory.identity import Caller
from agent_memory.memory.service import Memory
from agent_memory.models import utcnow
from agent_memory.storage import keys
from agent_memory.storage.factory import open_store
from tests.fixtures.dynamodb import dynamo_settings

PROCESSES = 4
SHARED = Caller("desk")  # every process also acts as this agent: its decisions and its one state
# 3 writes a round (decision, state update, signal) + the acks. SQLite: > 250 writes a process;
# DynamoDB Local: 200 increments of the one state in all.
ROUNDS = {"sqlite": 84, "dynamodb": 50}


@pytest.fixture(params=["sqlite", "dynamodb"])
async def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """Keyword arguments of the Settings every process opens (plain data: they cross processes)."""
    if request.param == "sqlite":
        yield {"sqlite_path": str(tmp_path / "shared.db")}
        return
    from agent_memory.storage.dynamodb.admin import create_tables, delete_tables

    settings = dynamo_settings(request.getfixturevalue("dynamodb_endpoint"))
    await create_tables(settings)
    try:
        yield {
            "backend": "dynamodb",
            "dynamodb_endpoint_url": settings.dynamodb_endpoint_url,
            "aws_region": settings.aws_region,
            "table_prefix": settings.table_prefix,
        }
    finally:
        await delete_tables(settings, wait=False)


async def _work(options: dict[str, Any], index: int, rounds: int) -> dict[str, Any]:
    settings = Settings(**options)
    me, target = Caller(f"proc-{index}"), f"proc-{(index + 1) % PROCESSES}"
    done: dict[str, Any] = {"decisions": [], "versions": [], "signals": [], "acks": []}
    async with open_store(settings) as store:
        memory = Memory(store, settings, utcnow)
        await memory.register(me)

        async def ack_pending() -> None:
            page = await memory.read_inbox(me, limit=50)
            for entry in page.items:
                _, acked = await memory.ack_signal(me, entry.signal.signal_id, "processed")
                if acked:
                    done["acks"].append(entry.signal.signal_id)

        for i in range(rounds):
            decision, _ = await memory.log_decision(
                SHARED, "STRESS", context={"i": i}, decision_id=f"p{index}-d{i}"
            )
            done["decisions"].append(decision.decision_id)
            while True:
                state = await memory.get_state(SHARED)
                try:
                    count = state.current.get("count", 0)
                    new = await memory.update_state(SHARED, {"current": {"count": count + 1}}, state.version)
                    done["versions"].append(new.version)
                    break
                except VersionConflict:
                    continue
            published = await memory.publish_signal(
                me, signal_type="STRESS", data={"i": i}, target_agents=[target], confidence=0.5,
                signal_id=f"p{index}-s{i}",
            )  # fmt: skip
            done["signals"].append(published.signal_id)
            if i % 10 == 9:
                await ack_pending()
    return done


def _worker(options: dict[str, Any], index: int, rounds: int) -> dict[str, Any]:
    return asyncio.run(_work(options, index, rounds))


async def _drain(options: dict[str, Any]) -> list[str]:
    """After the writers: each agent acks what is left, as it would on its next cycle."""
    settings = Settings(**options)
    acked: list[str] = []
    async with open_store(settings) as store:
        memory = Memory(store, settings, utcnow)
        for index in range(PROCESSES):
            me = Caller(f"proc-{index}")
            while page := (await memory.read_inbox(me, limit=50)).items:
                for entry in page:
                    await memory.ack_signal(me, entry.signal.signal_id, "processed")
                    acked.append(entry.signal.signal_id)
    return acked


def _total(rows: list[Any], counter: str) -> float:
    return float(sum(row.counters.get(counter, 0) for row in rows))


async def test_four_processes_lose_nothing(
    store_settings: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    backend = request.node.callspec.params["store_settings"]
    rounds = ROUNDS[backend]
    started = utcnow()
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(PROCESSES, mp_context=ctx) as pool:
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(
            *(loop.run_in_executor(pool, _worker, store_settings, i, rounds) for i in range(PROCESSES))
        )
    late_acks = await _drain(store_settings)
    finished = utcnow()

    settings = Settings(**store_settings)
    async with open_store(settings) as store:
        memory = Memory(store, settings, utcnow)
        writes = 0
        for index, done in enumerate(results):
            writes += sum(len(v) for v in done.values())
            assert done["versions"] == sorted(done["versions"]) and len(set(done["versions"])) == rounds
            for decision_id in done["decisions"]:
                assert (await memory.get_decision(SHARED, decision_id)).context is not None
            for signal_id in done["signals"]:
                signal = await memory.get_signal(Caller(f"proc-{index}"), signal_id)
                target = signal.target_agents[0]
                assert signal.processing_status[target].status == "processed"
        assert writes >= PROCESSES * rounds * 3
        all_versions = sorted(v for done in results for v in done["versions"])
        assert all_versions == list(range(1, PROCESSES * rounds + 1))  # each version won exactly once
        state = await memory.get_state(SHARED)
        assert state.version == PROCESSES * rounds and state.current["count"] == PROCESSES * rounds
        acks = [a for done in results for a in done["acks"]] + late_acks
        assert sorted(acks) == sorted(s for done in results for s in done["signals"])

        # The rollups, incremented in the same transactions by four writers at once, lost nothing.
        for grain in ("hour", "day"):
            rows = await store.query_rollups(
                SHARED.agent_id, grain, keys.bucket(started, grain), keys.bucket(finished, grain)
            )
            assert _total(rows, rollups.DECISIONS) == PROCESSES * rounds, grain
        first, last = keys.bucket(started, "hour"), keys.bucket(finished + timedelta(days=8), "hour")
        signal_rows = [
            row
            for index in range(PROCESSES)
            for row in await store.query_signal_rollups(f"proc-{index}", first, last)
        ]
        for counter in (rollups.PUBLISHED, rollups.RECEIVED, rollups.PROCESSED):
            assert _total(signal_rows, counter) == PROCESSES * rounds, counter
