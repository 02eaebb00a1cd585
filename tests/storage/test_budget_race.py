"""Several OS processes race one budget: exactly ``limit`` units are granted per window, on the
embedded store (one file) and on DynamoDB (DynamoDB Local, whose conditional writes are atomic
across connections, as DynamoDB's are)."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent_memory.config import Settings
from agent_memory.memory.budgets import Budgets
from agent_memory.memory.identity import Caller
from agent_memory.storage.dynamodb.admin import create_tables, delete_tables
from agent_memory.storage.factory import open_engine
from agent_memory.storage.store import MemoryStore

PROCESSES = 4
ATTEMPTS = 40  # per process and window: 160 racing for 50
LIMIT = 50


def _windows() -> tuple[datetime, datetime]:
    """Two instants in consecutive 1 h windows, a day ahead of the real clock (the SQLite engine
    purges items whose ttl is past by the real clock, so budget items must not be in the past)."""
    hour = int(time.time() // 3600 + 24) * 3600
    return datetime.fromtimestamp(hour + 1800, UTC), datetime.fromtimestamp(hour + 5400, UTC)


async def _race(settings_json: str, go_at: float, windows: tuple[datetime, ...]) -> list[int]:
    settings = Settings.model_validate_json(settings_json)
    engine = await open_engine(settings)
    granted = []
    try:
        for when in windows:
            budgets = Budgets(MemoryStore(engine, lambda when=when: when), lambda when=when: when)  # type: ignore[misc]
            # Start together, so the processes really race rather than take turns.
            await asyncio.sleep(max(0.0, go_at - time.time()))
            count = 0
            for _ in range(ATTEMPTS):
                status = await budgets.consume(Caller("trade-executor"), "exchange/orders", LIMIT, "1h", 1)
                count += status.allowed
            granted.append(count)
            go_at += 1.0
    finally:
        await engine.close()
    return granted


def _worker(settings_json: str, go_at: float, windows: tuple[datetime, ...]) -> list[int]:
    return asyncio.run(_race(settings_json, go_at, windows))


@pytest.mark.parametrize("backend", ["sqlite", "dynamodb"])
async def test_processes_racing_one_budget_get_exactly_the_limit(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        settings = Settings(sqlite_path=tmp_path / "budget.db")
    else:
        endpoint: Any = request.getfixturevalue("dynamodb_endpoint")
        settings = Settings(
            backend="dynamodb",
            dynamodb_endpoint_url=endpoint,
            aws_region="us-east-1",
            table_prefix=f"b{uuid.uuid4().hex[:8]}_",
        )
        await create_tables(settings)
    try:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(PROCESSES, mp_context=ctx) as pool:
            loop = asyncio.get_running_loop()
            windows = _windows()
            go_at = time.time() + 4.0  # after every process has imported the package
            results = await asyncio.gather(
                *(
                    loop.run_in_executor(pool, _worker, settings.model_dump_json(), go_at, windows)
                    for _ in range(PROCESSES)
                )
            )
        per_window = [sum(r[i] for r in results) for i in range(len(windows))]
        assert per_window == [LIMIT] * len(windows), results
        # Every process got some: it was a race, not one process draining the budget alone.
        assert sum(1 for r in results if r[0] > 0) >= 2, results

        engine = await open_engine(settings)
        try:
            for when in windows:
                budgets = Budgets(MemoryStore(engine, lambda when=when: when), lambda when=when: when)  # type: ignore[misc]
                status = await budgets.consume(Caller("trade-executor"), "exchange/orders", LIMIT, "1h", 0)
                assert (status.used, status.remaining) == (LIMIT, 0)
        finally:
            await engine.close()
    finally:
        if backend == "dynamodb":
            await delete_tables(settings, wait=False)
