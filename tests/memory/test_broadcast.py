"""publish_signal(['*']): a broadcast reaches every other registered agent, up to the 30 one signal
may reach; beyond that it is refused with what to do instead, and nothing is delivered (the decision
and its reasons: docs/SCALING.md#hot-keys)."""

from __future__ import annotations

from agent_memory.limits import MAX_TARGETS
from agent_memory.models import AgentProfile
from agent_memory.storage.engine import ItemEngine
from agent_memory.storage.store import MemoryStore
from tests.server.conftest import team
from tests.support import FakeClock

DESK = "desk-lead"


async def _register(store: MemoryStore, clock: FakeClock, *agents: str) -> None:
    for agent in agents:
        now = clock()
        await store.register_agent(AgentProfile(agent_id=agent, role="agent", first_seen=now, last_seen=now))


async def _pending(store: MemoryStore, agent: str) -> int:
    page = await store.read_inbox(agent, status="pending", signal_type=None, limit=50, cursor=None)
    return len(page.items)


async def test_broadcast_reaches_everyone_up_to_the_limit_then_says_what_to_do(engine: ItemEngine) -> None:
    clock = FakeClock()
    store = MemoryStore(engine, clock)
    others = [f"agent-{i:02d}" for i in range(MAX_TARGETS)]
    await _register(store, clock, *others)
    async with team(engine, clock, DESK) as (desk,):
        sent = await desk.ok(
            "publish_signal",
            signal_type="HALT",
            data={},
            target_agents=["*"],
            confidence=1.0,
            signal_id="b-1",
        )
        assert sent["targets"] == MAX_TARGETS
        assert [await _pending(store, a) for a in others] == [1] * MAX_TARGETS

        await _register(store, clock, "agent-late")
        message = await desk.error(
            "publish_signal",
            signal_type="HALT",
            data={},
            target_agents=["*"],
            confidence=1.0,
            signal_id="b-2",
        )
        assert message.startswith("invalid_input:")
        assert f"the {MAX_TARGETS + 1} other registered agents" in message
        assert f"at most {MAX_TARGETS}" in message and "named target_agents" in message
        # nothing of the refused broadcast was delivered or stored
        assert [await _pending(store, a) for a in [*others, "agent-late"]] == [1] * MAX_TARGETS + [0]
        assert await store.get_signal(DESK, "b-2") is None
