"""Versioned agent state and analytics tools."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from pydantic import Field

from agent_memory.limits import MAX_WINDOW_DAYS
from agent_memory.memory.analytics import Analytics, AnalyticsReport
from agent_memory.models import AgentState, parse_window
from agent_memory.tools._common import READ, WRITE, app, registrar, run


def register(server: MCPServer[Any], read_only: bool) -> None:
    tool = registrar(server, read_only)

    @tool(READ)
    async def get_state(ctx: Context[Any, Any]) -> AgentState:
        """Your current state (current, configuration, source_metrics, context_performance) and
        its version. Read it before update_state; version 0 means never written."""

        async def body(caller: Any) -> AgentState:
            return await app(ctx).memory.get_state(caller)

        return await run(ctx, "get_state", body)

    @tool(WRITE)
    async def update_state(
        ctx: Context[Any, Any],
        patch: Annotated[
            dict[str, Any],
            Field(
                description=(
                    "JSON merge patch over the sections current, configuration, source_metrics, "
                    'context_performance, e.g. {"current": {"cycle": 143}}; null deletes a key.'
                )
            ),
        ],
        expected_version: Annotated[
            int, Field(ge=0, description="The version you read with get_state (0 = new).")
        ],
        checkpoint: Annotated[
            str | None, Field(max_length=128, description="Also keep this version as a named checkpoint.")
        ] = None,
    ) -> AgentState:
        """Change your state if nobody changed it since you read it (optimistic concurrency).

        A stale expected_version is refused with the current state: merge your change into it
        and retry with its version.
        """

        async def body(caller: Any) -> AgentState:
            return await app(ctx).memory.update_state(caller, patch, expected_version, checkpoint)

        return await run(ctx, "update_state", body)

    @tool(READ)
    async def get_analytics(
        ctx: Context[Any, Any],
        window: Annotated[
            str, Field(description=f"'24h', '7d', '30d' (up to {MAX_WINDOW_DAYS}d).", max_length=10)
        ] = "7d",
        decision_type: Annotated[
            str | None, Field(description="Only this decision type.", max_length=64)
        ] = None,
        agent_id: Annotated[
            str | None,
            Field(description="Another agent (observer role only). Omit for yours.", max_length=64),
        ] = None,
        all_agents: Annotated[
            bool, Field(description="Every registered agent (observer role only).")
        ] = False,
        include_series: Annotated[
            bool,
            Field(description="Also the per-hour/per-day time series (large: for charts, not for reading)."),
        ] = False,
    ) -> AnalyticsReport:
        """How well you decide: success rate with its confidence interval, quality, latency
        percentiles, per decision type, the uplift from memory, best and worst patterns, signal
        flow and lag, and storage cost per tool. Computed from rollups: fast at any volume."""

        async def body(caller: Any) -> AnalyticsReport:
            analytics: Analytics = app(ctx).services["analytics"]
            report = await analytics.report(
                caller,
                window=parse_window(window),
                decision_type=decision_type,
                agent_id=agent_id,
                all_agents=all_agents,
            )
            if include_series:
                return report
            # Keep the default result small enough for a model's context.
            return report.model_copy(update={"series": [], "series_by_agent": [], "series_by_type": []})

        return await run(ctx, "get_analytics", body)
