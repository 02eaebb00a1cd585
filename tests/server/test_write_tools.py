"""The write tools build their records from arguments their request models validated, without a
second validation (issue #14): what they store must be exactly what the validating ``Memory`` API
stores for the same arguments, on every backend, and bad arguments are still refused."""

from __future__ import annotations

from typing import Any

from agent_memory.memory.identity import Caller
from agent_memory.memory.service import Memory
from agent_memory.models import Outcome
from agent_memory.storage.engine import ItemEngine
from agent_memory.storage.store import MemoryStore
from tests.server.conftest import team
from tests.support import FakeClock, settings_for

# Values the record checks convert (integral floats become ints, tuples lists) or keep as they are.
CONTEXT: dict[str, Any] = {
    "market": {"trend": "bullish", "volatility": 0.35, "levels": [1.0, 2.5, -0.0, 1e15]},
    "whale_count": 7.0,
    "note": "café ☕",
    "flags": [True, None, {"deep": [[1, 2.0], []]}],
    "big": 123456789012345678901234567,
    "tiny": 1e-120,
    "large_float": 1.5e100,
    "integral_beyond_2_53": 1e23,  # 10**23 (as DynamoDB keeps it: read back as a float there)
}
REASONING: dict[str, Any] = {"chosen": "whaleMovements", "score": 0.8, "weights": [0.25, 0.75]}


def _without_stamps(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ("decision_id", "created_at", "expires_at")}


async def test_log_decision_stores_what_the_validating_api_stores(
    engine: ItemEngine, clock: FakeClock
) -> None:
    memory = Memory(MemoryStore(engine, clock), settings_for(agent_id="hunter"), clock)
    async with team(engine, clock, "hunter") as [hunter]:
        logged = await hunter.ok(
            "log_decision",
            decision_type="SOURCE_SELECTION",
            context=CONTEXT,
            reasoning=REASONING,
            outcome={"success": True, "quality_score": 0.75, "latency_ms": 1200.0, "errors": ["late"]},
            decision_id="by-tool",
        )
        assert logged == {"decision_id": "by-tool", "created": True}
        _, created = await memory.log_decision(
            Caller("hunter"),
            "SOURCE_SELECTION",
            context=CONTEXT,
            reasoning=REASONING,
            outcome=Outcome(success=True, quality_score=0.75, latency_ms=1200.0, errors=["late"]),
            decision_id="by-api",
        )
        assert created
        by_tool = await hunter.resource("memory://decisions/by-tool")
        by_api = await hunter.resource("memory://decisions/by-api")
        by_tool["outcome"].pop("recorded_at")
        by_api["outcome"].pop("recorded_at")
        assert _without_stamps(by_tool) == _without_stamps(by_api)
        assert by_tool["context"]["whale_count"] == 7 and type(by_tool["context"]["whale_count"]) is int
        assert by_tool["context"]["market"]["levels"] == [1, 2.5, 0, 10**15]
        assert (
            by_tool["context"]["big"] == 123456789012345678901234567 and by_tool["context"]["tiny"] == 1e-120
        )
        # A retry of the tool call is recognised as the same decision.
        plain = {
            "decision_type": "SOURCE_SELECTION",
            "context": {"n": 1.0, "s": "x"},
            "decision_id": "retried",
        }
        assert (await hunter.ok("log_decision", **plain))["created"] is True
        assert (await hunter.ok("log_decision", **plain))["created"] is False


async def test_a_retry_with_round_integers_beyond_2_53_is_the_same_write(
    engine: ItemEngine, clock: FakeClock
) -> None:
    """DynamoDB reads 10**23 back as the float 1e23 (its numbers do not say int or float): a retry
    of the same call is still recognised as the same decision or signal, and a different number
    is still a different payload."""
    async with team(engine, clock, "hunter") as [hunter]:
        ctx = {"n": 10**23, "nested": [{"m": -(10**40)}], "f": 1e23}
        decision = {"decision_type": "SOURCE_SELECTION", "context": ctx, "reasoning": {"r": 10**30}}
        assert (await hunter.ok("log_decision", **decision, decision_id="big"))["created"] is True
        assert (await hunter.ok("log_decision", **decision, decision_id="big"))["created"] is False
        other = await hunter.error(
            "log_decision", **{**decision, "context": {**ctx, "n": 10**23 + 1}}, decision_id="big"
        )
        assert other.startswith("conflict:") and "different content" in other
        signal = {"signal_type": "WHALE", "data": ctx, "target_agents": ["hunter"], "confidence": 0.5}
        assert (await hunter.ok("publish_signal", **signal, signal_id="big"))["created"] is True
        assert (await hunter.ok("publish_signal", **signal, signal_id="big"))["created"] is False
        changed = await hunter.error("publish_signal", **{**signal, "data": {"n": 10**24}}, signal_id="big")
        assert changed.startswith("conflict:") and "different content" in changed


async def test_record_outcome_answers_without_reading_back_and_records_once(
    engine: ItemEngine, clock: FakeClock
) -> None:
    async with team(engine, clock, "hunter", "risk") as [hunter, risk]:
        await hunter.ok("log_decision", decision_type="SOURCE_SELECTION", context=CONTEXT, decision_id="d-1")
        first = await hunter.ok("record_outcome", decision_id="d-1", success=True, quality_score=0.5)
        assert first == {"decision_id": "d-1", "recorded": True}
        stored = await hunter.resource("memory://decisions/d-1")
        assert stored["outcome"]["success"] is True and stored["outcome"]["quality_score"] == 0.5
        same = await hunter.ok("record_outcome", decision_id="d-1", success=True, quality_score=0.5)
        assert same == {"decision_id": "d-1", "recorded": False}
        other = await hunter.error("record_outcome", decision_id="d-1", success=False)
        assert other.startswith("conflict:") and "already has an outcome" in other
        assert (await hunter.resource("memory://decisions/d-1"))["outcome"] == stored["outcome"]
        # Another agent's decision ids are its own: no outcome can be attached to them from here.
        missing = await risk.error("record_outcome", decision_id="d-1", success=True)
        assert missing.startswith("not_found:")


async def test_store_stm_and_update_state_store_what_they_were_given(
    engine: ItemEngine, clock: FakeClock
) -> None:
    async with team(engine, clock, "hunter") as [hunter]:
        await hunter.ok("store_stm", key="context/market", value={"levels": [1.0, 2.5], "trend": "up"})
        await hunter.ok("store_stm", key="context/market", value={"levels": [3.0], "trend": "down"})
        recalled = await hunter.ok("recall_stm")
        assert [n["key"] for n in recalled["notes"]] == ["context/market"]
        assert recalled["notes"][0]["value"] == {"levels": [3], "trend": "down"}

        first = await hunter.ok(
            "update_state", patch={"current": {"cycle": 1.0, "open": ["a"]}, "configuration": {"x": 1}},
            expected_version=0,
        )  # fmt: skip
        assert first["version"] == 1
        second = await hunter.ok(
            "update_state", patch={"current": {"open": None, "cycle": 2}}, expected_version=1
        )
        assert second["version"] == 2
        state = await hunter.ok("get_state")
        assert state["current"] == {"cycle": 2} and state["configuration"] == {"x": 1}
        stale = await hunter.error("update_state", patch={"current": {"cycle": 3}}, expected_version=1)
        assert stale.startswith("version_conflict:")


async def test_bad_write_arguments_are_still_refused(engine: ItemEngine, clock: FakeClock) -> None:
    async with team(engine, clock, "hunter") as [hunter]:
        bad_id = await hunter.error("log_decision", decision_type="SOURCE_SELECTION", decision_id="a b")
        assert bad_id.startswith("invalid_input:") and "decision_id" in bad_id
        bad_key = await hunter.error("store_stm", key="#k", value=1)
        assert bad_key.startswith("invalid_input:")
        deep: Any = "x"
        for _ in range(40):
            deep = [deep]
        too_deep = await hunter.error("log_decision", decision_type="SOURCE_SELECTION", context={"d": deep})
        assert "nested deeper" in too_deep
        huge = await hunter.error("store_stm", key="k", value="x" * (70 * 1024))
        assert "the limit is 65536 bytes" in huge
        over = await hunter.error("log_decision", decision_type="SOURCE_SELECTION", context={"n": 10**40 + 1})
        assert "significant digits" in over
        # A merged state section over its limit is refused, and the state is left as it was.
        await hunter.ok("update_state", patch={"current": {"a": "x" * 40_000}}, expected_version=0)
        grown = await hunter.error("update_state", patch={"current": {"b": "y" * 40_000}}, expected_version=1)
        assert grown.startswith("invalid_input:") and "65536" in grown
        assert (await hunter.ok("get_state"))["version"] == 1


async def test_a_stdio_server_commits_each_write_alone(engine: ItemEngine, clock: FakeClock) -> None:
    """One agent's calls come one at a time over stdio: the embedded store's group commit would
    only make each write wait a turn of the event loop (storage/sqlite/engine.py)."""
    grouped = getattr(engine, "group_writes", None)
    async with team(engine, clock, "hunter") as [hunter]:
        await hunter.ok("log_decision", decision_type="SOURCE_SELECTION", context={}, reasoning={})
        assert getattr(engine, "group_writes", None) is (None if grouped is None else False)
