"""Sharing that cannot be flooded, and evidence over claims (issue #12: 1,000 patterns shared with a
made-up agent hid every pattern shared with the reader; a self-declared confidence of 1.0 over
10^12 samples ranked first for every reader; other agents' failures retired the author's pattern)."""

from __future__ import annotations

from typing import Any

from agent_memory.limits import MAX_SHARED_PATTERNS
from tests.security.conftest import (
    HONEST,
    HOSTILE,
    Server,
    assert_unharmed,
    honest_snapshots,
    snapshot,
)

NO_RATE_LIMIT = {"AGENT_MEMORY_RATE_LIMIT_PER_MINUTE": "0"}


def _pattern(**overrides: Any) -> dict[str, Any]:
    return {
        "description": "rule",
        "conditions": [],
        "outcomes": {},
        "confidence": 0.6,
        "success_rate": 0.6,
        "sample_size": 30,
        **overrides,
    }


async def test_a_sharing_flood_neither_hides_what_is_shared_with_you_nor_outranks_it(launch: Any) -> None:
    server: Server = launch(**NO_RATE_LIMIT)
    async with server.team() as team:
        hunter, risk, mallory = team["market-hunter"], team["risk-manager"], team[HOSTILE]
        honest = await hunter.ok(
            "store_pattern", **_pattern(description="hunter's rule for risk"), shared_with=["risk-manager"]
        )
        before = await honest_snapshots(team)
        # mallory fills her whole quota: shared with made-up agents, and with everyone, each
        # claiming perfect confidence over a trillion samples.
        for i in range(MAX_SHARED_PATTERNS):
            target = ["*"] if i % 4 == 0 else [f"made-up-{i}"]
            await mallory.ok(
                "store_pattern",
                **_pattern(description=f"flood {i}", confidence=1.0, success_rate=1.0, sample_size=10**12),
                shared_with=target,
            )
        over = await mallory.error("store_pattern", **_pattern(description="one more"), shared_with=["*"])
        assert "limit_exceeded" in over and f"share {MAX_SHARED_PATTERNS} patterns" in over
        private = await mallory.ok("store_pattern", **_pattern(description="private is fine"))
        assert private["pattern_id"] and not private.get("shared_with")

        # risk-manager still sees hunter's pattern, first: mallory's figures are claims.
        recalled = await risk.ok("recall_patterns", limit=5)
        ids = [p["pattern_id"] for p in recalled["patterns"]]
        assert ids[0] == honest["pattern_id"]
        for p in recalled["patterns"]:
            assert p["evidence"]["basis"] == "applications" and p["evidence"]["measured_confidence"] == 0.0
        # Claims do not pass min_confidence; nothing shared with made-up agents is ever read.
        assert (await risk.ok("recall_patterns", min_confidence=0.5, limit=50))["patterns"] == []
        # The honest agents' own memory is untouched; what hunter shares with risk alone and the
        # private records stay out of mallory's view.
        seen = await mallory.ok("recall_patterns", limit=50)
        assert honest["pattern_id"] not in str(seen) and "hunter's rule for risk" not in str(seen)
        await assert_unharmed(team, before, seen, over)


async def test_evidence_ranks_shared_patterns_and_outsiders_cannot_retire_them(launch: Any) -> None:
    server: Server = launch(**NO_RATE_LIMIT)
    async with server.team() as team:
        hunter, risk, mallory = team["market-hunter"], team["risk-manager"], team[HOSTILE]
        # The hunter learns a rule from its own outcomes and shares it with everyone.
        for i in range(40):
            trend = "bullish" if i % 2 == 0 else "bearish"
            logged = await hunter.ok("log_decision", decision_type="TRADE", context={"trend": trend})
            await hunter.ok("record_outcome", decision_id=logged["decision_id"], success=trend == "bullish")
        learned = await hunter.ok("learn_patterns", min_samples=10)
        own = (await hunter.ok("recall_patterns", include_shared=False, limit=50))["patterns"]
        rule = next(
            p
            for p in own
            if p["pattern_id"] in learned["top_pattern_ids"]
            and "bullish" in p["when"]
            and "AND" not in p["when"]
        )
        shared = await hunter.ok("share_pattern", pattern_id=rule["pattern_id"], shared_with=["*"])
        claim = await mallory.ok(
            "store_pattern", **_pattern(description="trust me", confidence=1.0, sample_size=10**12),
            shared_with=["*"],
        )  # fmt: skip
        before = {name: await snapshot(team[name]) for name in HONEST}

        recalled = (await risk.ok("recall_patterns", limit=5))["patterns"]
        assert [p["pattern_id"] for p in recalled] == [rule["pattern_id"], claim["pattern_id"]]
        assert recalled[0]["evidence"] == {"measured_confidence": rule["confidence"], "basis": "learned"}

        # mallory cites the hunter's pattern and reports 30 failures.
        for _ in range(30):
            logged = await mallory.ok(
                "log_decision", decision_type="TRADE", patterns_applied=[rule["pattern_id"]]
            )
            await mallory.ok("record_outcome", decision_id=logged["decision_id"], success=False)
        await hunter.ok("learn_patterns", min_samples=10)
        mine = (await hunter.ok("recall_patterns", include_shared=False, limit=50))["patterns"]
        after = next(p for p in mine if p["pattern_id"] == rule["pattern_id"])
        assert after.get("status", "active") == "active" and after["version"] == shared["version"]
        # The reports are kept, apart from the author's own evidence, for everyone to see.
        assert after["feedback"]["applied_count"] == 30 and after["feedback"]["author_applied_count"] == 0
        seen = (await risk.ok("recall_patterns", limit=5))["patterns"]
        assert seen[0]["pattern_id"] == rule["pattern_id"]
        assert seen[0]["feedback"]["applied_count"] == 30
        # Apart from those reports (evidence, by design), the honest agents' memory is as it was.
        for name in HONEST:
            now = await snapshot(team[name])
            for p in [*now["patterns"]["patterns"], *before[name]["patterns"]["patterns"]]:
                p.pop("feedback", None)
                p.pop("applied_success_rate", None)
            assert now == before[name], name


async def test_the_author_s_own_failures_still_retire_its_pattern(launch: Any) -> None:
    server: Server = launch(**NO_RATE_LIMIT)
    async with server.team() as team:
        hunter = team["market-hunter"]
        stated = await hunter.ok("store_pattern", **_pattern(description="hunter's hunch", confidence=0.9))
        for _ in range(25):
            logged = await hunter.ok(
                "log_decision", decision_type="TRADE", patterns_applied=[stated["pattern_id"]]
            )
            await hunter.ok("record_outcome", decision_id=logged["decision_id"], success=False)
        await hunter.ok("learn_patterns", min_samples=20)
        now = (await hunter.ok("pattern_history", pattern_id=stated["pattern_id"], limit=1))["patterns"][0]
        assert now["status"] == "decayed"
