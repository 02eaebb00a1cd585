"""Stores written before the per-reader sharing index migrate on the first start after the upgrade."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agent_memory.config import Settings
from agent_memory.models import Pattern
from agent_memory.storage import keys
from agent_memory.storage.engine import Delete
from agent_memory.storage.factory import open_store
from tests.security.conftest import Server


def _settings(server: Server) -> Settings:
    env: dict[str, Any] = {
        k.removeprefix("AGENT_MEMORY_").lower(): v
        for k, v in server.env.items()
        if k.startswith("AGENT_MEMORY_")
    }
    return Settings(**env)


async def _write_old_layout(settings: Settings) -> None:
    """A pattern shared with risk-manager as the previous version stored it: the item with its
    shared GSI keys, and no per-reader index entry, counter or migration marker."""
    now = datetime.now(UTC)
    pattern = Pattern(
        pattern_id="old-shared", agent_id="market-hunter", description="from before the upgrade",
        confidence=0.7, success_rate=0.7, sample_size=40, shared_with=["risk-manager"],
        created_at=now, updated_at=now,
    )  # fmt: skip
    async with open_store(settings) as store:
        await store.create_pattern(pattern)
        await store.engine.write(
            [
                Delete(
                    "ltm",
                    keys.shared_reader_pk("risk-manager"),
                    keys.shared_reader_sk(0.0, "market-hunter", "old-shared"),
                ),
                Delete("ltm", keys.shared_count_pk("market-hunter"), keys.COUNT_SK),
                Delete("ltm", keys.MIGRATIONS_PK, "shared_index_v1"),
            ]
        )


async def test_shared_patterns_of_an_old_store_stay_visible_after_the_upgrade(launch: Any) -> None:
    first: Server = launch()
    first.proc.terminate()
    first.proc.wait(timeout=10)
    settings = _settings(first)
    await _write_old_layout(settings)
    async with open_store(settings.model_copy(update={"read_only": True})) as store:
        assert await store.engine.get("ltm", keys.MIGRATIONS_PK, "shared_index_v1") is None

    upgraded: Server = launch()  # the start migrates
    async with upgraded.agent("risk-manager") as risk:
        recalled = await risk.ok("recall_patterns")
        assert [p["pattern_id"] for p in recalled["patterns"]] == ["old-shared"]
    async with open_store(settings.model_copy(update={"read_only": True})) as store:
        count = await store.engine.get("ltm", keys.shared_count_pk("market-hunter"), keys.COUNT_SK)
        assert count is not None and int(count["n"]) == 1
        marker = await store.engine.get("ltm", keys.MIGRATIONS_PK, "shared_index_v1")
        assert marker is not None and int(marker["n"]) == 1
