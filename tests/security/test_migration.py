"""Stores written before the per-reader sharing index migrate on the first start after the upgrade."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agent_memory.config import Settings
from agent_memory.models import Pattern
from agent_memory.storage import keys
from agent_memory.storage.engine import Delete, Put, Update
from agent_memory.storage.factory import open_store
from agent_memory.storage.records.patterns import READER_REPORTED
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
                    keys.shared_reader_sk("market-hunter", "old-shared"),
                ),
                Update("ltm", keys.pattern_pk("market-hunter"), "old-shared", remove=(READER_REPORTED,)),
                Delete("ltm", keys.shared_count_pk("market-hunter"), keys.COUNT_SK),
                Delete("ltm", keys.MIGRATIONS_PK, "shared_index_v1"),
                Delete("ltm", keys.MIGRATIONS_PK, "shared_index_content_v2"),
                Delete("ltm", keys.MIGRATIONS_PK, "shared_index_by_id_v3"),
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


async def test_index_entries_of_the_first_sharing_layout_gain_content_and_counters(launch: Any) -> None:
    """Issue #15: a store indexed per reader before the entries carried the pattern (recall read
    the author's partition): the next start rewrites the entries and seeds the reports item."""
    first: Server = launch()
    first.proc.terminate()
    first.proc.wait(timeout=10)
    settings = _settings(first)
    now = datetime.now(UTC)
    pattern = Pattern(
        pattern_id="v1-shared", agent_id="market-hunter", description="indexed by the first layout",
        confidence=0.7, success_rate=0.7, sample_size=40, shared_with=["risk-manager"],
        created_at=now, updated_at=now,
    )  # fmt: skip
    pk = keys.shared_reader_pk("risk-manager")
    sk = keys.shared_reader_rank_sk(0.0, "market-hunter", "v1-shared")  # the first layout's key
    async with open_store(settings) as store:
        await store.create_pattern(pattern)
        await store.engine.write(
            [
                # the entry as the first layout wrote it: keys and filter fields only
                Put(
                    "ltm",
                    {
                        "pk": pk,
                        "sk": sk,
                        "agent_id": "market-hunter",
                        "pattern_id": "v1-shared",
                        "domain": "general",
                        "decision_type": None,
                        "conditions": [],
                        "shared_with": ["risk-manager"],
                        "rank": 0.0,
                    },
                ),
                Delete("ltm", pk, keys.shared_reader_sk("market-hunter", "v1-shared")),
                Delete("ltm", keys.pattern_reports_pk("market-hunter", "v1-shared"), keys.COUNT_SK),
                Update(
                    "ltm",
                    keys.pattern_pk("market-hunter"),
                    "v1-shared",
                    add={"fb_applied": 3, "fb_successes": 2},
                    remove=(READER_REPORTED,),
                ),
                Delete("ltm", keys.MIGRATIONS_PK, "shared_index_content_v2"),
                Delete("ltm", keys.MIGRATIONS_PK, "shared_index_by_id_v3"),
            ]
        )

    upgraded: Server = launch()  # the start migrates
    async with upgraded.agent("risk-manager") as risk:
        (seen,) = (await risk.ok("recall_patterns"))["patterns"]
    assert seen["pattern_id"] == "v1-shared" and seen["description"] == "indexed by the first layout"
    assert seen["feedback"]["applied_count"] == 3
    async with upgraded.agent("risk-manager") as risk:
        # cited through the entry, counted on the reports item, seen by the author (issue #15)
        logged = await risk.ok("log_decision", decision_type="RISK", patterns_applied=["v1-shared"])
        await risk.ok("record_outcome", decision_id=logged["decision_id"], success=True)
    async with upgraded.agent("market-hunter") as hunter:
        (own,) = (await hunter.ok("recall_patterns", include_shared=False))["patterns"]
    assert (own["feedback"]["applied_count"], own["feedback"]["applied_successes"]) == (4, 3)
    async with open_store(settings.model_copy(update={"read_only": True})) as store:
        assert await store.engine.get("ltm", pk, sk) is None  # the first layout's entry is gone
        entry = await store.engine.get("ltm", pk, keys.shared_reader_sk("market-hunter", "v1-shared"))
        assert entry is not None and entry["description"] == "indexed by the first layout"
        # the author's counter was counted once, by the first migration, not again
        count = await store.engine.get("ltm", keys.shared_count_pk("market-hunter"), keys.COUNT_SK)
        assert count is not None and int(count["n"]) == 1
