"""Export from SQLite, import into DynamoDB (emulated), export again: identical. And bad files are
refused before anything is written."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from agent_memory.errors import InvalidInput
from agent_memory.memory.identity import Caller
from agent_memory.models import Outcome, PatternCondition
from agent_memory.storage.transfer import export_to, import_from
from tests.fixtures.dynamodb import dynamo_engine
from tests.fixtures.sqlite import sqlite_engine
from tests.support import FakeClock, memory_on

HUNTER, RISK = Caller("market-hunter"), Caller("risk-manager")


async def _fill(memory) -> None:  # type: ignore[no-untyped-def]
    await memory.register(HUNTER)
    await memory.register(RISK)
    for i in range(12):
        await memory.log_decision(
            HUNTER,
            "SOURCE_SELECTION",
            context={"whale_count": i, "ratio": i / 7, "tiny": 1e-130, "unicode": "é✓", "flag": i % 2 == 0},
            reasoning={"scores": [0.1, 0.25, 1.0]},
            decision_id=f"d{i}",
        )
        if i % 2:
            await memory.record_outcome(
                HUNTER, f"d{i}", Outcome(success=i % 3 == 0, quality_score=0.5, latency_ms=i * 10.5)
            )
    await memory.store_note(HUNTER, "context", {"regime": "risk-on"})
    await memory.update_state(HUNTER, {"current": {"cycle": 1}}, 0, checkpoint="one")
    await memory.store_pattern(
        HUNTER, description="rule", conditions=[PatternCondition(field="whale_count", op="gte", value=5)],
        outcomes={"p": 0.7}, confidence=0.6, success_rate=0.7, sample_size=12, pattern_id="rule", shared_with=["*"],
    )  # fmt: skip
    sig = await memory.publish_signal(
        HUNTER, signal_type="WHALE", data={"n": 1}, target_agents=["risk-manager"], confidence=1.0
    )
    await memory.ack_signal(RISK, sig.signal_id, "processed")


async def _export(engine) -> str:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    await export_to(engine, out)
    return out.getvalue()


async def test_round_trip_sqlite_dynamodb_sqlite(tmp_path: Path, dynamodb_endpoint: str) -> None:
    clock = FakeClock()
    async with sqlite_engine(tmp_path / "a.db") as source:
        await _fill(memory_on(source, clock))
        first = await _export(source)
    assert first.count("\n") > 30
    async with dynamo_engine(dynamodb_endpoint) as dynamo:
        assert await import_from(dynamo, first.splitlines()) == first.count("\n") - 1
        second = await _export(dynamo)
        # The imported memory works: records read back through the store.
        memory = memory_on(dynamo, clock)
        assert (await memory.get_decision(HUNTER, "d3")).outcome is not None
        assert [p.pattern_id for p in await memory.recall_patterns(RISK)] == ["rule"]
    assert second == first
    async with sqlite_engine(tmp_path / "b.db") as target:
        await import_from(target, second.splitlines())
        assert await _export(target) == first


async def test_bad_import_writes_nothing(tmp_path: Path) -> None:
    async with sqlite_engine(tmp_path / "c.db") as engine:
        header = '{"format": "agent-memory-export", "version": 1}'
        good = '{"table": "state", "item": {"pk": "agent:a", "sk": "CURRENT", "version": 1}}'
        with pytest.raises(InvalidInput, match="line 3"):
            await import_from(engine, [header, good, "{not json"])
        with pytest.raises(InvalidInput, match="header"):
            await import_from(engine, [good])
        with pytest.raises(InvalidInput, match="line 2"):
            await import_from(engine, [header, '{"table": "nope", "item": {}}'])
        assert await engine.get("state", "agent:a", "CURRENT") is None
