"""recall_stm's pending-signal count comes from counters kept in the same transactions as publish
and ack, so it costs the same with 1 or 1,000 pending deliveries; it stays exact across expiry and
on stores written before the per-minute counters. And publish_signal reads the agent registry only
to expand ['*']."""

from __future__ import annotations

from datetime import timedelta

from agent_memory import rollups
from agent_memory.memory.identity import Caller
from agent_memory.storage import keys, usage
from agent_memory.storage.engine import ItemEngine, Update
from tests.support import FakeClock, memory_on

HUNTER, RISK = Caller("market-hunter"), Caller("risk-manager")


async def _publish(memory, n: int, *, ttl_hours: float = 2, to: list[str] | None = None) -> list[str]:  # type: ignore[no-untyped-def]
    ids = []
    for i in range(n):
        published = await memory.publish_signal(
            HUNTER,
            signal_type="WHALE_ACTIVITY",
            data={"i": i},
            target_agents=to or [RISK.agent_id],
            confidence=0.8,
            ttl_hours=ttl_hours,
        )
        ids.append(published.signal_id)
    return ids


async def test_pending_count_costs_one_query_whatever_is_pending(engine: ItemEngine) -> None:
    clock = FakeClock()
    memory = memory_on(engine, clock)
    for caller in (HUNTER, RISK):
        await memory.register(caller)
    await _publish(memory, 3)
    with usage.metered() as few:
        assert await memory.store.count_pending(RISK.agent_id) == 3
    await _publish(memory, 150)
    with usage.metered() as many:
        assert await memory.store.count_pending(RISK.agent_id, cap=1000) == 153
        assert await memory.store.count_pending(RISK.agent_id) == 100  # capped as before
    assert few.requests == 1 and many.requests == 2
    assert (await memory.recall_stm(RISK)).pending_signals == 100


async def test_pending_count_follows_acks_and_expiry_minute_by_minute(engine: ItemEngine) -> None:
    clock = FakeClock()
    memory = memory_on(engine, clock)
    for caller in (HUNTER, RISK):
        await memory.register(caller)
    early = await _publish(memory, 2, ttl_hours=1)
    clock.advance(minutes=20)
    await _publish(memory, 3, ttl_hours=1)
    await memory.ack_signal(RISK, early[0], "processed")
    assert await memory.store.count_pending(RISK.agent_id) == 4
    assert (await memory.recall_stm(RISK)).pending_signals == 4
    # Into the hour in which they expire: the early ones go first, then the others.
    clock.advance(minutes=41)
    assert await memory.store.count_pending(RISK.agent_id) == 3
    assert len((await memory.read_inbox(RISK)).items) == 3
    clock.advance(minutes=20)
    assert await memory.store.count_pending(RISK.agent_id) == 0
    assert (await memory.read_inbox(RISK)).items == []


async def test_current_minute_and_old_stores_fall_back_to_counting_entries(engine: ItemEngine) -> None:
    clock = FakeClock()
    clock.step = timedelta(0)
    memory = memory_on(engine, clock)
    for caller in (HUNTER, RISK):
        await memory.register(caller)
    clock.now = clock.now.replace(minute=10, second=20)
    await _publish(memory, 2, ttl_hours=1)
    clock.advance(minutes=59, seconds=50)  # the minute in which both expire, not yet expired
    with usage.metered() as used:
        assert await memory.store.count_pending(RISK.agent_id) == 2
    assert used.requests == 2  # the counters cannot decide: the entries are counted
    clock.advance(seconds=11)
    assert await memory.store.count_pending(RISK.agent_id) == 0

    # A store written before the per-minute counters: its hour items have DUE but no minutes.
    await _publish(memory, 2, ttl_hours=1)
    expires = clock.now + timedelta(hours=1)
    await engine.write(
        [
            Update(
                "state",
                keys.signal_rollup_pk(RISK.agent_id, "hour"),
                keys.bucket(expires, "hour"),
                remove=(rollups.pending_minute(expires),),
            )
        ]
    )
    assert await memory.store.count_pending(RISK.agent_id) == 2  # a later hour: DUE - DUE_DONE
    clock.advance(minutes=55)  # their expiry hour: the minutes do not add up to the hour
    with usage.metered() as used:
        assert await memory.store.count_pending(RISK.agent_id) == 2
    assert used.requests == 2


async def test_publish_reads_the_registry_only_for_everyone(engine: ItemEngine) -> None:
    memory = memory_on(engine)
    for caller in (HUNTER, RISK):
        await memory.register(caller)
    with usage.metered() as named:
        result = await memory.publish_signal(
            HUNTER, signal_type="T", data={}, target_agents=[RISK.agent_id, "ghost"], confidence=0.5
        )
    assert result.unregistered_targets == ["ghost"]
    # The unknown target's registry entry, the quota counters (read once a day per agent to let
    # expired records go: memory/quotas.py), then the transaction.
    assert named.requests == 3
    with usage.metered() as again:
        result = await memory.publish_signal(
            HUNTER, signal_type="T", data={}, target_agents=[RISK.agent_id], confidence=0.5
        )
    assert not result.unregistered_targets and again.requests == 1
    # Registered later by another process: found on the next publish naming it.
    await memory_on(engine).register(Caller("ghost"))
    result = await memory.publish_signal(
        HUNTER, signal_type="T", data={}, target_agents=["ghost"], confidence=0.5
    )
    assert not result.unregistered_targets
    with usage.metered() as everyone:
        result = await memory.publish_signal(
            HUNTER, signal_type="T", data={}, target_agents=["*"], confidence=0.5
        )
    assert result.targets == 2 and not result.unregistered_targets  # ghost and risk, not the publisher
    assert everyone.requests == 2
