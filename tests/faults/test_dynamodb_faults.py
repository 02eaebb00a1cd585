"""DynamoDB faults as the caller sees them, injected by a proxy in front of the emulator.

Each test asserts what the caller gets (the error's code, whether a retry helps, its text, both
from the engine and through the MCP tools) and that what was stored is intact afterwards.
"""

from __future__ import annotations

import time

import pytest

from agent_memory.errors import StorageUnreachable, Throttled, TransactionConflict, VersionConflict
from agent_memory.memory.identity import Caller
from agent_memory.storage.dynamodb.requests import MAX_ATTEMPTS
from agent_memory.storage.engine import Put, Update
from tests.faults.conftest import proxied_engine
from tests.server.conftest import team
from tests.support import FakeClock, memory_on


async def test_throttling_is_retried_by_botocore_then_reported_as_throttled(emulator: str) -> None:
    async with proxied_engine(emulator) as (engine, proxy):
        await engine.write([Put("state", {"pk": "a", "sk": "1", "v": 1})])
        proxy.inject("throttle", "GetItem")
        with pytest.raises(Throttled) as caught:
            await engine.get("state", "a", "1")
        error = caught.value
        assert (error.code, error.retryable) == ("throttled", True)
        assert error.retry_after_s is not None and error.retry_after_s > 0
        assert "throttling" in error.message and "retry in a few seconds" in error.message
        assert proxy.seen["GetItem"] == MAX_ATTEMPTS  # botocore's retries, none on top

        # A throttle that passes is absorbed by the retries: the caller sees nothing.
        proxy.clear()
        proxy.inject("throttle", "GetItem", times=MAX_ATTEMPTS - 1)
        assert await engine.get("state", "a", "1") == {"pk": "a", "sk": "1", "v": 1}


async def test_a_throttled_tool_call_says_throttled_and_retryable(emulator: str) -> None:
    async with proxied_engine(emulator) as (engine, proxy), team(engine, FakeClock(), "hunter") as [hunter]:
        await hunter.ok("update_state", patch={"current": {"cycle": 1}}, expected_version=0)
        proxy.inject("throttle", "*")
        text, data = await hunter.failure("get_state")
        assert "throttled: " in text, text
        assert (data["code"], data["retryable"]) == ("throttled", True) and data["retry_after_s"] > 0
        assert "retry in a few seconds" in text
        proxy.clear()
        state = await hunter.ok("get_state")
        assert (state["version"], state["current"]) == (1, {"cycle": 1})


async def test_transaction_conflicts_are_retried_then_reported_as_conflict(emulator: str) -> None:
    async with proxied_engine(emulator) as (engine, proxy):
        ops = [Put("state", {"pk": "x", "sk": "1"}), Put("state", {"pk": "y", "sk": "1"})]
        proxy.inject("conflict", "TransactWriteItems", times=2)
        await engine.write(ops)  # the engine's own retries absorb two conflicts
        assert proxy.seen["TransactWriteItems"] == 3

        proxy.inject("conflict", "TransactWriteItems")
        with pytest.raises(TransactionConflict) as caught:
            await engine.write([Put("state", {"pk": "x", "sk": "2"}), Put("state", {"pk": "y", "sk": "2"})])
        error = caught.value
        assert (error.code, error.retryable) == ("conflict", True)
        assert "nothing was written" in error.message and "retry the call" in error.message
        proxy.clear()
        assert await engine.get("state", "x", "2") is None
        assert await engine.get("state", "y", "1") == {"pk": "y", "sk": "1"}


async def test_a_conflicting_publish_is_a_conflict_error_and_stores_nothing(emulator: str) -> None:
    async with (
        proxied_engine(emulator) as (engine, proxy),
        team(engine, FakeClock(), "scout", "trader") as [scout, trader],
    ):
        await trader.ok("get_state")  # registers the trader
        proxy.inject("conflict", "TransactWriteItems")
        text = await scout.error(
            "publish_signal",
            signal_type="WHALE",
            data={"size": 1},
            target_agents=["trader"],
            confidence=0.9,
            signal_id="sig-1",
        )
        # Before #13 this was "internal error (request id ...)", without a code.
        assert "conflict: " in text, text
        assert "retry the call" in text
        proxy.clear()
        inbox = await trader.ok("read_inbox")
        assert inbox["entries"] == []
        await scout.ok(
            "publish_signal",
            signal_type="WHALE",
            data={"size": 1},
            target_agents=["trader"],
            confidence=0.9,
            signal_id="sig-1",
        )
        inbox = await trader.ok("read_inbox")
        assert [entry["signal_id"] for entry in inbox["entries"]] == ["sig-1"]


async def test_a_stalled_endpoint_fails_within_the_deadline_as_unreachable(emulator: str) -> None:
    async with proxied_engine(emulator, call_timeout_seconds=2) as (engine, proxy):
        await engine.write([Put("state", {"pk": "a", "sk": "1", "v": 1})])
        proxy.inject("stall", "GetItem")
        started = time.monotonic()
        with pytest.raises(StorageUnreachable) as caught:
            await engine.get("state", "a", "1")
        elapsed = time.monotonic() - started
        error = caught.value
        assert (error.code, error.retryable) == ("storage_unreachable", True)
        assert error.retry_after_s is not None
        assert "did not answer in time" in error.message or "cannot reach" in error.message
        # Bounded by the 2 s deadline (botocore alone would wait 3 attempts x 60 s).
        assert elapsed < 6, elapsed
        proxy.clear()
        assert await engine.get("state", "a", "1") == {"pk": "a", "sk": "1", "v": 1}


async def test_a_stalled_endpoint_bounds_a_whole_tool_call(emulator: str) -> None:
    async with (
        proxied_engine(emulator, call_timeout_seconds=2) as (engine, proxy),
        team(engine, FakeClock(), "hunter", call_timeout_seconds=2) as [hunter],
    ):
        await hunter.ok("get_state")
        proxy.inject("stall", "*")
        started = time.monotonic()
        text = await hunter.error("update_state", patch={"current": {"cycle": 1}}, expected_version=0)
        assert time.monotonic() - started < 6
        assert "storage_unreachable: " in text, text
        proxy.clear()
        state = await hunter.ok("get_state")
        assert state["version"] in (0, 1)  # the write may have landed before the stall: never torn


async def test_a_lost_response_to_an_unconditional_add_counts_twice(emulator: str) -> None:
    # The limit of what the engine alone can do: botocore retries the lost request, and an
    # unconditional ADD applies twice. Records whose count matters put their counters in the same
    # transaction as a conditional create (decisions, signals), whose retry is refused whole, so
    # only stand-alone meters (tool usage counters) can over-count: see docs/RELIABILITY.md.
    async with proxied_engine(emulator) as (engine, proxy):
        proxy.inject("drop", "UpdateItem", times=1)
        item = await engine.update(Update("state", "n", "1", add={"count": 1}))
        assert proxy.seen["UpdateItem"] == 2
        assert item["count"] == 2


async def test_a_lost_response_to_a_decision_with_an_id_answers_like_the_first(emulator: str) -> None:
    async with proxied_engine(emulator) as (engine, proxy), team(engine, FakeClock(), "hunter") as [hunter]:
        proxy.inject("drop", "TransactWriteItems", times=1)
        first = await hunter.ok("log_decision", decision_type="TRADE", decision_id="d-1", context={"a": 1})
        assert sum(proxy.injected.values()) == 1, proxy.seen
        again = await hunter.ok("log_decision", decision_type="TRADE", decision_id="d-1", context={"a": 1})
        assert first["decision_id"] == again["decision_id"] == "d-1"
        # The first call created it (its first answer was lost, not its write); the second is a retry.
        assert (first["created"], again["created"]) == (True, False)
        recent = await hunter.ok("recall_stm")
        assert [d["decision_id"] for d in recent["decisions"]] == ["d-1"]


async def test_lost_responses_to_update_state_answer_like_the_first(emulator: str) -> None:
    # Before #13, 18 of 255 such updates were reported as version_conflict although the current
    # record carried the caller's own patch.
    async with proxied_engine(emulator) as (engine, proxy), team(engine, FakeClock(), "hunter") as [hunter]:
        for version in range(12):
            if version % 3 == 1:
                proxy.inject("drop", "PutItem", times=1)  # applied, then the answer is lost
            state = await hunter.ok(
                "update_state", patch={"current": {"cycle": version}}, expected_version=version
            )
            assert state["version"] == version + 1
        assert proxy.injected["drop:PutItem"] == 4
        # Another call on the same version is another writer: each version is won once.
        text = await hunter.error("update_state", patch={"current": {"cycle": 11}}, expected_version=11)
        assert "version_conflict: " in text and "expected_version=12" in text
        final = await hunter.ok("get_state")
        assert (final["version"], final["current"]) == (12, {"cycle": 11})


async def test_a_named_update_retried_by_its_caller_gets_the_first_answer(emulator: str) -> None:
    async with proxied_engine(emulator) as (engine, proxy):
        memory = memory_on(engine)
        hunter = Caller("hunter")
        await memory.register(hunter)
        proxy.inject("drop", "PutItem", times=1)
        first = await memory.update_state(hunter, {"current": {"cycle": 1}}, 0, request_id="r-1")
        # The caller lost the answer too, and sends the same request again.
        again = await memory.update_state(hunter, {"current": {"cycle": 1}}, 0, request_id="r-1")
        assert (first.version, again.version, again.current) == (1, 1, {"cycle": 1})
        with pytest.raises(VersionConflict):  # same id, other content: not the same request
            await memory.update_state(hunter, {"current": {"cycle": 2}}, 0, request_id="r-1")
        with pytest.raises(VersionConflict):  # same content, no id: another writer
            await memory.update_state(hunter, {"current": {"cycle": 1}}, 0)
        assert (await memory.get_state(hunter)).version == 1


async def test_a_lost_response_to_a_pattern_create_answers_like_the_first(emulator: str) -> None:
    # Before, botocore's retry of the create found the pattern its own first attempt wrote and the
    # call answered "version_conflict: already exists at version 1".
    pattern = {
        "pattern_id": "whales-bullish",
        "description": "many whales in a bullish market favour whale sources",
        "conditions": [{"field": "whale_count", "op": "gte", "value": 5}],
        "outcomes": {"success_rate": 0.7},
        "confidence": 0.6,
        "success_rate": 0.7,
        "sample_size": 40,
    }
    async with proxied_engine(emulator) as (engine, proxy), team(engine, FakeClock(), "hunter") as [hunter]:
        proxy.forget_request_tokens = True  # the retry reaches the table (see FaultProxy)
        proxy.inject("drop", "TransactWriteItems", times=1)
        created = await hunter.ok("store_pattern", **pattern)
        assert proxy.injected["drop:TransactWriteItems"] == 1 and proxy.seen["TransactWriteItems"] == 2
        assert (created["pattern_id"], created["version"]) == ("whales-bullish", 1)
        # Stored once: one pattern at version 1, and another create of the id is still refused.
        recalled = await hunter.ok("recall_patterns", include_shared=False)
        assert [(p["pattern_id"], p["version"]) for p in recalled["patterns"]] == [("whales-bullish", 1)]
        text = await hunter.error("store_pattern", **pattern)
        assert "version_conflict: " in text and "already exists at version 1" in text
