"""consume_budget through the MCP client, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime

from agent_memory.storage.engine import ItemEngine
from tests.server.conftest import team
from tests.support import FakeClock


async def test_budget_grants_exactly_the_limit_per_window_then_resets(engine: ItemEngine) -> None:
    clock = FakeClock(now=datetime(2026, 11, 2, 9, 0, 10, tzinfo=UTC))
    async with team(engine, clock, "trade-executor", "risk-manager") as [executor, risk]:
        granted = []
        for _ in range(4):
            status = await executor.ok("consume_budget", key="binance/orders", limit=5, window="1m", cost=2)
            granted.append((status["allowed"], status["used"], status["remaining"]))
        assert granted == [(True, 2, 3), (True, 4, 1), (False, 4, 1), (False, 4, 1)]
        assert status["reset_at"] == "2026-11-02T09:01:00Z"
        assert 49 < status["retry_after_s"] <= 50
        last = await executor.ok("consume_budget", key="binance/orders", limit=5, window="1m", cost=1)
        assert (last["allowed"], last["remaining"], last.get("retry_after_s")) == (True, 0, None)
        check = await executor.ok("consume_budget", key="binance/orders", limit=5, window="1m", cost=0)
        assert (check["allowed"], check["used"]) == (True, 5)

        # Budgets are per agent: the risk manager's budget of the same name is untouched.
        other = await risk.ok("consume_budget", key="binance/orders", limit=5, window="1m", cost=5)
        assert other["allowed"] and other["remaining"] == 0

        clock.advance(seconds=50)  # the next minute: a fresh window
        fresh = await executor.ok("consume_budget", key="binance/orders", limit=5, window="1m", cost=5)
        assert fresh["allowed"] and fresh["reset_at"] == "2026-11-02T09:02:00Z"


async def test_budget_input_errors_say_what_to_change(engine: ItemEngine, clock: FakeClock) -> None:
    async with team(engine, clock, "trade-executor") as [executor]:
        assert "use a number and a unit s, m, h or d" in await executor.error(
            "consume_budget", key="api", limit=5, window="5 minutes"
        )
        assert "at most 31d" in await executor.error("consume_budget", key="api", limit=5, window="40d")
        assert "cost must be between 0 and the limit (5)" in await executor.error(
            "consume_budget", key="api", limit=5, window="1m", cost=6
        )
        assert "invalid budget key" in await executor.error(
            "consume_budget", key="#api", limit=5, window="1m"
        )
        status = await executor.ok("consume_budget", key="api", limit=5, window="1m", cost=0)
        assert (status["allowed"], status["used"]) == (True, 0)


async def test_read_only_server_lists_no_budget_tool(engine: ItemEngine, clock: FakeClock) -> None:
    async with team(engine, clock, "dashboard", read_only=True) as [reader]:
        assert "consume_budget" not in {t.name for t in (await reader.client.list_tools()).tools}
