"""publish_signal through the real MCP client builds the signal without checking its payload a
second time (the request model checks it with the signal's own rules, issue #14): what it stores
is what the memory stores for the same call, and what the rules refuse is still refused."""

from __future__ import annotations

from typing import Any

from agent_memory.memory.identity import Caller
from agent_memory.models import MAX_PAYLOAD_BYTES, Signal
from agent_memory.storage.engine import ItemEngine
from agent_memory.storage.store import MemoryStore
from tests.server.conftest import team
from tests.support import FakeClock, memory_on

PAYLOAD: dict[str, Any] = {
    "data": {"whole": 2.0, "big": 1e23, "nested": [1.0, {"x": -0.0, "text": "naïve"}], "none": None},
    "context": {"market": {"volatility": 0.25, "count": 3.0}},
}


def _content(signal: Signal) -> dict[str, Any]:
    return signal.model_dump(exclude={"signal_id", "created_at", "expires_at", "processing_status"})


async def test_a_published_payload_is_stored_as_the_memory_stores_it(
    engine: ItemEngine, clock: FakeClock
) -> None:
    async with team(engine, clock, "market-hunter", "risk-manager") as [hunter, risk]:
        await risk.ok("get_state")  # registers the risk manager
        published = await hunter.ok(
            "publish_signal",
            signal_type="WHALE_ACTIVITY",
            target_agents=["risk-manager"],
            confidence=1,
            signal_id="via-tool",
            **PAYLOAD,
        )
        assert published["created"] is True
    memory = memory_on(engine, clock)
    await memory.publish_signal(
        Caller("market-hunter"),
        signal_type="WHALE_ACTIVITY",
        target_agents=["risk-manager"],
        confidence=1,
        signal_id="via-memory",
        **PAYLOAD,
    )
    store = MemoryStore(engine, clock)
    via_tool = await store.get_signal("market-hunter", "via-tool")
    via_memory = await store.get_signal("market-hunter", "via-memory")
    assert via_tool is not None and via_memory is not None
    assert _content(via_tool) == _content(via_memory)
    # Normalised by the request model as the memory normalises it (integral floats become ints).
    assert via_tool.data["whole"] == 2 and via_tool.data["nested"] == [1, {"x": 0, "text": "naïve"}]
    assert type(via_tool.data["whole"]) is int and type(via_tool.confidence) is float


async def test_a_payload_the_rules_refuse_is_refused_by_the_tool(
    engine: ItemEngine, clock: FakeClock
) -> None:
    async with team(engine, clock, "market-hunter") as [hunter]:
        too_big = await hunter.error(
            "publish_signal",
            signal_type="X",
            data={"blob": "x" * (MAX_PAYLOAD_BYTES + 1)},
            target_agents=["market-hunter"],
            confidence=0.5,
        )
        assert too_big.startswith("invalid_input:") and "data" in too_big
        too_deep: Any = "leaf"
        for _ in range(40):
            too_deep = {"d": too_deep}
        deep = await hunter.error(
            "publish_signal", signal_type="X", data={}, context=too_deep, target_agents=["x"], confidence=0.5
        )
        assert deep.startswith("invalid_input:") and "context" in deep
        assert (await hunter.ok("read_inbox"))["entries"] == []
