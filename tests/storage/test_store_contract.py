"""The storage contract, record by record, against every backend (the `engine` fixture is
parametrized over SQLite and DynamoDB Local). Nothing here knows which backend it runs on."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from agent_memory.errors import AccessDenied, Conflict, InvalidInput, NotFound, VersionConflict
from agent_memory.memory.identity import Caller
from agent_memory.models import Outcome, PatternCondition
from agent_memory.storage import keys
from agent_memory.storage.engine import ItemEngine
from tests.support import FakeClock, memory_on

HUNTER, RISK, EXEC = Caller("market-hunter"), Caller("risk-manager"), Caller("trade-executor")
OBSERVER = Caller("dashboard", "observer")


async def _registered(engine: ItemEngine, clock: FakeClock | None = None):  # type: ignore[no-untyped-def]
    memory = memory_on(engine, clock)
    for caller in (HUNTER, RISK, EXEC):
        await memory.register(caller)
    return memory


# --- decisions ----------------------------------------------------------------------------------


async def test_decision_round_trip_and_idempotent_retry(engine: ItemEngine) -> None:
    memory = await _registered(engine)
    context = {
        "market": {"trend": "bullish", "volatility": 0.1},
        "tiny": 1e-130,
        "big": 12345678901234567890123456789012345678,
        "cycle": 142,
    }
    first, created = await memory.log_decision(
        HUNTER, "SOURCE_SELECTION", context=context, reasoning={"selected": ["whales"]}, decision_id="dec-1"
    )
    assert created
    again, created_again = await memory.log_decision(
        HUNTER, "SOURCE_SELECTION", context=context, reasoning={"selected": ["whales"]}, decision_id="dec-1"
    )
    assert not created_again
    assert again == first
    stored = await memory.get_decision(HUNTER, "dec-1")
    assert stored.context == context
    assert stored.context["market"]["volatility"] == 0.1
    assert stored.context["tiny"] == 1e-130


async def test_decision_retry_with_other_payload_conflicts_and_keeps_original(engine: ItemEngine) -> None:
    memory = await _registered(engine)
    await memory.log_decision(HUNTER, "SOURCE_SELECTION", context={"a": 1}, decision_id="dec-1")
    with pytest.raises(Conflict) as info:
        await memory.log_decision(HUNTER, "SOURCE_SELECTION", context={"a": 2}, decision_id="dec-1")
    assert info.value.current.context == {"a": 1}
    # Ids are per author: another agent's dec-1 is another decision, and its write tells it
    # nothing about the hunter's.
    theirs, created = await memory.log_decision(
        RISK, "RISK_ASSESSMENT", context={"a": 3}, decision_id="dec-1"
    )
    assert created and theirs.agent_id == RISK.agent_id
    assert (await memory.get_decision(HUNTER, "dec-1")).context == {"a": 1}
    assert (await memory.get_decision(RISK, "dec-1")).context == {"a": 3}


async def test_number_edges_are_refused_before_anything_is_stored(engine: ItemEngine) -> None:
    memory = await _registered(engine)
    for bad in (float("nan"), float("inf"), 10**38 + 1, 1e-131):
        with pytest.raises(ValidationError):
            await memory.log_decision(HUNTER, "SOURCE_SELECTION", context={"x": bad}, decision_id="dec-bad")
    with pytest.raises(ValidationError, match="65536 bytes"):
        await memory.log_decision(
            HUNTER, "SOURCE_SELECTION", context={"blob": "x" * 70_000}, decision_id="dec-bad"
        )
    with pytest.raises(NotFound):
        await memory.get_decision(HUNTER, "dec-bad")


async def test_outcome_is_recorded_once(engine: ItemEngine) -> None:
    memory = await _registered(engine)
    await memory.log_decision(HUNTER, "SOURCE_SELECTION", decision_id="dec-1")
    outcome = Outcome(success=True, quality_score=0.85, latency_ms=1200)
    decision, recorded = await memory.record_outcome(HUNTER, "dec-1", outcome)
    assert recorded and decision.outcome is not None and decision.outcome.quality_score == 0.85
    _, again = await memory.record_outcome(
        HUNTER, "dec-1", Outcome(success=True, quality_score=0.85, latency_ms=1200)
    )
    assert not again
    with pytest.raises(Conflict) as info:
        await memory.record_outcome(HUNTER, "dec-1", Outcome(success=False))
    assert info.value.current.outcome.success is True
    with pytest.raises(NotFound):
        await memory.record_outcome(RISK, "dec-1", Outcome(success=False))
    with pytest.raises(NotFound):
        await memory.record_outcome(HUNTER, "no-such-decision", Outcome(success=False))


async def test_stm_window_and_history(engine: ItemEngine) -> None:
    clock = FakeClock()
    memory = await _registered(engine, clock)
    await memory.log_decision(HUNTER, "SOURCE_SELECTION", decision_id="old")
    clock.advance(hours=30)
    await memory.log_decision(HUNTER, "SOURCE_SELECTION", decision_id="new")
    await memory.log_decision(HUNTER, "ENTRY_TIMING", decision_id="new-other-type")
    stm = await memory.recall_stm(HUNTER)
    assert [d.decision_id for d in stm.decisions] == ["new-other-type", "new"]
    typed = await memory.recall_stm(HUNTER, decision_type="SOURCE_SELECTION")
    assert [d.decision_id for d in typed.decisions] == ["new"]
    history = await memory.search_decisions(HUNTER, decision_type="SOURCE_SELECTION")
    assert [d.decision_id for d in history.items] == ["new", "old"]
    assert (await memory.recall_stm(RISK)).decisions == []


async def test_expired_records_are_never_returned_even_if_still_stored(engine: ItemEngine) -> None:
    clock = FakeClock()
    memory = await _registered(engine, clock)
    await memory.log_decision(HUNTER, "SOURCE_SELECTION", decision_id="dec-1")
    await memory.store_note(HUNTER, "context", {"mood": "calm"}, ttl_minutes=30)
    published = await memory.publish_signal(
        HUNTER,
        signal_type="WHALE_ACTIVITY",
        data={"n": 5},
        target_agents=["risk-manager"],
        confidence=0.8,
        ttl_hours=1,
    )
    sid = published.signal_id
    assert (await memory.recall_stm(HUNTER)).notes[0].value == {"mood": "calm"}

    clock.advance(minutes=31)
    assert (await memory.recall_stm(HUNTER)).notes == []
    clock.advance(hours=1)
    assert (await memory.read_inbox(RISK)).items == []
    assert (await memory.recall_stm(RISK)).pending_signals == 0
    with pytest.raises(NotFound):
        await memory.ack_signal(RISK, sid, "processed")
    # The items are still in the table (TTL deletion lags): filtering is the store's doing.
    assert await engine.get("signals", keys.signal_pk(HUNTER.agent_id, sid), keys.SIGNAL_SK) is not None

    clock.advance(days=91)
    with pytest.raises(NotFound):
        await memory.get_decision(HUNTER, "dec-1")
    assert (await memory.search_decisions(HUNTER)).items == []


async def test_pagination_visits_every_decision_once(engine: ItemEngine) -> None:
    memory = await _registered(engine)
    for i in range(23):
        decision, _ = await memory.log_decision(HUNTER, "SOURCE_SELECTION", decision_id=f"dec-{i:02d}")
        if i % 3 == 0:
            await memory.record_outcome(HUNTER, decision.decision_id, Outcome(success=True))
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await memory.search_decisions(
            HUNTER, decision_type="SOURCE_SELECTION", limit=10, cursor=cursor
        )
        seen += [d.decision_id for d in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [f"dec-{i:02d}" for i in reversed(range(23))]
    assert pages == 3

    # A filtered query (type + success: table path with a filter) pages correctly too.
    successes: list[str] = []
    cursor = None
    while True:
        page = await memory.search_decisions(
            HUNTER, decision_type="SOURCE_SELECTION", success=True, limit=3, cursor=cursor
        )
        successes += [d.decision_id for d in page.items]
        if (cursor := page.next_cursor) is None:
            break
    assert successes == [f"dec-{i:02d}" for i in reversed(range(0, 23, 3))]

    first = await memory.search_decisions(HUNTER, decision_type="SOURCE_SELECTION", limit=5)
    assert first.next_cursor is not None
    with pytest.raises(InvalidInput, match="different query"):
        await memory.search_decisions(HUNTER, decision_type="ENTRY_TIMING", cursor=first.next_cursor)
    with pytest.raises(InvalidInput, match="not valid"):
        await memory.search_decisions(HUNTER, cursor="garbage!!")


async def test_other_agents_history_needs_observer(engine: ItemEngine) -> None:
    memory = await _registered(engine)
    await memory.log_decision(HUNTER, "SOURCE_SELECTION", decision_id="dec-1")
    with pytest.raises(AccessDenied):
        await memory.search_decisions(RISK, agent_id="market-hunter")
    with pytest.raises(NotFound):
        await memory.get_decision(RISK, "dec-1")
    seen = await memory.search_decisions(OBSERVER, agent_id="market-hunter")
    assert [d.decision_id for d in seen.items] == ["dec-1"]
    across = await memory.search_decisions(OBSERVER, all_agents=True, decision_type="SOURCE_SELECTION")
    assert [d.decision_id for d in across.items] == ["dec-1"]


# --- signals ------------------------------------------------------------------------------------


async def test_signal_fan_out_and_ack_once(engine: ItemEngine) -> None:
    memory = await _registered(engine)
    result = await memory.publish_signal(
        HUNTER,
        signal_type="WHALE_ACTIVITY",
        data={"whale_count": 5},
        target_agents=["risk-manager", "trade-executor", "not-yet-started"],
        confidence=0.85,
        severity="high",
        signal_id="sig-1",
    )
    assert result.created and result.unregistered_targets == ["not-yet-started"]
    retry = await memory.publish_signal(
        HUNTER,
        signal_type="WHALE_ACTIVITY",
        data={"whale_count": 5},
        target_agents=["risk-manager", "trade-executor", "not-yet-started"],
        confidence=0.85,
        severity="high",
        signal_id="sig-1",
    )
    assert not retry.created
    for target in (RISK, EXEC):
        inbox = await memory.read_inbox(target)
        assert [e.signal.signal_id for e in inbox.items] == ["sig-1"]
    assert (await memory.read_inbox(HUNTER)).items == []

    decision, _ = await memory.log_decision(RISK, "RISK_ASSESSMENT", decision_id="risk-1")
    entry, acked = await memory.ack_signal(RISK, "sig-1", "processed", decision.decision_id)
    assert acked and entry.delivery.status == "processed" and entry.delivery.decision_id == "risk-1"
    _, acked_again = await memory.ack_signal(RISK, "sig-1", "processed", "risk-1")
    assert not acked_again
    with pytest.raises(Conflict):
        await memory.ack_signal(RISK, "sig-1", "rejected")
    with pytest.raises(AccessDenied):
        await memory.ack_signal(HUNTER, "sig-1", "processed")
    with pytest.raises(NotFound):
        await memory.ack_signal(Caller("stranger"), "sig-1", "processed")

    assert (await memory.read_inbox(RISK)).items == []
    processed = await memory.read_inbox(RISK, status="processed")
    assert [e.signal.signal_id for e in processed.items] == ["sig-1"]
    # The executor's delivery is untouched by the risk manager's ack.
    assert [e.signal.signal_id for e in (await memory.read_inbox(EXEC)).items] == ["sig-1"]
    signal = await memory.get_signal(HUNTER, "sig-1")
    assert signal.processing_status["risk-manager"].status == "processed"
    assert signal.processing_status["trade-executor"].status == "pending"


async def test_broadcast_targets_every_registered_agent(engine: ItemEngine) -> None:
    memory = await _registered(engine)
    result = await memory.publish_signal(
        HUNTER, signal_type="MARKET_HALT", data={}, target_agents=["*"], confidence=1.0
    )
    signal = await memory.get_signal(HUNTER, result.signal_id)
    assert result.targets == 2 and signal.target_agents == ["risk-manager", "trade-executor"]


async def test_too_many_targets_stores_nothing(engine: ItemEngine) -> None:
    memory = await _registered(engine)
    with pytest.raises(ValidationError):
        await memory.publish_signal(
            HUNTER,
            signal_type="X",
            data={},
            target_agents=[f"agent-{i}" for i in range(31)],
            confidence=0.5,
            signal_id="sig-big",
        )
    with pytest.raises(NotFound):
        await memory.get_signal(HUNTER, "sig-big")


# --- state --------------------------------------------------------------------------------------


async def test_state_versions_and_checkpoints(engine: ItemEngine) -> None:
    memory = await _registered(engine)
    assert (await memory.get_state(HUNTER)).version == 0
    s1 = await memory.update_state(HUNTER, {"current": {"cycle": 1}, "configuration": {"lr": 0.1}}, 0)
    s2 = await memory.update_state(HUNTER, {"current": {"cycle": 2}}, s1.version, checkpoint="after-2")
    assert s2.version == 2 and s2.current == {"cycle": 2} and s2.configuration == {"lr": 0.1}
    with pytest.raises(VersionConflict) as info:
        await memory.update_state(HUNTER, {"current": {"cycle": 99}}, 1)
    assert info.value.current.version == 2 and info.value.current.current == {"cycle": 2}
    s3 = await memory.update_state(HUNTER, {"configuration": {"lr": None}}, 2)
    assert s3.configuration == {}
    checkpoints = await memory.list_checkpoints(HUNTER)
    assert [(c.version, c.label) for c in checkpoints.items] == [(2, "after-2")]
    with pytest.raises(InvalidInput, match="unknown section"):
        await memory.update_state(HUNTER, {"mood": {}}, 3)
    with pytest.raises(AccessDenied):
        await memory.get_state(RISK, "market-hunter")
    assert (await memory.get_state(HUNTER)).version == 3


async def test_twenty_concurrent_writers_lose_no_update(engine: ItemEngine) -> None:
    memory = await _registered(engine)
    await memory.update_state(HUNTER, {"current": {"count": 0}}, 0)

    async def one_round() -> tuple[bool, VersionConflict | None]:
        try:
            await memory.update_state(HUNTER, {"current": {"count": 1}}, 1)
            return True, None
        except VersionConflict as exc:
            return False, exc

    results = await asyncio.gather(*(one_round() for _ in range(20)))
    assert sum(won for won, _ in results) == 1
    for won, exc in results:
        if not won:
            assert exc is not None and exc.current.version == 2

    async def increment() -> int:
        attempts = 0
        while True:
            attempts += 1
            state = await memory.get_state(HUNTER)
            try:
                await memory.update_state(
                    HUNTER, {"current": {"count": state.current["count"] + 1}}, state.version
                )
                return attempts
            except VersionConflict:
                await asyncio.sleep(0)

    await memory.update_state(HUNTER, {"current": {"count": 0}}, 2)
    await asyncio.gather(*(increment() for _ in range(20)))
    final = await memory.get_state(HUNTER)
    assert final.current["count"] == 20
    assert final.version == 23


# --- patterns -----------------------------------------------------------------------------------

WHALES = [
    PatternCondition(field="market.trend", op="eq", value="bullish"),
    PatternCondition(field="whale_count", op="gte", value=5),
]


async def test_pattern_versions_sharing_and_matching(engine: ItemEngine) -> None:
    memory = await _registered(engine)
    p1 = await memory.store_pattern(
        HUNTER,
        description="Whales in a bullish trend predict a pump",
        conditions=WHALES,
        outcomes={"pump_probability": 0.78},
        confidence=0.7,
        success_rate=0.78,
        sample_size=23,
        pattern_id="whale-pump",
        domain="trading",
    )
    assert p1.version == 1
    with pytest.raises(VersionConflict):
        await memory.store_pattern(
            HUNTER,
            description="dup",
            conditions=[],
            outcomes={},
            confidence=0.5,
            success_rate=0.5,
            sample_size=1,
            pattern_id="whale-pump",
        )
    p2 = await memory.store_pattern(
        HUNTER,
        description="Whales in a bullish trend predict a pump",
        conditions=WHALES,
        outcomes={"pump_probability": 0.8},
        confidence=0.75,
        success_rate=0.8,
        sample_size=30,
        pattern_id="whale-pump",
        domain="trading",
        expected_version=1,
    )
    assert p2.version == 2
    with pytest.raises(VersionConflict) as stale:
        await memory.store_pattern(
            HUNTER,
            description="x",
            conditions=[],
            outcomes={},
            confidence=0.1,
            success_rate=0.1,
            sample_size=1,
            pattern_id="whale-pump",
            expected_version=1,
        )
    assert stale.value.current.version == 2
    history = await memory.pattern_history(HUNTER, "whale-pump")
    assert [p.version for p in history] == [2, 1]
    assert [p.sample_size for p in history] == [30, 23]

    # Private: the risk manager does not see it, then sees it once shared, and cannot change it.
    assert await memory.recall_patterns(RISK) == []
    await memory.share_pattern(HUNTER, "whale-pump", ["risk-manager"])
    seen = await memory.recall_patterns(RISK, context={"market": {"trend": "bullish"}, "whale_count": 7})
    assert [p.pattern_id for p in seen] == ["whale-pump"] and seen[0].agent_id == "market-hunter"
    assert (
        await memory.recall_patterns(RISK, context={"market": {"trend": "bearish"}, "whale_count": 7}) == []
    )
    assert (
        await memory.recall_patterns(RISK, context={"market": {"trend": "bullish"}, "whale_count": 2}) == []
    )
    assert await memory.recall_patterns(EXEC) == []
    with pytest.raises(AccessDenied):
        await memory.store_pattern(
            RISK,
            description="mine now",
            conditions=[],
            outcomes={},
            confidence=0.9,
            success_rate=0.9,
            sample_size=1,
            pattern_id="whale-pump",
            expected_version=3,
        )
    assert (await memory.get_pattern(HUNTER, "whale-pump")).description.startswith("Whales")


async def test_recall_ranks_by_confidence_and_filters(engine: ItemEngine) -> None:
    memory = await _registered(engine)
    for i, conf in enumerate([0.2, 0.9, 0.5, 0.7]):
        await memory.store_pattern(
            HUNTER,
            description=f"p{i}",
            conditions=[],
            outcomes={},
            confidence=conf,
            success_rate=conf,
            sample_size=10,
            pattern_id=f"p{i}",
            domain="trading" if i % 2 else "risk",
        )
    ranked = await memory.recall_patterns(HUNTER)
    assert [p.pattern_id for p in ranked] == ["p1", "p3", "p2", "p0"]
    assert [p.pattern_id for p in await memory.recall_patterns(HUNTER, min_confidence=0.6)] == ["p1", "p3"]
    assert [p.pattern_id for p in await memory.recall_patterns(HUNTER, domain="risk")] == ["p2", "p0"]
    assert [p.pattern_id for p in await memory.recall_patterns(HUNTER, limit=2)] == ["p1", "p3"]


async def test_applied_patterns_collect_feedback(engine: ItemEngine) -> None:
    memory = await _registered(engine)
    await memory.store_pattern(
        HUNTER,
        description="shared rule",
        conditions=[],
        outcomes={},
        confidence=0.6,
        success_rate=0.6,
        sample_size=10,
        pattern_id="rule",
        shared_with=["*"],
    )
    for i, ok in enumerate([True, True, False]):
        await memory.log_decision(RISK, "RISK_ASSESSMENT", decision_id=f"r{i}", patterns_applied=["rule"])
        await memory.record_outcome(RISK, f"r{i}", Outcome(success=ok))
    pattern = await memory.get_pattern(HUNTER, "rule")
    assert pattern.feedback.access_count == 3
    assert pattern.feedback.applied_count == 3 and pattern.feedback.applied_successes == 2
    with pytest.raises(NotFound):
        await memory.log_decision(EXEC, "X", patterns_applied=["no-such-pattern"])
    decision = await memory.get_decision(RISK, "r0")
    assert decision.memory_influenced
