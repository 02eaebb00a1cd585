"""Citing another agent's shared pattern (issue #15): resolved through the citing agent's own
sharing index, counted on the pattern's reports item only (never a write to the author's
partition), and seen by the author in its own figures. Through the MCP tools, on every backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp import Client

from agent_memory.server.app import build_server
from agent_memory.storage.engine import ItemEngine
from agent_memory.storage.store import MemoryStore
from tests.server.conftest import Agent
from tests.support import FakeClock, settings_for

HUNTER, RISK, EXEC = "market-hunter", "risk-manager", "trade-executor"


@asynccontextmanager
async def team(engine: ItemEngine) -> AsyncIterator[dict[str, Agent]]:
    clock = FakeClock()
    store = MemoryStore(engine, clock)
    async with (
        Client(build_server(settings_for(agent_id=HUNTER), store=store, clock=clock)) as hunter,
        Client(build_server(settings_for(agent_id=RISK), store=store, clock=clock)) as risk,
        Client(build_server(settings_for(agent_id=EXEC), store=store, clock=clock)) as executor,
    ):
        yield {HUNTER: Agent(hunter), RISK: Agent(risk), EXEC: Agent(executor)}


async def _cite(agent: Agent, pattern_id: str, success: bool) -> None:
    logged = await agent.ok("log_decision", decision_type="RISK", patterns_applied=[pattern_id])
    await agent.ok("record_outcome", decision_id=logged["decision_id"], success=success)


def _pattern(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict(
        description="whales precede pumps", conditions=[], outcomes={}, confidence=0.7,
        success_rate=0.7, sample_size=20,
    )  # fmt: skip
    return {**base, **fields}


async def _own(hunter: Agent, pattern_id: str) -> dict[str, Any]:
    recalled: list[dict[str, Any]] = (await hunter.ok("recall_patterns", include_shared=False))["patterns"]
    (found,) = [p for p in recalled if p["pattern_id"] == pattern_id]
    return found


async def test_the_author_sees_readers_citations_counted(engine: ItemEngine) -> None:
    async with team(engine) as agents:
        hunter, risk, executor = agents[HUNTER], agents[RISK], agents[EXEC]
        named = await hunter.ok("store_pattern", **_pattern(pattern_id="named", shared_with=[RISK]))
        await hunter.ok("store_pattern", **_pattern(pattern_id="everyone", shared_with=["*"]))
        # Concurrent citations by two readers and the author: every one counted, exactly once.
        await asyncio.gather(
            *(_cite(risk, "named", ok) for ok in (True, True, False)),
            *(_cite(hunter, "named", ok) for ok in (True, False)),
            *(_cite(executor, "everyone", ok) for ok in (True, False, False, True)),
            *(_cite(risk, "everyone", True) for _ in range(2)),
        )
        own = await _own(hunter, "named")
        assert own["feedback"] == {"applied_count": 5, "applied_successes": 3, "author_applied_count": 2}
        assert own["applied_success_rate"] == 0.6
        everyone = await _own(hunter, "everyone")
        assert everyone["feedback"] == {"applied_count": 6, "applied_successes": 4, "author_applied_count": 0}
        # The reader sees the same figures, from the reports item.
        seen = {p["pattern_id"]: p for p in (await risk.ok("recall_patterns"))["patterns"]}
        assert seen["named"]["feedback"] == own["feedback"]
        assert seen["everyone"]["feedback"] == everyone["feedback"]
        # The figures stay the author's after it stops sharing (the citations were made while shared).
        await hunter.ok("share_pattern", pattern_id="named", shared_with=[])
        assert (await _own(hunter, "named"))["feedback"] == own["feedback"]
        assert named["version"] == 1


async def test_a_pattern_unshared_or_retired_is_no_longer_citable(engine: ItemEngine) -> None:
    async with team(engine) as agents:
        hunter, risk, executor = agents[HUNTER], agents[RISK], agents[EXEC]
        await hunter.ok("store_pattern", **_pattern(pattern_id="rule", shared_with=[RISK]))
        await _cite(risk, "rule", True)
        # Shared by name with risk-manager only: another agent cannot cite it.
        refused = await executor.error("log_decision", decision_type="X", patterns_applied=["rule"])
        assert "no pattern 'rule' visible to you" in refused
        await hunter.ok("share_pattern", pattern_id="rule", shared_with=[])
        refused = await risk.error("log_decision", decision_type="X", patterns_applied=["rule"])
        assert "no pattern 'rule' visible to you" in refused

        await hunter.ok("store_pattern", **_pattern(pattern_id="old", shared_with=["*"]))
        await _cite(executor, "old", True)
        # The author's own failures retire it (the learner decays it): no longer citable.
        for _ in range(20):
            await _cite(hunter, "old", False)
        await hunter.ok("learn_patterns", min_samples=20)
        assert (await hunter.ok("pattern_history", pattern_id="old", limit=1))["patterns"][0][
            "status"
        ] == "decayed"
        refused = await executor.error("log_decision", decision_type="X", patterns_applied=["old"])
        assert "no pattern 'old' visible to you" in refused
        # The author's own citations of its private pattern still count.
        await _cite(hunter, "rule", False)
        assert (await _own(hunter, "rule"))["feedback"] == {
            "applied_count": 2,
            "applied_successes": 1,
            "author_applied_count": 1,
        }


async def test_a_reader_s_history_is_the_version_shared_with_it(engine: ItemEngine) -> None:
    async with team(engine) as agents:
        hunter, risk = agents[HUNTER], agents[RISK]
        v1 = await hunter.ok("store_pattern", **_pattern(pattern_id="edge", description="private draft"))
        v2 = await hunter.ok(
            "store_pattern", **_pattern(pattern_id="edge", description="shared one", shared_with=[RISK]),
            expected_version=v1["version"],
        )  # fmt: skip
        await hunter.ok(
            "store_pattern", **_pattern(pattern_id="edge", description="shared, revised", shared_with=[RISK]),
            expected_version=v2["version"],
        )  # fmt: skip
        await _cite(risk, "edge", True)
        seen = (await risk.ok("pattern_history", pattern_id="edge"))["patterns"]
        assert [(p["version"], p["description"]) for p in seen] == [(3, "shared, revised")]
        assert seen[0]["feedback"]["applied_count"] == 1
        own = (await hunter.ok("pattern_history", pattern_id="edge"))["patterns"]
        assert [p["version"] for p in own] == [3, 2, 1]
