"""Roles: the observer token reads across agents and writes nothing (issue #12: an observer token
could log decisions, send critical signals to ['*'] and share patterns)."""

from __future__ import annotations

from typing import Any

from tests.security.conftest import HONEST, OBSERVER, Server, seed_honest, snapshot


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
