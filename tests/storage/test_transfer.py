"""Export from SQLite, import into DynamoDB (emulated), export again: identical. Bad files are
refused before anything is written. Import into a store that already holds memory merges: every
counter ends as if all the records had been written to that store live."""

from __future__ import annotations

import io
import json
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from pathlib import Path

import pytest

from agent_memory.errors import InvalidInput
from agent_memory.memory.identity import Caller
from agent_memory.models import Outcome, PatternCondition
from agent_memory.storage.engine import ItemEngine
from agent_memory.storage.transfer import export_to, import_from
from tests.fixtures.dynamodb import dynamo_engine
from tests.fixtures.sqlite import sqlite_engine
from tests.support import T0, FakeClock, memory_on

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
    # A reader's citation: counted on the pattern's reports item only (issue #15).
    await memory.log_decision(RISK, "RISK", decision_id="cites", patterns_applied=["rule"])
    await memory.record_outcome(RISK, "cites", Outcome(success=True))


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
        report = await import_from(dynamo, first.splitlines())
        assert report.read == first.count("\n") - 1 and not report.kept and not report.updated
        second = await _export(dynamo)
        # The imported memory works: records read back through the store.
        memory = memory_on(dynamo, clock)
        assert (await memory.get_decision(HUNTER, "d3")).outcome is not None
        assert [p.pattern_id for p in await memory.recall_patterns(RISK)] == ["rule"]
        assert (await memory.get_pattern(HUNTER, "rule")).feedback.applied_successes == 1
    assert second == first
    async with sqlite_engine(tmp_path / "b.db") as target:
        await import_from(target, second.splitlines())
        assert await _export(target) == first


async def test_bad_import_writes_nothing(tmp_path: Path) -> None:
    async with sqlite_engine(tmp_path / "c.db") as engine:
        header = '{"format": "agent-memory-export", "version": 1}'
        good = '{"table": "state", "item": {"pk": "agent:a", "sk": "CURRENT", "agent_id": "a", "version": 1}}'
        with pytest.raises(InvalidInput, match="line 3"):
            await import_from(engine, [header, good, "{not json"])
        with pytest.raises(InvalidInput, match="header"):
            await import_from(engine, [good])
        with pytest.raises(InvalidInput, match="line 2"):
            await import_from(engine, [header, '{"table": "nope", "item": {}}'])
        assert await engine.get("state", "agent:a", "CURRENT") is None


# --------------------------------------------------------------------------------------------------
# merging into a non-empty store
# --------------------------------------------------------------------------------------------------

COUNTERS = ("rollup#", "sigrollup#")


async def _base(memory, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    """What both stores hold: the same records written at the same times."""
    clock.now = T0
    await memory.register(HUNTER)
    await memory.register(RISK)
    for i in range(6):
        await memory.log_decision(HUNTER, "SOURCE_SELECTION", context={"i": i}, decision_id=f"d{i}")
        if i < 3:
            await memory.record_outcome(
                HUNTER, f"d{i}", Outcome(success=i % 2 == 0, latency_ms=50.0 + i, recorded_at=T0)
            )
    await memory.publish_signal(
        HUNTER,
        signal_type="WHALE",
        data={"n": 1},
        target_agents=["risk-manager"],
        confidence=1.0,
        signal_id="s1",
    )


async def _source_only(memory, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    """What only the exported store saw: an outcome for d3, new decisions, an ack, a new signal."""
    clock.now = T0 + timedelta(hours=2)
    await memory.record_outcome(
        HUNTER, "d3", Outcome(success=True, quality_score=0.9, latency_ms=70.0, recorded_at=T0)
    )
    for i in range(6, 10):
        await memory.log_decision(
            HUNTER,
            "SOURCE_SELECTION",
            context={"i": i},
            decision_id=f"d{i}",
            outcome=Outcome(success=True, recorded_at=T0),
        )
    await memory.ack_signal(RISK, "s1", "processed")
    await memory.publish_signal(
        RISK,
        signal_type="VETO",
        data={"n": 2},
        target_agents=["market-hunter"],
        confidence=0.5,
        signal_id="s2",
    )


async def _target_only(memory, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    """What only the importing store saw: its own decisions, one in an hour the source also used."""
    clock.now = T0 + timedelta(hours=2, minutes=30)
    for i in range(3):
        await memory.log_decision(
            RISK,
            "RISK_ASSESSMENT",
            context={"t": i},
            decision_id=f"t{i}",
            outcome=Outcome(success=False, recorded_at=T0),
        )
    await memory.log_decision(HUNTER, "SOURCE_SELECTION", context={"t": 9}, decision_id="t9")


def _lines(export: str, *prefixes: str) -> list[str]:
    return [line for line in export.splitlines()[1:] if json.loads(line)["item"]["pk"].startswith(prefixes)]


@pytest.mark.parametrize("backend", ["sqlite", "dynamodb"])
async def test_import_into_a_non_empty_store_merges(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The target keeps everything it had, gains the file's new records and completions, and its
    rollups equal those of a store where every event happened live; a second import changes
    nothing; the dry run announces exactly what the real run then does."""
    async with sqlite_engine(tmp_path / "source.db") as source, sqlite_engine(tmp_path / "live.db") as live:
        clock = FakeClock()
        memory = memory_on(source, clock)
        await _base(memory, clock)
        await _source_only(memory, clock)
        exported = await _export(source)
        # The reference: every event of both stores, written live to one store.
        clock = FakeClock()
        memory = memory_on(live, clock)
        await _base(memory, clock)
        await _source_only(memory, clock)
        await _target_only(memory, clock)
        expected = await _export(live)

    opened: AbstractAsyncContextManager[ItemEngine]
    if backend == "sqlite":
        opened = sqlite_engine(tmp_path / "target.db")
    else:
        opened = dynamo_engine(request.getfixturevalue("dynamodb_endpoint"))
    async with opened as target:
        clock = FakeClock()
        memory = memory_on(target, clock)
        await _base(memory, clock)
        await _target_only(memory, clock)
        before = await _export(target)

        planned = await import_from(target, exported.splitlines(), dry_run=True)
        assert await _export(target) == before  # a dry run writes nothing
        report = await import_from(target, exported.splitlines())
        assert report.lines()[1:] == planned.lines()[1:]
        assert report.added["decision"] == 4 and report.updated["decision"] == 1  # d6-d9; d3's outcome
        assert report.unchanged["decision"] == 5 and not report.kept["decision"]
        assert report.updated["inbox entry"] == 1 and report.added["signal"] == 1
        merged = await _export(target)

        # Counters and records: as if everything had happened in this store.
        assert _lines(merged, *COUNTERS) == _lines(expected, *COUNTERS)
        assert _lines(merged, "agent:", "decision#", "signal#", "inbox#") == _lines(
            expected, "agent:", "decision#", "signal#", "inbox#"
        )
        # The target's own outcome-less decision and its own decisions are still there and counted.
        assert (await memory.get_decision(HUNTER, "t9")).outcome is None
        assert (await memory.get_decision(HUNTER, "d3")).outcome is not None

        again = await import_from(target, exported.splitlines())
        assert again.changes == 0 and await _export(target) == merged
