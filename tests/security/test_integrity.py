"""Integrity across agents (issue #12): private pattern history, co-targets of a signal, learned
pattern ids squatted by another agent, consolidation stopped by one agent's failure."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

from agent_memory.memory.learner import learned_pattern_id
from agent_memory.models import PatternCondition
from tests.security.conftest import HONEST, HOSTILE, Server, seed_honest, snapshot


async def test_pattern_history_shows_only_versions_visible_to_the_reader(server: Server) -> None:
    async with server.team() as team:
        hunter, mallory = team["market-hunter"], team[HOSTILE]
        v1 = await hunter.ok(
            "store_pattern", description="PRIVATE: our edge is the 3am liquidity gap", conditions=[],
            outcomes={"secret": "3am"}, confidence=0.8, success_rate=0.8, sample_size=50, pattern_id="edge",
        )  # fmt: skip
        await hunter.ok(
            "store_pattern", description="public version", conditions=[], outcomes={}, confidence=0.8,
            success_rate=0.8, sample_size=50, pattern_id="edge", expected_version=v1["version"],
        )  # fmt: skip
        await hunter.ok("share_pattern", pattern_id="edge", shared_with=[HOSTILE])
        seen = await mallory.ok("pattern_history", pattern_id="edge")
        assert [p["version"] for p in seen["patterns"]] == [3]
        assert "3am" not in json.dumps(seen)
        # The author still sees every version; the observer too.
        assert [
            p["version"] for p in (await hunter.ok("pattern_history", pattern_id="edge"))["patterns"]
        ] == [3, 2, 1]
        observed = await team["dashboard"].ok("pattern_history", pattern_id="edge")
        assert len(observed["patterns"]) == 3


async def test_a_target_sees_only_its_own_delivery(server: Server) -> None:
    async with server.team() as team:
        await seed_honest(team)
        hunter, risk, mallory = team["market-hunter"], team["risk-manager"], team[HOSTILE]
        published = await hunter.ok(
            "publish_signal", signal_type="WHALE", data={"n": 5}, target_agents=["risk-manager", HOSTILE],
            confidence=0.9,
        )  # fmt: skip
        signal_id = published["signal_id"]
        private = await risk.ok("log_decision", decision_type="RISK", decision_id="risk-private-decision")
        await risk.ok(
            "ack_signal", signal_id=signal_id, status="processed", decision_id="risk-private-decision"
        )
        assert private["created"]

        # mallory reads the signal and acks it: never risk-manager's status or decision.
        as_resource = await mallory.resource(f"memory://signals/{signal_id}")
        assert list(as_resource["processing_status"]) == [HOSTILE]
        assert "risk-private-decision" not in json.dumps(as_resource)
        acked = await mallory.ok("ack_signal", signal_id=signal_id, status="rejected")
        assert "risk-private-decision" not in json.dumps(acked)
        conflict = await mallory.error("ack_signal", signal_id=signal_id, status="processed")
        assert "conflict" in conflict and "risk-private-decision" not in conflict
        after = await mallory.resource(f"memory://signals/{signal_id}")
        assert list(after["processing_status"]) == [HOSTILE]

        # The publisher and the observer see every delivery.
        full = await hunter.resource(f"memory://signals/{signal_id}")
        assert set(full["processing_status"]) == {"risk-manager", HOSTILE}
        assert full["processing_status"]["risk-manager"]["decision_id"] == "risk-private-decision"
        observed = await team["dashboard"].resource(f"memory://signals/{signal_id}")
        assert set(observed["processing_status"]) == {"risk-manager", HOSTILE}


async def _outcomes(agent, n: int = 40) -> None:  # type: ignore[no-untyped-def]
    """Decisions whose success depends on the trend: a rule the learner finds."""
    for i in range(n):
        trend = "bullish" if i % 2 == 0 else "bearish"
        logged = await agent.ok("log_decision", decision_type="TRADE", context={"trend": trend, "i": i})
        await agent.ok("record_outcome", decision_id=logged["decision_id"], success=trend == "bullish")


async def test_learned_pattern_ids_cannot_be_squatted(server: Server) -> None:
    async with server.team() as team:
        hunter, mallory = team["market-hunter"], team[HOSTILE]
        await _outcomes(hunter)
        rule = [PatternCondition(field="trend", op="eq", value="bullish")]
        squat = learned_pattern_id("market-hunter", "TRADE", rule)
        message = await mallory.error(
            "store_pattern", description="squat", conditions=[c.model_dump() for c in rule], outcomes={},
            confidence=1.0, success_rate=1.0, sample_size=1, pattern_id=squat,
        )  # fmt: skip
        assert "reserved for learned patterns" in message
        learned = await hunter.ok("learn_patterns", min_samples=10)
        assert learned["created"] >= 1 and squat in learned["top_pattern_ids"]
        again = await hunter.ok("learn_patterns", min_samples=10)  # and keeps working
        assert again["created"] == 0


async def test_consolidate_goes_on_past_one_agents_failure(server: Server) -> None:
    """A hand-made pattern at a learned id, left in an old store (written before the reservation
    existed), makes its agent's learning fail; `agent-memory consolidate` reports it and still
    learns for everyone else. (Another agent's pattern at that id no longer can: ids are per
    author.)"""
    async with server.team() as team:
        await _outcomes(team["market-hunter"])
        await _outcomes(team["risk-manager"])
    rule = [PatternCondition(field="trend", op="eq", value="bullish")]
    squat = learned_pattern_id("market-hunter", "TRADE", rule)
    await _legacy_squat(server, squat, "market-hunter")
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "agent_memory.cli", "consolidate", "--window", "7d", "--min-samples", "10"],
        env=server.env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout)
    assert "market-hunter" in summary["failed"]
    assert summary["agents"]["risk-manager"]["TRADE"]["created"]  # the run went on
    async with server.agent("risk-manager") as risk:
        assert (await snapshot(risk))["patterns"]["patterns"]


async def _legacy_squat(server: Server, pattern_id: str, author: str) -> None:
    """Write a manual pattern at a learned id straight into the store, as an old version allowed."""
    from datetime import UTC, datetime

    from agent_memory.config import Settings
    from agent_memory.models import Pattern
    from agent_memory.storage.factory import open_store

    env: dict[str, Any] = {
        k.removeprefix("AGENT_MEMORY_").lower(): v
        for k, v in server.env.items()
        if k.startswith("AGENT_MEMORY_")
    }
    settings = Settings(**env)
    now = datetime.now(UTC)
    async with open_store(settings) as store:
        await store.create_pattern(
            Pattern(
                pattern_id=pattern_id, agent_id=author, description="squat", confidence=1.0, success_rate=1.0,
                sample_size=1, created_at=now, updated_at=now,
            )
        )  # fmt: skip


async def test_honest_memory_survives_every_write_mallory_can_make(server: Server) -> None:
    """A sweep of mallory's writes aimed at the honest agents' ids and keys: none lands on them."""
    async with server.team() as team:
        await seed_honest(team)
        before = {name: await snapshot(team[name]) for name in HONEST}
        mallory = team[HOSTILE]
        await mallory.ok("update_state", patch={"current": {"owner": HOSTILE}}, expected_version=0)
        for name in HONEST:
            await mallory.error("record_outcome", decision_id=f"{name}-d1", success=False)
            await mallory.error(
                "store_pattern", description="overwrite", conditions=[], outcomes={}, confidence=0.0,
                success_rate=0.0, sample_size=0, pattern_id=f"{name}-p1", expected_version=1,
            )  # fmt: skip
            await mallory.error("share_pattern", pattern_id=f"{name}-p1", shared_with=["*"])
            await mallory.ok("store_stm", key="working", value={"note": "mallory's"})
            assert "access_denied" in await mallory.error("search_decisions", agent_id=name)
        for name in HONEST:
            assert await snapshot(team[name]) == before[name]


async def test_ids_are_per_author_and_never_tell_whether_another_agent_uses_one(server: Server) -> None:
    """Mallory reuses the honest agents' decision, pattern and signal ids and probes them: every
    write lands in her own id space, every answer about an id she does not own is the answer for
    an id nobody uses, and the honest records are untouched."""
    async with server.team() as team:
        await seed_honest(team)
        hunter, risk, mallory = team["market-hunter"], team["risk-manager"], team[HOSTILE]
        sent = await hunter.ok(
            "publish_signal", signal_type="WHALE", data={"n": 5}, target_agents=["risk-manager"],
            confidence=0.9, signal_id="hunter-s1",
        )  # fmt: skip
        assert sent["created"]
        before = {name: await snapshot(team[name]) for name in HONEST}

        def same(taken: str, taken_id: str, unused: str, unused_id: str) -> None:
            assert taken.replace(taken_id, "X") == unused.replace(unused_id, "X"), (taken, unused)

        async def resource_error(uri: str) -> str:
            try:
                await mallory.client.read_resource(uri)
            except Exception as exc:  # the SDK raises the server's error for a refused read
                return str(exc)
            raise AssertionError(f"{uri} answered")

        # Probes: an honest agent's id and an id nobody uses answer alike.
        d, p, sig = "market-hunter-d1", "market-hunter-p1", "hunter-s1"
        for tool, args, taken_id, unused_id in (
            ("log_decision", {"decision_type": "T", "parent_decision_id": d}, d, "never-d1"),
            ("record_outcome", {"success": True, "decision_id": d}, d, "never-d1"),
            ("pattern_history", {"pattern_id": p}, p, "never-p1"),
            ("share_pattern", {"pattern_id": p, "shared_with": ["*"]}, p, "never-p1"),
            ("ack_signal", {"signal_id": sig, "status": "processed"}, sig, "never-s1"),
        ):
            unused_args = {k: unused_id if v == taken_id else v for k, v in args.items()}
            same(
                await mallory.error(tool, **args),
                taken_id,
                await mallory.error(tool, **unused_args),
                unused_id,
            )
        for uri, taken_id, unused_id in (
            ("memory://decisions/{}", d, "never-d1"),
            ("memory://agents/market-hunter/decisions/{}", d, "never-d1"),
            ("memory://signals/{}", sig, "never-s1"),
            ("memory://agents/market-hunter/signals/{}", sig, "never-s1"),
        ):
            same(
                await resource_error(uri.format(taken_id)), taken_id,
                await resource_error(uri.format(unused_id)), unused_id,
            )  # fmt: skip

        # Writes at the honest ids: each is mallory's own record, created, never "in use".
        for name in HONEST:
            mine = await mallory.ok("log_decision", decision_type="TRADE", decision_id=f"{name}-d1",
                                    context={"by": HOSTILE})  # fmt: skip
            assert mine["created"]
            pattern = await mallory.ok(
                "store_pattern", description="mallory's", conditions=[], outcomes={}, confidence=1.0,
                success_rate=1.0, sample_size=1, pattern_id=f"{name}-p1",
            )  # fmt: skip
            assert pattern["version"] == 1
            assert (await mallory.resource(f"memory://decisions/{name}-d1"))["context"] == {"by": HOSTILE}
        decoy = await mallory.ok(
            "publish_signal", signal_type="WHALE", data={"n": 0}, target_agents=["risk-manager"],
            confidence=1.0, signal_id="hunter-s1",
        )  # fmt: skip
        assert decoy["created"]

        # The honest agents' memory is what it was; risk-manager received two signals named
        # hunter-s1 and is asked whose it means, never handed mallory's for the hunter's.
        for name in HONEST:
            if name != "risk-manager":
                assert await snapshot(team[name]) == before[name]
        for name in HONEST:
            own = await team[name].resource(f"memory://decisions/{name}-d1")
            assert own["context"]["secret"] == f"{name}-private"
        assert "pass from_agent" in await risk.error("ack_signal", signal_id="hunter-s1", status="processed")
        acked = await risk.ok(
            "ack_signal", signal_id="hunter-s1", status="processed", from_agent="market-hunter"
        )
        assert acked["acknowledged"]
        assert (await hunter.resource("memory://signals/hunter-s1"))["processing_status"]["risk-manager"][
            "status"
        ] == "processed"
        recalled = await risk.ok("recall_patterns", include_shared=True)
        assert all(p.get("agent_id") != HOSTILE for p in recalled["patterns"])  # nothing was shared
