"""Per-agent storage quotas (issue #12): one agent cannot fill the store the team shares. Over the
real HTTP transport with tokens, on SQLite and DynamoDB Local."""

from __future__ import annotations

from typing import Any

from tests.security.conftest import HONEST, HOSTILE, Server, leaked, seed_honest, snapshot

QUOTAS = {
    "AGENT_MEMORY_RATE_LIMIT_PER_MINUTE": "0",
    "AGENT_MEMORY_QUOTA_DECISIONS": "5",
    "AGENT_MEMORY_QUOTA_NOTES": "3",
    "AGENT_MEMORY_QUOTA_SIGNALS": "2",
    "AGENT_MEMORY_QUOTA_BYTES": "200000",
}


async def test_a_flooding_agent_is_stopped_by_its_quotas_and_honest_agents_are_not(launch: Any) -> None:
    server: Server = launch(**QUOTAS)
    async with server.team() as team:
        await seed_honest(team)
        before = {name: await snapshot(team[name]) for name in HONEST}
        mallory = team[HOSTILE]
        for i in range(5):
            await mallory.ok("log_decision", decision_type="SPAM", context={"i": i})
        text, data = await mallory.failure("log_decision", decision_type="SPAM", context={"i": 5})
        assert data["code"] == "quota_exceeded" and data["retryable"] is False and "retry_after_s" not in data
        assert "decisions quota reached: you hold 5 decisions of the 5" in text
        assert "AGENT_MEMORY_QUOTA_DECISIONS" in text and "Nothing was written" in text

        for i in range(20):  # one key rewritten: one note
            await mallory.ok("store_stm", key="scratch", value={"i": i})
        await mallory.ok("store_stm", key="b", value=1)
        await mallory.ok("store_stm", key="c", value=1)
        text = await mallory.error("store_stm", key="d", value=1)
        assert text.startswith("quota_exceeded: notes quota reached: you hold 3 notes of the 3")

        for _ in range(2):
            await mallory.ok(
                "publish_signal",
                signal_type="SPAM",
                data={"x": "y" * 1000},
                target_agents=["nobody"],
                confidence=0.1,
            )
        text = await mallory.error(
            "publish_signal", signal_type="SPAM", data={}, target_agents=["nobody"], confidence=0.1
        )
        assert "signals quota reached" in text and "AGENT_MEMORY_QUOTA_SIGNALS" in text

        # Big payloads: refused by bytes once 200,000 are held (the field limit is 64 KiB).
        big = {"blob": "z" * 60_000}
        stored = 0
        while True:
            result = await mallory.client.call_tool(
                "update_state",
                {"patch": {"current": big}, "expected_version": stored, "checkpoint": f"c{stored}"},
            )
            if result.is_error:
                break
            stored += 1
            assert stored < 10, "the byte quota never refused a checkpoint"
        refused = result.structured_content
        assert refused is not None and refused["code"] == "quota_exceeded" and 2 <= stored <= 3
        assert (
            "bytes quota reached" in refused["message"] and "AGENT_MEMORY_QUOTA_BYTES" in refused["message"]
        )

        # The honest agents' memory is as it was, they still write, and nothing of theirs reached
        # mallory's answers.
        for name in HONEST:
            assert await snapshot(team[name]) == before[name]
            await team[name].ok("log_decision", decision_type="TRADE")
            await team[name].ok("store_stm", key="new", value=1)
        seen = str(await snapshot(mallory))
        assert leaked(seen, *(f"{n}-private" for n in HONEST), "private reasoning") == []
