"""Learning patterns from outcomes, through the real store on every backend: promotion, versions,
idempotency, crash and resume, decay, sharing, and feedback."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from agent_memory.memory.identity import Caller
from agent_memory.memory.learner import Learner, consolidate
from agent_memory.memory.service import Memory
from agent_memory.models import Outcome
from agent_memory.storage.engine import ItemEngine
from tests.support import FakeClock, memory_on

HUNTER = Caller("market-hunter")


@pytest.fixture
async def engine(tmp_path):  # type: ignore[no-untyped-def]
    """The learner sits above the storage contract (tested on every backend); its statistics need
    hundreds of decisions per test, so these run on the embedded store. One smaller test below
    runs the same path on DynamoDB."""
    from tests.fixtures.sqlite import sqlite_engine

    async with sqlite_engine(tmp_path / "memory.db") as eng:
        yield eng


async def _stream(
    memory: Memory, clock: FakeClock, n: int, seed: int, *, planted: bool, start: int = 0
) -> None:
    """Decisions whose success depends on the context only when ``planted``: 80% when the trend is
    bullish and whales >= 5, 35% otherwise (else 50% everywhere)."""
    rng = random.Random(seed)
    for i in range(start, start + n):
        context = {
            "market": {
                "trend": rng.choice(["bullish", "bearish", "sideways"]),
                "volatility": rng.choice(["low", "high"]),
            },
            "whale_count": rng.randint(0, 10),
            "hour": rng.randint(0, 23),
        }
        rule = context["market"]["trend"] == "bullish" and context["whale_count"] >= 5  # type: ignore[index,operator]
        p = (0.8 if rule else 0.35) if planted else 0.5
        decision, _ = await memory.log_decision(
            HUNTER, "SOURCE_SELECTION", context=context, decision_id=f"d{i}"
        )
        await memory.record_outcome(HUNTER, decision.decision_id, Outcome(success=rng.random() < p))
        clock.advance(minutes=1)


async def test_planted_rule_is_learned_once_and_versioned(engine: ItemEngine) -> None:
    clock = FakeClock()
    memory = memory_on(engine, clock)
    await _stream(memory, clock, 600, seed=1, planted=True)
    learner = Learner(memory.store, memory.settings, clock)

    first = await learner.learn(HUNTER, window=timedelta(days=7), min_samples=20)
    assert first.decisions_examined == 600
    top = max(first.created, key=lambda p: p.confidence)
    fields = {c.field for c in top.conditions}
    assert fields == {"market.trend", "whale_count"}, top.description
    assert top.source == "learned" and top.status == "active" and top.version == 1
    assert top.confidence <= 0.8 <= top.stats["upper"]  # the Wilson interval holds the true rate

    again = await learner.learn(HUNTER, window=timedelta(days=7), min_samples=20)
    assert again.created == [] and again.updated == [] and again.unchanged == len(first.created)

    await _stream(memory, clock, 100, seed=2, planted=True, start=600)
    third = await learner.learn(HUNTER, window=timedelta(days=7), min_samples=20)
    assert top.pattern_id in {p.pattern_id for p in third.updated}
    history = await memory.pattern_history(HUNTER, top.pattern_id)
    assert [p.version for p in history] == [2, 1]
    assert history[0].sample_size > history[1].sample_size

    recalled = await memory.recall_patterns(
        HUNTER, context={"market": {"trend": "bullish"}, "whale_count": 8}
    )
    assert top.pattern_id in {p.pattern_id for p in recalled}
    unmatched = await memory.recall_patterns(
        HUNTER, context={"market": {"trend": "bearish"}, "whale_count": 8}
    )
    assert top.pattern_id not in {p.pattern_id for p in unmatched}


async def test_no_rule_no_pattern(engine: ItemEngine) -> None:
    clock = FakeClock()
    memory = memory_on(engine, clock)
    await _stream(memory, clock, 400, seed=3, planted=False)
    result = await Learner(memory.store, memory.settings, clock).learn(HUNTER, min_samples=20)
    assert result.decisions_examined == 400
    assert result.created == []


async def test_crash_midway_then_resume_matches_a_clean_run(
    engine: ItemEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    memory = memory_on(engine, clock)
    await _stream(memory, clock, 600, seed=1, planted=True)
    learner = Learner(memory.store, memory.settings, clock)

    calls = 0
    real_create = memory.store.create_pattern

    async def crash_after_one(pattern, charge=None):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("simulated crash")
        return await real_create(pattern, charge)

    monkeypatch.setattr(memory.store, "create_pattern", crash_after_one)
    # consolidate reports one agent's failure and goes on with the others (issue #12).
    crashed = await consolidate(
        memory.store, memory.settings, clock, agents=["market-hunter"], window=timedelta(days=7)
    )
    assert "simulated crash" in crashed["failed"]["market-hunter"]
    monkeypatch.setattr(memory.store, "create_pattern", real_create)

    await consolidate(
        memory.store, memory.settings, clock, agents=["market-hunter"], window=timedelta(days=7)
    )
    after_resume = sorted(
        (p.pattern_id, p.version)
        for p in (await memory.store.list_patterns("market-hunter", limit=100, cursor=None)).items
    )
    clean = await learner.learn(HUNTER, window=timedelta(days=7))
    assert clean.created == [] and clean.updated == []
    assert all(version == 1 for _, version in after_resume)
    assert len(after_resume) == clean.unchanged


async def test_a_rule_that_stops_holding_decays_but_is_kept(engine: ItemEngine) -> None:
    clock = FakeClock()
    memory = memory_on(engine, clock)
    await _stream(memory, clock, 600, seed=1, planted=True)
    learner = Learner(memory.store, memory.settings, clock)
    first = await learner.learn(HUNTER, window=timedelta(hours=12), min_samples=20)
    top = max(first.created, key=lambda p: p.confidence)

    clock.advance(days=2)  # the old decisions leave the window; the world changes
    await _stream(memory, clock, 600, seed=9, planted=False, start=1000)
    later = await learner.learn(HUNTER, window=timedelta(hours=12), min_samples=20)
    assert top.pattern_id in later.superseded
    kept = await memory.get_pattern(HUNTER, top.pattern_id)
    assert kept.status in ("decayed", "superseded") and kept.version == 2
    assert top.pattern_id not in {p.pattern_id for p in await memory.recall_patterns(HUNTER)}


async def test_shared_learned_pattern_keeps_author_and_sharing(engine: ItemEngine) -> None:
    clock = FakeClock()
    memory = memory_on(engine, clock)
    await _stream(memory, clock, 600, seed=1, planted=True)
    learner = Learner(memory.store, memory.settings, clock)
    top = max((await learner.learn(HUNTER, min_samples=20)).created, key=lambda p: p.confidence)
    await memory.share_pattern(HUNTER, top.pattern_id, ["risk-manager"])

    await _stream(memory, clock, 100, seed=2, planted=True, start=600)
    await learner.learn(HUNTER, min_samples=20)
    risk = Caller("risk-manager")
    seen = await memory.recall_patterns(risk, context={"market": {"trend": "bullish"}, "whale_count": 9})
    mine = [p for p in seen if p.pattern_id == top.pattern_id]
    assert mine and mine[0].agent_id == "market-hunter" and mine[0].shared_with == ["risk-manager"]


async def test_learning_on_dynamodb(dynamodb_endpoint: str) -> None:
    from tests.fixtures.dynamodb import dynamo_engine

    async with dynamo_engine(dynamodb_endpoint) as dynamo:
        clock = FakeClock()
        memory = memory_on(dynamo, clock)
        rng = random.Random(5)
        for i in range(160):
            whales = rng.randint(0, 10)
            decision, _ = await memory.log_decision(
                HUNTER, "SOURCE_SELECTION", context={"whale_count": whales}, decision_id=f"d{i}"
            )
            await memory.record_outcome(
                HUNTER, decision.decision_id, Outcome(success=rng.random() < (0.9 if whales >= 5 else 0.2))
            )
        learner = Learner(memory.store, memory.settings, clock)
        first = await learner.learn(HUNTER, min_samples=15)
        assert any({c.field for c in p.conditions} == {"whale_count"} for p in first.created)
        again = await learner.learn(HUNTER, min_samples=15)
        assert again.created == [] and again.updated == []


def test_tiny_p_values_are_stored_as_the_smallest_storable_number() -> None:
    from agent_memory.memory.learner import _stats
    from agent_memory.memory.mining import MinedRule
    from agent_memory.models import Pattern, PatternCondition, utcnow

    rule = MinedRule(
        conditions=(PatternCondition(field="whale_count", op="gte", value=5),),
        n=90_000, successes=80_000, success_rate=0.89, confidence=0.88, upper=0.9,
        baseline_rate=0.4, lift=2.2, p_value=2.5e-249, q_value=0.0,
    )  # fmt: skip
    stats = _stats(rule, timedelta(days=7))
    assert stats["p_value"] == 1e-130 and stats["q_value"] == 1e-130
    now = utcnow()
    Pattern(
        pattern_id="p", agent_id="a", description="d", confidence=0.88, success_rate=0.89, sample_size=90_000,
        stats=stats, created_at=now, updated_at=now,
    )  # fmt: skip
