"""The surface a model reads (issue #11), through the real MCP client on every backend: paging
that keeps working while the clock moves, default pages within budget at any stored volume
(64 KiB fields included), short cursors, compact writes, checkpoints readable over MCP."""

from __future__ import annotations

import json
from typing import Any

from agent_memory.storage.engine import ItemEngine
from tests.server.conftest import Agent, team
from tests.support import FakeClock

PAGE_BUDGET = 8_000
"""Characters of text a default page of any tool may take (about 2k tokens)."""
TOOLS_BUDGET = 12_800
"""Characters of tools/list a model sees: names, descriptions, input schemas (about 3k tokens; 16
tools fit in 12,000, consume_budget of issue #15 adds about 600, the per-author ids of issue #12
about 160: log_decision's parent_agent_id and ack_signal's from_agent)."""
CURSOR_BUDGET = 100

BIG = {"blob": "x" * (64 * 1024 - 40)}
"""A free-form field at the 64 KiB limit."""


def trading_context(i: int) -> dict[str, Any]:
    """A realistic ~1.2 KB decision context of a trading agent."""
    return {
        "market": {"trend": "bullish" if i % 3 else "bearish", "volatility": "high", "regime": "risk-on"},
        "token": f"TOKEN{i}",
        "whale_count": i % 11,
        "prices": [round(100 + i * 0.37 + k * 0.11, 2) for k in range(40)],
        "sources": {f"source_{k}": {"score": round(0.1 * k, 2), "latency_ms": 40 + k} for k in range(12)},
        "note": "order book imbalance on the bid side; funding neutral; social volume rising " * 2,
    }


async def text_of(agent: Agent, tool: str, **args: Any) -> str:
    result = await agent.client.call_tool(tool, args)
    assert not result.is_error, result.content
    text: str = result.content[0].text  # type: ignore[union-attr]
    data = json.loads(text)
    assert data == result.structured_content  # the same data in both forms
    assert text == json.dumps(data, separators=(",", ":"), ensure_ascii=False)  # compact JSON
    assert not _has_null(data)
    return text


def _has_null(value: Any) -> bool:
    if isinstance(value, dict):
        return any(v is None or _has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_null(v) for v in value)
    return False


async def test_recall_stm_pages_while_the_clock_moves(engine: ItemEngine, clock: FakeClock) -> None:
    async with team(engine, clock, "hunter") as [hunter]:
        for i in range(25):
            await hunter.ok(
                "log_decision", decision_type="SCAN", context={"i": i}, decision_id=f"dec_{i:020}"
            )
            clock.advance(minutes=1)
        await hunter.ok("store_stm", key="context/market", value={"regime": "risk-on"})
        seen: list[str] = []
        page = await hunter.ok("recall_stm", limit=5)
        assert [n["key"] for n in page["notes"]] == ["context/market"]  # a note takes a slot
        while True:
            assert len(page["decisions"]) + len(page.get("notes", [])) <= 5
            seen += [d["decision_id"] for d in page["decisions"]]
            cursor = page.get("next_cursor")
            if cursor is None:
                break
            assert len(cursor) <= CURSOR_BUDGET, cursor
            clock.advance(minutes=7)  # time passes between pages: the window must not slide
            page = await hunter.ok("recall_stm", limit=5, cursor=cursor)
            assert page["notes"] == []
        assert seen == [f"dec_{i:020}" for i in reversed(range(25))]


async def test_search_and_inbox_page_with_short_cursors(engine: ItemEngine, clock: FakeClock) -> None:
    async with team(engine, clock, "hunter", "risk") as [hunter, risk]:
        await risk.ok("get_state")
        for i in range(12):
            await hunter.ok(
                "log_decision", decision_type="SCAN", decision_id=f"d{i:02}", outcome={"success": True}
            )
            await hunter.ok("publish_signal", signal_type="WHALE", data={"i": i}, target_agents=["risk"],
                            confidence=0.5, signal_id=f"s{i:02}")  # fmt: skip
            clock.advance(minutes=3)
        for tool, agent, args, key, ids in (
            ("search_decisions", hunter, {"limit": 5}, "decisions", "decision_id"),
            ("search_decisions", hunter, {"limit": 5, "success": True}, "decisions", "decision_id"),
            ("search_decisions", hunter, {"limit": 5, "decision_type": "SCAN"}, "decisions", "decision_id"),
            ("read_inbox", risk, {"limit": 5}, "entries", "signal_id"),
        ):
            got: list[str] = []
            page = await agent.ok(tool, **args)
            while True:
                got += [e[ids] for e in page[key]]
                if "next_cursor" not in page:
                    break
                assert len(page["next_cursor"]) <= CURSOR_BUDGET, (tool, page["next_cursor"])
                clock.advance(minutes=5)
                page = await agent.ok(tool, **args, cursor=page["next_cursor"])
            assert len(got) == 12 and len(set(got)) == 12, (tool, args, got)


async def test_default_pages_fit_the_budget_at_the_size_limits(engine: ItemEngine, clock: FakeClock) -> None:
    async with team(engine, clock, "hunter", "risk") as [hunter, risk]:
        await risk.ok("get_state")
        for i in range(12):
            await hunter.ok("log_decision", decision_type="SCAN", context=BIG, reasoning=BIG,
                            decision_id=f"d{i:02}", outcome={"success": i % 2 == 0},
                            parent_decision_id="d00" if i else None)  # fmt: skip
            await hunter.ok("store_stm", key=f"note/{i}", value=BIG)
            await hunter.ok("publish_signal", signal_type="WHALE", data=BIG, context=BIG, target_agents=["risk", "hunter"],
                            confidence=0.5, recommended_action="A" * 500)  # fmt: skip
            pattern = await hunter.ok("store_pattern", description="D" * 2000, outcomes=BIG, confidence=0.5,
                                      success_rate=0.5, sample_size=10, shared_with=["*"],
                                      conditions=[{"field": f"f{k}", "op": "eq", "value": "v" * 3000} for k in range(20)])  # fmt: skip
        for k in range(3):
            await hunter.ok("store_pattern", pattern_id=pattern["pattern_id"], expected_version=k + 1,
                            description="D" * 2000, outcomes=BIG, confidence=0.5, success_rate=0.5,
                            sample_size=10, conditions=[{"field": "f", "op": "eq", "value": "v" * 3000}])  # fmt: skip
        sections = ("current", "configuration", "source_metrics", "context_performance")
        for version, section in enumerate(sections):
            state = await hunter.ok(
                "update_state", expected_version=version, checkpoint="big", patch={section: BIG}
            )
            assert state == {"version": version + 1, "checkpoint": "big"}  # ids, versions, flags: no echo

        sizes = {
            "recall_stm": len(await text_of(hunter, "recall_stm")),
            "search_decisions": len(await text_of(hunter, "search_decisions")),
            "read_inbox": len(await text_of(risk, "read_inbox")),
            "recall_patterns": len(await text_of(risk, "recall_patterns")),
            "pattern_history": len(
                await text_of(hunter, "pattern_history", pattern_id=pattern["pattern_id"])
            ),
            "get_state": len(await text_of(hunter, "get_state")),
            "get_analytics": len(await text_of(hunter, "get_analytics")),
            "learn_patterns": len(await text_of(hunter, "learn_patterns", window="24h", min_samples=5)),
        }
        assert all(size <= PAGE_BUDGET for size in sizes.values()), sizes
        stm = await hunter.ok("recall_stm")
        assert len(stm["decisions"]) + len(stm["notes"]) == 10 and stm["more_notes"] is True
        assert stm["decisions"][0]["truncated"] == ["context", "reasoning"]
        assert stm["notes"][0]["truncated"] is True
        whole = await hunter.resource(f"memory://decisions/{stm['decisions'][0]['decision_id']}")
        assert whole["context"] == BIG  # the whole record is one resource read away
        full = await hunter.ok("get_state", section="current")
        assert full["current"] == BIG and "configuration" not in full


async def test_tools_list_fits_the_budget(engine: ItemEngine, clock: FakeClock) -> None:
    async with team(engine, clock, "hunter") as [hunter]:
        tools = (await hunter.client.list_tools()).tools
        seen = sum(
            len(t.name) + len(t.description or "") + len(json.dumps(t.input_schema, separators=(",", ":")))
            for t in tools
        )
        assert seen <= TOOLS_BUDGET, seen
        for tool in tools:
            text = tool.description or ""
            assert "Returns" in text, tool.name
            if "cursor" in tool.input_schema.get("properties", {}):
                assert "next_cursor" in text and ("default 10" in text or "10 by default" in text), tool.name


async def test_checkpoints_are_listed_and_read_over_mcp(engine: ItemEngine, clock: FakeClock) -> None:
    async with team(engine, clock, "hunter") as [hunter]:
        await hunter.ok("update_state", patch={"current": {"cycle": 1}}, expected_version=0, checkpoint="one")
        await hunter.ok("update_state", patch={"current": {"cycle": 2}}, expected_version=1)
        await hunter.ok(
            "update_state", patch={"current": {"cycle": 3}}, expected_version=2, checkpoint="three"
        )
        listed = await hunter.resource("memory://agents/hunter/checkpoints")
        assert [(c["version"], c["label"]) for c in listed] == [(3, "three"), (1, "one")]
        one = await hunter.resource("memory://agents/hunter/checkpoints/1")
        assert one["label"] == "one" and one["state"]["current"] == {"cycle": 1}


async def test_prompt_arguments_are_validated(engine: ItemEngine, clock: FakeClock) -> None:
    from mcp.shared.exceptions import MCPError

    async with team(engine, clock, "hunter") as [hunter]:
        ok = await hunter.client.get_prompt("memory_aware_decision", {"decision_type": "ENTRY_TIMING"})
        assert "recall_stm" in ok.messages[0].content.text  # type: ignore[union-attr]
        for args, problem in (
            ({"decision_type": "not a type"}, "invalid_input: decision_type: invalid type 'not a type'"),
            (
                {"decision_type": "X", "situation": "s" * 2001},
                "invalid_input: situation: must be at most 2000",
            ),
        ):
            try:
                await hunter.client.get_prompt("memory_aware_decision", args)
            except MCPError as exc:
                assert exc.error.message.startswith(problem), exc.error.message
            else:
                raise AssertionError(f"prompt accepted {args}")
