"""Read-only resources, under the same access rules as the tools (enforced by the domain layer).

A resource the caller may not read answers "not found", like a missing one.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from pydantic import BaseModel

from agent_memory.errors import AgentMemoryError
from agent_memory.tools._common import AppContext, app, caller_of

JSON = "application/json"


def _json(model: BaseModel | list[Any] | dict[str, Any]) -> str:
    if isinstance(model, BaseModel):
        return model.model_dump_json(indent=2)
    from pydantic import TypeAdapter

    return TypeAdapter(type(model)).dump_json(model, indent=2).decode()


async def _guard(coro: Any) -> str:
    try:
        return _json(await coro)
    except AgentMemoryError as exc:
        raise ResourceError(f"{exc.code}: {exc.message}") from exc


def register(server: MCPServer[AppContext], running: dict[str, AppContext]) -> None:
    """``running`` holds the lifespan's AppContext once the server runs: static resources get no
    request context in the SDK, and the registry is readable by every agent anyway."""

    @server.resource("memory://agents", name="agents", description="The agent registry.", mime_type=JSON)
    async def agents() -> str:
        page = await running["app"].memory.list_agents(limit=200)
        return _json(page)

    @server.resource(
        "memory://agents/{agent_id}/state",
        name="agent_state",
        description="An agent's versioned state.",
        mime_type=JSON,
    )
    async def agent_state(agent_id: str, ctx: Context[Any, Any]) -> str:
        return await _guard(app(ctx).memory.get_state(caller_of(ctx), agent_id))

    @server.resource(
        "memory://agents/{agent_id}/patterns",
        name="agent_patterns",
        description="An agent's active patterns by confidence (with those shared with it).",
        mime_type=JSON,
    )
    async def agent_patterns(agent_id: str, ctx: Context[Any, Any]) -> str:
        caller = caller_of(ctx)
        return await _guard(
            app(ctx).memory.recall_patterns(
                caller, agent_id=agent_id, include_shared=agent_id == caller.agent_id, limit=50
            )
        )

    @server.resource(
        "memory://agents/{agent_id}/stm",
        name="agent_stm",
        description="An agent's short-term memory (last 24 h).",
        mime_type=JSON,
    )
    async def agent_stm(agent_id: str, ctx: Context[Any, Any]) -> str:
        caller = caller_of(ctx)
        if agent_id != caller.agent_id:
            raise ResourceError(f"not_found: short-term memory of {agent_id!r} is private to it")
        stm = await app(ctx).memory.recall_stm(caller, limit=50)
        return _json(
            {
                "window_hours": stm.window_hours,
                "decisions": [d.model_dump(mode="json") for d in stm.decisions.items],
                "notes": [n.model_dump(mode="json") for n in stm.notes],
                "pending_signals": stm.pending_signals,
            }
        )

    @server.resource(
        "memory://decisions/{decision_id}", name="decision", description="One decision.", mime_type=JSON
    )
    async def decision(decision_id: str, ctx: Context[Any, Any]) -> str:
        return await _guard(app(ctx).memory.get_decision(caller_of(ctx), decision_id))

    @server.resource("memory://signals/{signal_id}", name="signal", description="One signal.", mime_type=JSON)
    async def signal(signal_id: str, ctx: Context[Any, Any]) -> str:
        return await _guard(app(ctx).memory.get_signal(caller_of(ctx), signal_id))
