"""The tools through the real MCP client (in-process), on every backend."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from mcp.shared.exceptions import MCPError

from agent_memory.memory.service import Memory
from agent_memory.storage.engine import ItemEngine
from agent_memory.storage.store import MemoryStore
from agent_memory.storage.transfer import export_to
from tests.server.conftest import Agent, team
from tests.support import FakeClock, settings_for

EXPECTED_TOOLS = {
    "log_decision", "record_outcome", "recall_stm", "store_stm", "search_decisions",
    "store_pattern", "recall_patterns", "share_pattern", "pattern_history", "learn_patterns",
    "publish_signal", "read_inbox", "ack_signal", "get_state", "update_state", "get_analytics",
    "consume_budget",
}  # fmt: skip
READ_TOOLS = {
    "recall_stm", "search_decisions", "recall_patterns", "pattern_history", "read_inbox", "get_state",
    "get_analytics",
}  # fmt: skip


async def test_tool_surface(engine: ItemEngine, clock: FakeClock) -> None:
    async with (
        team(engine, clock, "market-hunter") as [hunter],
        team(engine, clock, "market-hunter", read_only=True) as [reader],
    ):
        await _check_surface(hunter, reader)


async def _check_surface(hunter: Agent, reader: Agent) -> None:
    tools = {t.name: t for t in (await hunter.client.list_tools()).tools}
    assert set(tools) == EXPECTED_TOOLS
    for tool in tools.values():
        assert tool.description and len(tool.description) > 40, tool.name
        assert tool.output_schema is not None, tool.name
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint == (tool.name in READ_TOOLS), tool.name
        for name, prop in tool.input_schema.get("properties", {}).items():
            assert "description" in prop or "$ref" in prop or "anyOf" in prop, (tool.name, name)
    assert hunter.client.instructions and "recall_stm" in hunter.client.instructions
    prompts = (await hunter.client.list_prompts()).prompts
    assert [p.name for p in prompts] == ["memory_aware_decision"]

    read_only_tools = {t.name for t in (await reader.client.list_tools()).tools}
    assert read_only_tools == READ_TOOLS


async def test_trading_desk_round(engine: ItemEngine, clock: FakeClock) -> None:
    async with team(engine, clock, "market-hunter", "risk-manager") as [hunter, risk]:
        await _trading_desk_round(hunter, risk)


async def _trading_desk_round(hunter: Agent, risk: Agent) -> None:
    await risk.ok("get_state")  # registers the risk manager

    logged = await hunter.ok(
        "log_decision",
        decision_type="SOURCE_SELECTION",
        context={"market": {"trend": "bullish"}, "whale_count": 7},
        reasoning={"selected": ["whaleMovements"]},
        decision_id="hunt-1",
    )
    assert logged["created"] and logged == {"decision_id": "hunt-1", "created": True}
    assert (await hunter.resource("memory://decisions/hunt-1"))["agent_id"] == "market-hunter"
    retry = await hunter.ok("log_decision", decision_type="SOURCE_SELECTION",
                            context={"market": {"trend": "bullish"}, "whale_count": 7},
                            reasoning={"selected": ["whaleMovements"]}, decision_id="hunt-1")  # fmt: skip
    assert retry["created"] is False

    published = await hunter.ok(
        "publish_signal",
        signal_type="WHALE_ACTIVITY",
        data={"whale_count": 7},
        target_agents=["risk-manager"],
        confidence=0.85,
        severity="high",
    )
    assert published.get("unregistered_targets", []) == [] and published["targets"] == 1
    signal_id = published["signal_id"]

    stm = await risk.ok("recall_stm")
    assert stm["pending_signals"] == 1 and stm["decisions"] == []
    inbox = await risk.ok("read_inbox")
    assert [e["signal_id"] for e in inbox["entries"]] == [signal_id]
    assert inbox["entries"][0]["source_agent"] == "market-hunter"
    assert inbox["entries"][0]["data"] == {"whale_count": 7}

    # Ids are per author: a chain to another agent's decision names its author.
    assessed = await risk.ok(
        "log_decision",
        decision_type="RISK_ASSESSMENT",
        parent_decision_id="hunt-1",
        parent_agent_id="market-hunter",
    )
    acked = await risk.ok(
        "ack_signal", signal_id=signal_id, status="processed", decision_id=assessed["decision_id"]
    )
    assert acked["acknowledged"] and acked["status"] == "processed"
    assert acked["decision_id"] == assessed["decision_id"]
    assert (await risk.ok("read_inbox"))["entries"] == []

    outcome = await hunter.ok(
        "record_outcome", decision_id="hunt-1", success=True, quality_score=0.9, latency_ms=800
    )
    assert outcome == {"decision_id": "hunt-1", "recorded": True}
    assert (await hunter.resource("memory://decisions/hunt-1"))["outcome"]["success"] is True

    await hunter.ok("store_stm", key="context/market", value={"regime": "risk-on"}, ttl_minutes=60)
    stm = await hunter.ok("recall_stm")
    assert [d["decision_id"] for d in stm["decisions"]] == ["hunt-1"]
    assert stm["notes"][0]["value"] == {"regime": "risk-on"}

    state = await hunter.ok(
        "update_state", patch={"current": {"cycle": 1}}, expected_version=0, checkpoint="first"
    )
    assert state["version"] == 1
    stale, error = await hunter.failure("update_state", patch={"current": {"cycle": 2}}, expected_version=0)
    assert "version 0 is stale; current version is 1" in stale and error["code"] == "version_conflict"
    assert error["retryable"] is True and error["current"]["current"] == {"cycle": 1}
    assert error["current"]["version"] == 1

    pattern = await hunter.ok(
        "store_pattern",
        description="Whales in a bullish trend predict a pump",
        conditions=[{"field": "market.trend", "op": "eq", "value": "bullish"}, {"field": "whale_count", "op": "gte", "value": 5}],
        outcomes={"pump_probability": 0.78},
        confidence=0.7,
        success_rate=0.78,
        sample_size=23,
        shared_with=["*"],
    )  # fmt: skip
    recalled = await risk.ok("recall_patterns", context={"market": {"trend": "bullish"}, "whale_count": 9})
    assert [p["pattern_id"] for p in recalled["patterns"]] == [pattern["pattern_id"]]
    assert (await risk.ok("recall_patterns", context={"whale_count": 9}))["patterns"] == []

    history = await hunter.ok("search_decisions", decision_type="SOURCE_SELECTION", success=True)
    assert [d["decision_id"] for d in history["decisions"]] == ["hunt-1"]

    analytics = await hunter.ok("get_analytics", window="24h")
    assert analytics["totals"]["decisions"] == 1 and analytics["totals"]["successes"] == 1
    assert "series" not in analytics and "by_agent" not in analytics  # not asked for; repeats totals
    assert len((await hunter.ok("get_analytics", window="24h", include_series=True))["series"]) >= 24


async def test_resources_follow_access_rules(engine: ItemEngine, clock: FakeClock) -> None:
    async with team(engine, clock, "market-hunter", "risk-manager") as [hunter, risk]:
        await _resources(hunter, risk)


async def _resources(hunter: Agent, risk: Agent) -> None:
    await hunter.ok("log_decision", decision_type="SOURCE_SELECTION", decision_id="hunt-1")
    await hunter.ok("update_state", patch={"current": {"cycle": 1}}, expected_version=0)
    await risk.ok("get_state")

    registry = await hunter.resource("memory://agents")
    assert {a["agent_id"] for a in registry["items"]} == {"market-hunter", "risk-manager"}
    assert (await hunter.resource("memory://agents/market-hunter/state"))["version"] == 1
    assert (await hunter.resource("memory://decisions/hunt-1"))["decision_id"] == "hunt-1"
    assert (await hunter.resource("memory://agents/market-hunter/stm"))["decisions"][0][
        "decision_id"
    ] == "hunt-1"
    for uri in (
        "memory://agents/market-hunter/state",
        "memory://agents/market-hunter/stm",
        "memory://agents/market-hunter/patterns",
        "memory://agents/market-hunter/checkpoints",
        "memory://agents/market-hunter/checkpoints/1",
        "memory://decisions/hunt-1",
    ):
        with pytest.raises(MCPError) as refused:  # the SDK raises the resource error client side
            await risk.client.read_resource(uri)
        message = refused.value.error.message
        assert message.startswith(("not_found: ", "access_denied: ")), (uri, message)
        assert "cycle" not in message and ("hunt-1" not in message or "no decision" in message)


async def test_isolation_between_agents(engine: ItemEngine, clock: FakeClock) -> None:
    async with team(engine, clock, "market-hunter", "risk-manager", "trade-executor") as [
        hunter,
        risk,
        executor,
    ]:
        await _isolation(hunter, risk, executor)


async def _isolation(hunter: Agent, risk: Agent, executor: Agent) -> None:
    await hunter.ok(
        "log_decision", decision_type="SOURCE_SELECTION", decision_id="hunt-1", context={"secret": 1}
    )
    await hunter.ok("store_stm", key="plan", value="buy the dip")
    await hunter.ok("update_state", patch={"current": {"cash": 100}}, expected_version=0)
    sig = await risk.ok(
        "publish_signal", signal_type="RISK_LIMIT", data={}, target_agents=["market-hunter"], confidence=0.5
    )

    assert "access_denied" in await risk.error("search_decisions", agent_id="market-hunter")
    assert "access_denied" in await risk.error("get_analytics", agent_id="market-hunter")
    stm = await risk.ok("recall_stm")
    assert stm["decisions"] == [] and stm["notes"] == []
    assert (await risk.ok("get_state"))["version"] == 0
    assert (await executor.ok("read_inbox"))["entries"] == []
    assert "not_found" in await executor.error("ack_signal", signal_id=sig["signal_id"], status="processed")
    assert "not_found" in await risk.error("record_outcome", decision_id="hunt-1", success=False)

    # Forged identities: an agent_id argument is refused, naming the arguments log_decision takes.
    forged = await risk.error(
        "log_decision", decision_type="SOURCE_SELECTION", agent_id="market-hunter", decision_id="forged"
    )
    assert forged.startswith("invalid_input: agent_id: unknown argument") and "decision_type" in forged
    assert (await risk.error("recall_stm", agent_id="market-hunter")).startswith(
        "invalid_input: agent_id: unknown argument; valid arguments are: cursor, decision_type, limit"
    )
    hunter_history = await hunter.ok("search_decisions")
    assert [d["decision_id"] for d in hunter_history["decisions"]] == ["hunt-1"]


def _keys(value: Any) -> set[str]:
    """Every object key in ``value``, at any depth (the argument names a caller sent)."""
    if isinstance(value, dict):
        return set(value).union(*(_keys(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_keys(v) for v in value))
    return set()


async def _snapshot(engine: ItemEngine) -> str:
    out = io.StringIO()
    await export_to(engine, out)
    # usage counters and registry last_seen are bookkeeping, not memory
    return "\n".join(line for line in out.getvalue().splitlines() if '"usage#' not in line)


async def test_bad_input_is_refused_and_changes_nothing(engine: ItemEngine, clock: FakeClock) -> None:
    async with team(engine, clock, "market-hunter") as [hunter]:
        await _bad_input(hunter, engine)


async def _bad_input(hunter: Agent, engine: ItemEngine) -> None:
    await hunter.ok("log_decision", decision_type="SOURCE_SELECTION", decision_id="hunt-1")
    await hunter.ok("update_state", patch={"current": {"cycle": 1}}, expected_version=0)
    sig = await hunter.ok(
        "publish_signal", signal_type="X", data={}, target_agents=["market-hunter"], confidence=0.5
    )
    before = await _snapshot(engine)

    big = "x" * 70_000
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("log_decision", {"decision_type": "has space"}, "type"),
        ("log_decision", {"decision_type": "X", "context": "not an object"}, "context"),
        ("log_decision", {"decision_type": "X", "context": {"blob": big}}, "65536"),
        ("log_decision", {"decision_type": "X", "decision_id": "bad#id"}, "decision_id: invalid id 'bad#id'"),
        ("log_decision", {"decision_type": "X", "parent_decision_id": "nope"}, "parent_decision_id"),
        ("log_decision", {"decision_type": "X", "patterns_applied": ["nope"]}, "patterns_applied"),
        ("log_decision", {"decision_type": "SOURCE_SELECTION", "decision_id": "hunt-1", "context": {"a": 1}}, "different content"),
        ("log_decision", {"decision_type": "X", "outcome": {"success": True, "quality_score": 2}}, "quality_score"),
        ("record_outcome", {"decision_id": "hunt-1", "success": "maybe"}, "success"),
        ("record_outcome", {"decision_id": "hunt-1", "success": True, "quality_score": -0.1}, "quality_score"),
        ("record_outcome", {"decision_id": "nope", "success": True}, "no decision"),
        ("recall_stm", {"limit": 0}, "limit"),
        ("recall_stm", {"limit": 51}, "limit"),
        ("recall_stm", {"cursor": "garbage"}, "cursor"),
        ("store_stm", {"key": "k", "value": 1, "ttl_minutes": 1441}, "ttl_minutes"),
        ("store_stm", {"key": "bad key", "value": 1}, "key"),
        ("store_stm", {"key": "k", "value": big}, "65536"),
        ("search_decisions", {"since": "yesterday"}, "since"),
        ("search_decisions", {"since": "2026-11-02T00:00:00"}, "timezone"),
        ("search_decisions", {"since": "2026-11-03T00:00:00Z", "until": "2026-11-01T00:00:00Z"}, "since is after until"),
        ("search_decisions", {"all_agents": True, "decision_type": "X"}, "observer"),
        ("store_pattern", {"description": "d", "conditions": [], "outcomes": {}, "confidence": 1.5, "success_rate": 0.5, "sample_size": 1}, "confidence"),
        ("store_pattern", {"description": "d", "conditions": [{"field": "a", "op": "gte", "value": "x"}], "outcomes": {}, "confidence": 0.5, "success_rate": 0.5, "sample_size": 1}, "number"),
        ("store_pattern", {"description": "d", "conditions": [], "outcomes": {}, "confidence": 0.5, "success_rate": 0.5, "sample_size": 1, "pattern_id": "nope", "expected_version": 1}, "no pattern"),
        ("recall_patterns", {"min_confidence": -1}, "min_confidence"),
        ("share_pattern", {"pattern_id": "nope", "shared_with": ["*"]}, "no pattern"),
        ("pattern_history", {"pattern_id": "nope"}, "no pattern"),
        ("learn_patterns", {"window": "forever"}, "window"),
        ("publish_signal", {"signal_type": "X", "data": {}, "target_agents": [], "confidence": 0.5}, "target_agents"),
        ("publish_signal", {"signal_type": "X", "data": {}, "target_agents": ["a"], "confidence": 0.5, "ttl_hours": 0}, "ttl_hours"),
        ("publish_signal", {"signal_type": "X", "data": {}, "target_agents": [f"a{i}" for i in range(31)], "confidence": 0.5}, "target_agents"),
        ("publish_signal", {"signal_type": "X", "data": {}, "target_agents": ["*", "b"], "confidence": 0.5}, "alone"),
        ("read_inbox", {"status": "done"}, "status"),
        ("ack_signal", {"signal_id": "nope", "status": "processed"}, "no signal"),
        ("ack_signal", {"signal_id": sig["signal_id"], "status": "maybe"}, "status"),
        ("ack_signal", {"signal_id": sig["signal_id"], "status": "processed", "decision_id": "nope"}, "decision_id"),
        ("update_state", {"patch": {"current": {"cycle": 2}}, "expected_version": 7}, "stale"),
        ("update_state", {"patch": {"mood": {}}, "expected_version": 1}, "unknown section"),
        ("update_state", {"patch": {"current": 5}, "expected_version": 1}, "object"),
        ("update_state", {"patch": {"current": {"x": 1}}, "expected_version": -1}, "expected_version"),
        ("get_analytics", {"window": "100y"}, "window"),
    ]  # fmt: skip
    cases += [
        ("record_outcome", {"decision_id": "hunt-1", "success": "yes"}, "success: must be true or false (got \"yes\")"),
        ("recall_patterns", {"include_shared": 1}, "include_shared: must be true or false"),
        ("publish_signal", {"signal_type": "X", "data": {}, "target_agents": ["a"], "confidence": 1.5}, "invalid_input: confidence: must be at most 1 (got 1.5)"),
        ("get_state", {"verbose": True}, "verbose: unknown argument; valid arguments are: section"),
    ]  # fmt: skip
    params = {
        t.name: set(t.input_schema.get("properties", {})) for t in (await hunter.client.list_tools()).tools
    }
    every_param = set().union(*params.values())
    for tool, args, hint in cases:
        text = await hunter.error(tool, **args)
        assert hint.lower() in text.lower(), (tool, args, text)
        # A hint names only parameters this tool has (or the one that was sent and refused).
        named = {w for w in re.findall(r"\b[a-z]+(?:_[a-z]+)+\b", text) if w in every_param}
        assert named <= params[tool] | _keys(args), (tool, text, named - params[tool])
    assert await _snapshot(engine) == before


async def test_recall_patterns_matches_as_the_conditions_hold(engine: ItemEngine, clock: FakeClock) -> None:
    """recall_patterns tests stored conditions as they are stored (without building them) and the
    tool's context as its request model validated it: it recalls exactly the patterns whose every
    condition holds by ``PatternCondition.holds``, for every operator, as ``Memory`` called
    directly does."""
    from agent_memory.memory.identity import Caller
    from agent_memory.models import PatternCondition

    conditions = [
        {"field": "market.trend", "op": "eq", "value": "bullish"},
        {"field": "market.trend", "op": "ne", "value": "bearish"},
        {"field": "whale_count", "op": "gt", "value": 3},
        {"field": "whale_count", "op": "gte", "value": 9.0},
        {"field": "market.volatility", "op": "lt", "value": 0.5},
        {"field": "market.volatility", "op": "lte", "value": 0.25},
        {"field": "tags", "op": "in", "value": [["a", "é"], "x"]},
        {"field": "venue", "op": "in", "value": ["dex", "cex"]},
        {"field": "market.trend", "op": "exists"},
        {"field": "missing", "op": "exists", "value": False},
        {"field": "whale_count", "op": "eq"},
    ]
    contexts: list[dict[str, Any]] = [
        {
            "market": {"trend": "bullish", "volatility": 0.25},
            "whale_count": 9,
            "tags": ["a", "é"],
            "venue": "dex",
        },
        {"market": {"trend": "bearish", "volatility": 0.75}, "whale_count": 2.0, "venue": "otc"},
        {"market": {"trend": "sideways"}, "whale_count": True, "missing": None},
    ]
    async with team(engine, clock, "pattern-author") as [author]:
        for i, condition in enumerate(conditions):
            # One condition alone, and with the first (a pattern is kept when all hold).
            for j, when in enumerate(([condition], [conditions[0], condition])):
                await author.ok(
                    "store_pattern",
                    pattern_id=f"p{i}-{j}",
                    description=f"rule {i}-{j}",
                    conditions=when,
                    outcomes={},
                    confidence=0.5,
                    success_rate=0.5,
                    sample_size=10,
                )
        records = [PatternCondition.model_validate(c) for c in conditions]  # each one's own test
        direct = Memory(MemoryStore(engine, clock), settings_for(agent_id="pattern-author"), clock)
        for context in contexts:
            expected = set()
            for i, condition in enumerate(records):
                if condition.holds(context):
                    expected.add(f"p{i}-0")
                    if records[0].holds(context):
                        expected.add(f"p{i}-1")
            assert expected  # (each context recalls some, and leaves some out)
            assert len(expected) < 2 * len(conditions)
            found = await author.ok("recall_patterns", context=context, limit=50)
            assert {p["pattern_id"] for p in found["patterns"]} == expected, context
            recalled = await direct.recall_patterns(Caller("pattern-author"), context=context, limit=50)
            assert {p.pattern_id for p in recalled} == expected, context
