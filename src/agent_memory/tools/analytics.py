"""The analytics tool: one report of how well an agent decides, trimmed to what was asked."""

from __future__ import annotations

from agent_memory.api import requests as rq
from agent_memory.api import results as rs
from agent_memory.memory.identity import Caller
from agent_memory.models import parse_window
from agent_memory.tools._common import AppContext


async def get_analytics(app: AppContext, caller: Caller, req: rq.GetAnalytics) -> rs.AnalyticsResult:
    report = await app.analytics.report(
        caller,
        window=parse_window(req.window),
        decision_type=req.decision_type,
        agent_id=req.agent_id,
        all_agents=req.all_agents,
    )
    data = report.model_dump(mode="json", exclude_none=True)
    if not req.include_series:
        for key in ("series", "series_by_agent", "series_by_type"):
            data.pop(key, None)
    if len(report.by_agent) <= 1:
        data.pop("by_agent", None)  # one agent's breakdown is the totals again
    return rs.AnalyticsResult.model_validate(data)
