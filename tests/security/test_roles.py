"""Roles: the observer token reads across agents and writes nothing (issue #12: an observer token
could log decisions, send critical signals to ['*'] and share patterns)."""

from __future__ import annotations

from typing import Any

from agent_memory.api import TOOLS
from tests.security.conftest import HONEST, HOSTILE, OBSERVER, Server, seed_honest, snapshot


async def test_observer_cannot_write_anything(server: Server) -> None:
    async with server.team() as team:
        await seed_honest(team)
        before = {name: await snapshot(team[name]) for name in HONEST}
        observer = team[OBSERVER]
        attempts: dict[str, dict[str, Any]] = {
            "log_decision": dict(decision_type="TRADE"),
            "store_stm": dict(key="k", value=1),
            "update_state": dict(patch={"current": {"x": 1}}, expected_version=0),
            "publish_signal": dict(
                signal_type="PANIC", data={"sell": "everything"}, target_agents=["*"], confidence=1.0,
                severity="critical",
            ),
            "store_pattern": dict(
                description="observer rule", conditions=[], outcomes={}, confidence=1.0, success_rate=1.0,
                sample_size=10,
            ),
            "share_pattern": dict(pattern_id="market-hunter-p1", shared_with=["*"]),
            "learn_patterns": dict(),
            "record_outcome": dict(decision_id="market-hunter-d1", success=False),
        }  # fmt: skip
        for tool, args in attempts.items():
            message = await observer.error(tool, **args)
            assert "access_denied" in message and "observer role is read-only" in message, (tool, message)
        # Nothing reached the honest agents: no signal in any inbox, memory unchanged.
        for name in HONEST:
            assert await snapshot(team[name]) == before[name]
        # The observer still reads across agents.
        seen = await observer.ok("search_decisions", agent_id="market-hunter")
        assert [d["decision_id"] for d in seen["decisions"]] == ["market-hunter-d1"]


async def test_observer_is_listed_read_tools_only(server: Server) -> None:
    """Over HTTP, tools/list follows the caller's token: an observer is not shown write tools
    (issue #12), an agent is shown every tool; a write tool called anyway is still refused."""
    reads = {name for name, spec in TOOLS.items() if spec.kind == "read"}
    writes = set(TOOLS) - reads
    assert reads and writes
    async with server.team() as team:
        await seed_honest(team)
        before = {name: await snapshot(team[name]) for name in HONEST}
        seen_by_observer = {t.name for t in (await team[OBSERVER].client.list_tools()).tools}
        seen_by_agent = {t.name for t in (await team["executor"].client.list_tools()).tools}
        seen_by_mallory = {t.name for t in (await team[HOSTILE].client.list_tools()).tools}
        assert seen_by_observer == reads
        assert seen_by_agent == seen_by_mallory == set(TOOLS)
        # The observer's list is not a cache the agents later read from, nor the other way round.
        assert {t.name for t in (await team[OBSERVER].client.list_tools()).tools} == reads
        message = await team[OBSERVER].error("publish_signal", signal_type="PANIC", data={},
                                             target_agents=["*"], confidence=1.0)  # fmt: skip
        assert "access_denied" in message and "observer role is read-only" in message
        for name in HONEST:
            assert await snapshot(team[name]) == before[name]
