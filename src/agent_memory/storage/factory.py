"""Open the configured backend. Never falls back to another backend: a misconfigured one fails
at start-up with a message that says which setting to change."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from agent_memory.config import Settings
from agent_memory.models import utcnow
from agent_memory.storage.engine import ItemEngine, TableName
from agent_memory.storage.layout import check_migrated
from agent_memory.storage.store import MemoryStore


async def open_engine(settings: Settings) -> ItemEngine:
    if settings.backend == "sqlite":
        from agent_memory.storage.sqlite import SqliteEngine

        # With an archive, expired decisions wait for `agent-memory archive` (never purged unarchived).
        keep: tuple[TableName, ...] = ("decisions",) if settings.archive_url else ()
        return await SqliteEngine.open(
            settings.sqlite_path,
            lock_timeout=settings.call_timeout_seconds,
            quick_check_seconds=settings.sqlite_quick_check_seconds,
            keep_expired=keep,
        )
    from agent_memory.storage.dynamodb import DynamoEngine

    return await DynamoEngine.open(settings)


@asynccontextmanager
async def open_store(
    settings: Settings, clock: Callable[[], datetime] = utcnow
) -> AsyncIterator[MemoryStore]:
    engine = await open_engine(settings)
    try:
        store = MemoryStore(engine, clock)
        if settings.backend == "dynamodb":
            # Ids are per author: tables of the earlier layout are refused until migrated (an
            # embedded store migrates itself when opened: a schema version).
            await check_migrated(engine, read_only=settings.read_only)
        if not settings.read_only:
            # One get once migrated; the first start after an upgrade indexes shared patterns.
            await store.backfill_shared_index()
        yield store
    finally:
        await engine.close()
