"""Several OS processes writing one SQLite file at once: nothing lost, nothing half-done, no lock errors.

Each process is what an agent's stdio server is: its own interpreter, event loop and engine. They
start together on a fresh file (so they also race to create the schema), then interleave
conditional read-modify-write bumps of one shared counter with unique conditional puts.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
import traceback
from pathlib import Path
from typing import Any

from agent_memory.storage.engine import Cond, ConditionFailed, Put, Update
from agent_memory.storage.sqlite import SqliteEngine

PROCESSES = 4
WRITES_PER_PROCESS = 250
COUNTER_PK, COUNTER_SK = "counter", "shared"


async def _bump(engine: SqliteEngine, result: dict[str, Any]) -> None:
    """Optimistic read-modify-write: read the version, write only if it is still that version."""
    while True:
        current = await engine.get("state", COUNTER_PK, COUNTER_SK)
        assert current is not None
        update = Update(
            "state",
            COUNTER_PK,
            COUNTER_SK,
            add={"version": 1},
            conditions=(Cond.eq("version", current["version"]),),
        )
        try:
            after = await engine.update(update)
        except ConditionFailed:
            result["conflicts"] += 1
            continue
        result["bumps"] += 1
        result["versions"].append(after["version"])
        return


async def _work(path: str, proc: int, barrier: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "proc": proc,
        "bumps": 0,
        "conflicts": 0,
        "puts": [],
        "errors": [],
        "versions": [],
    }
    # Everyone opens the fresh file at the same moment: the schema creation races too.
    await asyncio.to_thread(barrier.wait)
    async with await SqliteEngine.open(path) as engine:
        with contextlib.suppress(ConditionFailed):  # only the first process creates the counter
            await engine.write(
                [Put("state", {"pk": COUNTER_PK, "sk": COUNTER_SK, "version": 0}, (Cond.not_exists(),))]
            )
        for i in range(WRITES_PER_PROCESS):
            try:
                if i % 2 == 0:
                    await _bump(engine, result)
                else:
                    sk = f"{proc}-{i:04d}"
                    item = {"pk": "puts", "sk": sk, "proc": proc, "i": i}
                    await engine.write([Put("signals", item, (Cond.not_exists(),))])
                    result["puts"].append(sk)
            except Exception:
                result["errors"].append(traceback.format_exc())
    return result


def _worker(path: str, proc: int, barrier: Any, results: Any) -> None:
    try:
        results.put(asyncio.run(_work(path, proc, barrier)))
    except BaseException:
        results.put(
            {"proc": proc, "errors": [traceback.format_exc()], "bumps": 0, "puts": [], "versions": []}
        )


async def test_processes_sharing_one_file_lose_no_write(tmp_path: Path) -> None:
    path = str(tmp_path / "shared" / "memory.db")
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    results_queue = ctx.Queue()
    processes = [
        ctx.Process(target=_worker, args=(path, p, barrier, results_queue)) for p in range(PROCESSES)
    ]
    started = time.monotonic()
    for process in processes:
        process.start()
    try:
        # Read before joining: a child cannot exit while its result is still in the pipe.
        results = [await asyncio.to_thread(results_queue.get, True, 120) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    elapsed = time.monotonic() - started

    errors = [error for r in results for error in r["errors"]]
    assert errors == [], "\n".join(errors)
    assert not any("locked" in e for e in errors)
    assert all(process.exitcode == 0 for process in processes)
    total_bumps = sum(r["bumps"] for r in results)
    assert total_bumps == PROCESSES * WRITES_PER_PROCESS // 2
    # Every acknowledged bump produced a distinct version: no two processes won the same round.
    versions = [v for r in results for v in r["versions"]]
    assert sorted(versions) == list(range(1, total_bumps + 1))
    acknowledged = {sk for r in results for sk in r["puts"]}
    assert len(acknowledged) == PROCESSES * WRITES_PER_PROCESS // 2

    async with await SqliteEngine.open(path) as engine:
        counter = await engine.get("state", COUNTER_PK, COUNTER_SK)
        assert counter is not None and counter["version"] == total_bumps
        stored: set[str] = set()
        start = None
        while True:
            page = await engine.query("signals", "puts", limit=200, start=start)
            stored.update(item["sk"] for item in page.items)
            if page.last_key is None:
                break
            start = page.last_key
    assert stored == acknowledged
    print(  # shown with -s: how contended the run was
        f"{PROCESSES} processes x {WRITES_PER_PROCESS} writes in {elapsed:.1f} s, "
        f"{sum(r['conflicts'] for r in results)} lost bump races retried"
    )
