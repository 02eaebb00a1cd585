"""Rate-limit budgets for outside APIs (the plan's short-term counters)."""

from __future__ import annotations

from agent_memory.api import requests as rq
from agent_memory.api import results as rs
from agent_memory.memory.budgets import Budgets
from agent_memory.memory.identity import Caller
from agent_memory.tools._common import AppContext


async def consume_budget(app: AppContext, caller: Caller, req: rq.ConsumeBudget) -> rs.BudgetStatus:
    memory = app.memory
    budgets = Budgets(memory.store, memory.clock, read_only=app.settings.read_only, quotas=memory.quotas)
    return await budgets.consume(caller, req.key, req.limit, req.window, req.cost)
