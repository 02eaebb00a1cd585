"""Four OS processes write one embedded store at once, through the real record layer: decisions,
signals with acks, and versioned updates of one shared state. Every acknowledged write must be
there afterwards, versions must strictly increase, and no "database is locked" may reach a caller.
(The reference memory server loses writes here: modelcontextprotocol/servers #4797.)"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from agent_memory.config import Settings
from agent_memory.errors import VersionConflict
from agent_memory.memory.identity import Caller
from agent_memory.memory.service import Memory
from agent_memory.models import utcnow
from agent_memory.storage.factory import open_store

PROCESSES = 4
ROUNDS = 84  # 3 writes a round (decision, state update, signal) + the acks: > 250 writes a process
SHARED = Caller("desk")  # every process also acts as this agent, updating its one state


async def _work(path: str, index: int) -> dict[str, Any]:
    settings = Settings(sqlite_path=Path(path))
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

        for i in range(ROUNDS):
            decision, _ = await memory.log_decision(
                me, "STRESS", context={"i": i}, decision_id=f"p{index}-d{i}"
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
            done["signals"].append(published.signal.signal_id)
            if i % 10 == 9:
                await ack_pending()
    return done


def _worker(path: str, index: int) -> dict[str, Any]:
    return asyncio.run(_work(path, index))


async def _drain(path: str) -> list[str]:
    """After the writers: each agent acks what is left, as it would on its next cycle."""
    settings = Settings(sqlite_path=Path(path))
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


async def test_four_processes_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(PROCESSES, mp_context=ctx) as pool:
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(
            *(loop.run_in_executor(pool, _worker, path, i) for i in range(PROCESSES))
        )
    late_acks = await _drain(path)

    settings = Settings(sqlite_path=Path(path))
    async with open_store(settings) as store:
        memory = Memory(store, settings, utcnow)
        writes = 0
        for index, done in enumerate(results):
            writes += sum(len(v) for v in done.values())
            assert done["versions"] == sorted(done["versions"]) and len(set(done["versions"])) == ROUNDS
            for decision_id in done["decisions"]:
                assert (await memory.get_decision(Caller(f"proc-{index}"), decision_id)).context is not None
            for signal_id in done["signals"]:
                signal = await memory.get_signal(Caller(f"proc-{index}"), signal_id)
                target = signal.target_agents[0]
                assert signal.processing_status[target].status == "processed"
        assert writes >= PROCESSES * 250
        all_versions = sorted(v for done in results for v in done["versions"])
        assert all_versions == list(range(1, PROCESSES * ROUNDS + 1))  # each version won exactly once
        state = await memory.get_state(SHARED)
        assert state.version == PROCESSES * ROUNDS and state.current["count"] == PROCESSES * ROUNDS
        acks = [a for done in results for a in done["acks"]] + late_acks
        assert sorted(acks) == sorted(s for done in results for s in done["signals"])
