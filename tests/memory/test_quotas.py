"""Per-agent storage quotas (issue #12), on each backend (SQLite, DynamoDB Local): counted in the
record's own write, refused past the limit with a typed error that says what to do, exact under
concurrency, given back when records expire or a note is overwritten."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent_memory.errors import Conflict, QuotaExceeded
from agent_memory.memory.budgets import Budgets
from agent_memory.memory.identity import Caller
from agent_memory.memory.service import Memory
from agent_memory.models import PatternCondition
from agent_memory.storage.engine import ItemEngine
from tests.support import FakeClock, memory_on

MALLORY, HONEST = Caller("mallory"), Caller("market-hunter")
OFF = dict(
    quota_decisions=0, quota_notes=0, quota_signals=0, quota_patterns=0, quota_checkpoints=0, quota_bytes=0
)


async def _refused(call: Any) -> QuotaExceeded:
    with pytest.raises(QuotaExceeded) as caught:
        await call
    error = caught.value
    assert error.code == "quota_exceeded" and not error.retryable
    assert (
        "Nothing was written" in error.message
        and f"AGENT_MEMORY_QUOTA_{error.quota.upper()}" in error.message
    )
    return error


async def _pattern(memory: Memory, caller: Caller, **kw: Any) -> Any:
    return await memory.store_pattern(
        caller,
        description="rule",
        conditions=[PatternCondition(field="trend", op="eq", value="up")],
        outcomes={},
        confidence=0.5,
        success_rate=0.5,
        sample_size=3,
        **kw,
    )


async def test_each_quota_refuses_the_write_past_it_and_nothing_else(engine: ItemEngine) -> None:
    memory = memory_on(
        engine, FakeClock(), quota_decisions=3, quota_notes=2, quota_signals=2, quota_patterns=2,
        quota_checkpoints=1, rate_limit_per_minute=0,
    )  # fmt: skip
    for i in range(3):
        await memory.log_decision(MALLORY, "TRADE", decision_id=f"m{i}", context={"i": i})
    error = await _refused(memory.log_decision(MALLORY, "TRADE", context={"i": 3}))
    assert (error.quota, error.used, error.limit) == ("decisions", 3, 3)
    assert "you hold 3 decisions of the 3" in error.message and "expire 90 days" in error.message
    # A retry of a decision already logged still answers the original (idempotency wins).
    again, created = await memory.log_decision(MALLORY, "TRADE", decision_id="m2", context={"i": 2})
    assert again.decision_id == "m2" and not created
    assert len((await memory.search_decisions(MALLORY, limit=10)).items) == 3

    for _ in range(5):  # overwriting a key holds one note
        await memory.store_note(MALLORY, "working", {"v": 1})
    await memory.store_note(MALLORY, "other", 1)
    error = await _refused(memory.store_note(MALLORY, "third", 1))
    assert (error.quota, error.used, error.limit) == ("notes", 2, 2)
    await memory.store_note(MALLORY, "other", 2)  # still an overwrite

    for _ in range(2):
        await memory.publish_signal(MALLORY, signal_type="T", data={}, target_agents=["risk"], confidence=0.5)
    error = await _refused(
        memory.publish_signal(MALLORY, signal_type="T", data={}, target_agents=["risk"], confidence=0.5)
    )
    assert error.quota == "signals"

    first = await _pattern(memory, MALLORY)
    await _pattern(memory, MALLORY)
    assert (await _refused(_pattern(memory, MALLORY))).quota == "patterns"
    updated = await _pattern(memory, MALLORY, pattern_id=first.pattern_id, expected_version=1)
    assert updated.version == 2  # a new version is no new pattern
    await memory.share_pattern(MALLORY, first.pattern_id, ["*"])

    await memory.update_state(MALLORY, {"current": {"a": 1}}, 0, checkpoint="one")
    await memory.update_state(MALLORY, {"current": {"a": 2}}, 1)  # no checkpoint: nothing counted
    error = await _refused(memory.update_state(MALLORY, {"current": {"a": 3}}, 2, checkpoint="two"))
    assert error.quota == "checkpoints"
    assert (await memory.get_state(MALLORY)).version == 2  # the refused update wrote nothing

    usage = await memory.store.quota_usage(MALLORY.agent_id)
    assert dict(usage.counts) == {"decisions": 3, "notes": 2, "signals": 2, "patterns": 2, "checkpoints": 1}
    # Another agent has its own quotas.
    await memory.log_decision(HONEST, "TRADE")
    await memory.store_note(HONEST, "working", 1)
    assert dict((await memory.store.quota_usage(HONEST.agent_id)).counts) == {"decisions": 1, "notes": 1}


async def test_the_byte_quota_counts_what_is_stored(engine: ItemEngine) -> None:
    memory = memory_on(engine, FakeClock(), quota_bytes=20_000)
    blob = {"blob": "x" * 4000}
    logged = 0
    with pytest.raises(QuotaExceeded) as caught:
        for _ in range(10):
            await memory.log_decision(MALLORY, "TRADE", context=blob)
            logged += 1
    assert caught.value.quota == "bytes" and caught.value.limit == 20_000
    used = (await memory.store.quota_usage(MALLORY.agent_id)).bytes
    assert used == caught.value.used and 4 * 4000 < used <= 20_000 and logged == used // 4000
    assert len((await memory.search_decisions(MALLORY, limit=20)).items) == logged
    await memory.log_decision(MALLORY, "TRADE")  # a small one still fits
    await memory.log_decision(HONEST, "TRADE", context=blob)


async def test_expired_records_give_their_room_back(engine: ItemEngine) -> None:
    clock = FakeClock()
    memory = memory_on(engine, clock, quota_notes=2, quota_decisions=2, decision_ttl_days=1)
    await memory.store_note(MALLORY, "a", 1, ttl_minutes=60)
    await memory.store_note(MALLORY, "b", 1, ttl_minutes=60)
    await memory.log_decision(MALLORY, "TRADE")
    await memory.log_decision(MALLORY, "TRADE")
    await _refused(memory.store_note(MALLORY, "c", 1))
    await _refused(memory.log_decision(MALLORY, "TRADE"))
    # An expired record stops counting once the hour it expired in has passed.
    clock.advance(hours=2)
    await memory.store_note(MALLORY, "c", 1)
    assert (await memory.store.quota_usage(MALLORY.agent_id)).counts["notes"] == 1
    clock.advance(hours=24)
    await memory.log_decision(MALLORY, "TRADE")
    usage = await memory.store.quota_usage(MALLORY.agent_id)
    assert usage.counts["decisions"] == 1
    # A note overwritten after its bucket was let go is counted once, as new (c still counts).
    await memory.store_note(MALLORY, "a", 2)
    assert (await memory.store.quota_usage(MALLORY.agent_id)).counts["notes"] == 2


async def test_a_limit_holds_under_concurrent_writes(engine: ItemEngine) -> None:
    """20 concurrent writes against a quota of 5: exactly 5 land, on DynamoDB Local (atomic across
    connections) as on SQLite. A lost transaction race is retried as a client would."""
    memory = memory_on(engine, FakeClock(), quota_decisions=5, quota_notes=5)

    async def attempt(write: Any) -> bool:
        for _ in range(30):
            try:
                await write()
                return True
            except QuotaExceeded:
                return False
            except Conflict:
                continue  # retryable: concurrent transactions on the same counters
        raise AssertionError("never settled")

    decisions = await asyncio.gather(
        *(attempt(lambda: memory.log_decision(MALLORY, "TRADE")) for _ in range(20))
    )
    notes = await asyncio.gather(
        *(attempt(lambda i=i: memory.store_note(MALLORY, f"k{i}", i)) for i in range(20))  # type: ignore[misc]
    )
    assert sum(decisions) == 5 and sum(notes) == 5
    assert len((await memory.search_decisions(MALLORY, limit=50)).items) == 5
    assert len((await memory.store.query_notes(MALLORY.agent_id, limit=50, cursor=None)).items) == 5
    usage = await memory.store.quota_usage(MALLORY.agent_id)
    assert usage.counts["decisions"] == 5 and usage.counts["notes"] == 5


async def test_with_every_quota_off_nothing_is_counted(engine: ItemEngine) -> None:
    memory = memory_on(engine, FakeClock(), **OFF)
    assert memory.quotas.charge(MALLORY.agent_id, "decisions") is None
    for _ in range(3):
        await memory.log_decision(MALLORY, "TRADE")
    await memory.store_note(MALLORY, "a", 1)
    usage = await memory.store.quota_usage(MALLORY.agent_id)
    assert usage.counts == {} and usage.bytes == 0


async def test_budget_items_count_against_the_byte_quota(engine: ItemEngine) -> None:
    """consume_budget creates one item per key and window: a flood of keys is bounded by bytes."""
    clock = FakeClock()
    memory = memory_on(engine, clock, quota_bytes=2_000)
    budgets = Budgets(memory.store, clock, quotas=memory.quotas)
    made = 0
    with pytest.raises(QuotaExceeded) as caught:
        for i in range(100):
            await budgets.consume(MALLORY, f"api/key-{i}", limit=10, window="1d")
            made += 1
    assert caught.value.quota == "bytes" and 3 <= made < 100
    again = await budgets.consume(MALLORY, "api/key-0", limit=10, window="1d")  # an existing item: fine
    assert again.allowed and again.used == 2
    assert (await memory.store.quota_usage(MALLORY.agent_id)).counts == {"budgets": made}
