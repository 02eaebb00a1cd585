"""Rate-limit budgets for outside APIs (the plan's short-term counters)."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from pydantic import Field

from agent_memory.memory.budgets import Budgets, BudgetStatus
from agent_memory.tools._common import WRITE, app, registrar, run


def register(server: MCPServer[Any], read_only: bool) -> None:
    tool = registrar(server, read_only)

    @tool(WRITE)
    async def consume_budget(
        ctx: Context[Any, Any],
        key: Annotated[
            str, Field(description="The budget's name, e.g. 'binance/orders' (yours alone).", max_length=128)
        ],
        limit: Annotated[int, Field(ge=1, le=10**9, description="Units allowed per window.")],
        window: Annotated[
            str,
            Field(
                description="Window length: '60s', '15m', '1h', '1d' (fixed, aligned to UTC).", max_length=9
            ),
        ],
        cost: Annotated[int, Field(ge=0, le=10**9, description="Units this call takes; 0 only checks.")] = 1,
    ) -> BudgetStatus:
        """Check and take units of a rate limit you must respect towards an outside API, before
        you call it. Atomic and shared by every instance of you: if allowed, make the call; if not,
        nothing was taken: wait retry_after_s (until reset_at). Not for counting your own
        decisions (log_decision does that)."""

        async def body(caller: Any) -> BudgetStatus:
            budgets: Budgets = app(ctx).services["budgets"]
            return await budgets.consume(caller, key, limit, window, cost)

        return await run(ctx, "consume_budget", body)
