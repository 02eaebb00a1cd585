"""Read-only resources, under the same access rules as the tools (enforced by the domain layer):
the whole records that tool results summarise, and checkpoints.

A resource the caller may not read answers "not found", like a missing one.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from pydantic import BaseModel, TypeAdapter

from agent_memory.api.compact import compact, to_text
from agent_memory.api.requests import DEFAULT_PAGE
from agent_memory.errors import AgentMemoryError
from agent_memory.tools._common import AppContext, app, caller_of

JSON = "application/json"


def _json(value: BaseModel | list[Any] | dict[str, Any]) -> str:
    if isinstance(value, BaseModel):
        data = value.model_dump(mode="json", exclude_none=True)
    else:
        data = TypeAdapter(type(value)).dump_python(value, mode="json", exclude_none=True)
    return to_text(compact(data))


async def _guard(coro: Awaitable[BaseModel | list[Any] | dict[str, Any]]) -> str:
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
        description="An agent's versioned state, whole.",
        mime_type=JSON,
    )
    async def agent_state(agent_id: str, ctx: Context[AppContext]) -> str:
        return await _guard(app(ctx).memory.get_state(caller_of(app(ctx)), agent_id))

    @server.resource(
        "memory://agents/{agent_id}/checkpoints",
        name="agent_checkpoints",
        description="An agent's state checkpoints, newest first: label, version, time.",
        mime_type=JSON,
    )
    async def agent_checkpoints(agent_id: str, ctx: Context[AppContext]) -> str:
        async def listing() -> list[dict[str, Any]]:
            page = await app(ctx).memory.list_checkpoints(caller_of(app(ctx)), agent_id, limit=50)
            return [
                {"version": c.version, "label": c.label, "created_at": c.created_at.isoformat()}
                for c in page.items
            ]

        return await _guard(listing())

    @server.resource(
        "memory://agents/{agent_id}/checkpoints/{version}",
        name="agent_checkpoint",
        description="One checkpoint: the state as it was at that version.",
        mime_type=JSON,
    )
    async def agent_checkpoint(agent_id: str, version: str, ctx: Context[AppContext]) -> str:
        if not version.isdigit():
            raise ResourceError(f"invalid_input: version must be a number (got {version[:20]!r})")
        return await _guard(app(ctx).memory.get_checkpoint(caller_of(app(ctx)), int(version), agent_id))

    @server.resource(
        "memory://agents/{agent_id}/patterns",
        name="agent_patterns",
        description="An agent's active patterns by confidence (with those shared with it), whole.",
        mime_type=JSON,
    )
    async def agent_patterns(agent_id: str, ctx: Context[AppContext]) -> str:
        caller = caller_of(app(ctx))
        return await _guard(
            app(ctx).memory.recall_patterns(
                caller, agent_id=agent_id, include_shared=agent_id == caller.agent_id, limit=50
            )
        )

    @server.resource(
        "memory://agents/{agent_id}/stm",
        name="agent_stm",
        description="An agent's short-term memory (last 24 h), as recall_stm shows it.",
        mime_type=JSON,
    )
    async def agent_stm(agent_id: str, ctx: Context[AppContext]) -> str:
        caller = caller_of(app(ctx))
        if agent_id != caller.agent_id:
            raise ResourceError(f"not_found: short-term memory of {agent_id!r} is private to it")
        return await _guard(app(ctx).memory.recall_stm(caller, limit=DEFAULT_PAGE))

    @server.resource(
        "memory://decisions/{decision_id}",
        name="decision",
        description="One decision, whole.",
        mime_type=JSON,
    )
    async def decision(decision_id: str, ctx: Context[AppContext]) -> str:
        return await _guard(app(ctx).memory.get_decision(caller_of(app(ctx)), decision_id))

    @server.resource(
        "memory://signals/{signal_id}", name="signal", description="One signal, whole.", mime_type=JSON
    )
    async def signal(signal_id: str, ctx: Context[AppContext]) -> str:
        return await _guard(app(ctx).memory.get_signal(caller_of(app(ctx)), signal_id))
