"""Read-only resources, under the same access rules as the tools (enforced by the domain layer):
the whole records that tool results summarise, and checkpoints.

A resource the caller may not read answers "not found", like a missing one. Every templated
resource is one line of reading (:func:`_read` resolves the caller, maps domain errors and encodes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from pydantic import BaseModel, TypeAdapter

from agent_memory.api.compact import compact, to_text
from agent_memory.api.requests import DEFAULT_PAGE
from agent_memory.errors import AgentMemoryError, NotFound
from agent_memory.memory.identity import Caller
from agent_memory.memory.service import Memory
from agent_memory.tools._common import AppContext, app, caller_of

JSON = "application/json"

Answer = BaseModel | list[Any] | dict[str, Any]

RESOURCES: dict[str, tuple[str, str]] = {
    "agents": ("memory://agents", "The agent registry."),
    "agent_state": ("memory://agents/{agent_id}/state", "An agent's versioned state, whole."),
    "agent_checkpoints": (
        "memory://agents/{agent_id}/checkpoints",
        "An agent's state checkpoints, newest first: label, version, time.",
    ),
    "agent_checkpoint": (
        "memory://agents/{agent_id}/checkpoints/{version}",
        "One checkpoint: the state as it was at that version.",
    ),
    "agent_patterns": (
        "memory://agents/{agent_id}/patterns",
        "An agent's active patterns by confidence (with those shared with it), whole.",
    ),
    "agent_stm": (
        "memory://agents/{agent_id}/stm",
        "An agent's short-term memory (last 24 h), as recall_stm shows it.",
    ),
    "decision": ("memory://decisions/{decision_id}", "One decision, whole."),
    "signal": ("memory://signals/{signal_id}", "One signal, whole."),
    # Ids are per author: these name the author when an id alone does not say whose it is.
    "agent_decision": (
        "memory://agents/{agent_id}/decisions/{decision_id}",
        "One decision of an agent (yours; any, for an observer), whole.",
    ),
    "agent_signal": (
        "memory://agents/{agent_id}/signals/{signal_id}",
        "One signal an agent published, whole.",
    ),
}
"""Name -> (URI template, description) of every resource."""


def _json(value: Answer) -> str:
    if isinstance(value, BaseModel):
        data = value.model_dump(mode="json", exclude_none=True)
    else:
        data = TypeAdapter(type(value)).dump_python(value, mode="json", exclude_none=True)
    return to_text(compact(data))


async def _read(ctx: Context[AppContext], read: Callable[[Memory, Caller], Awaitable[Answer]]) -> str:
    """``read`` for the calling agent, as compact JSON; a domain error becomes "code: message"."""
    try:
        state = app(ctx)
        return _json(await read(state.memory, caller_of(state)))
    except AgentMemoryError as exc:
        raise ResourceError(f"{exc.code}: {exc.message}") from exc


async def _checkpoints(memory: Memory, caller: Caller, agent_id: str) -> list[dict[str, Any]]:
    page = await memory.list_checkpoints(caller, agent_id, limit=50)
    return [
        {"version": c.version, "label": c.label, "created_at": c.created_at.isoformat()} for c in page.items
    ]


async def _patterns(memory: Memory, caller: Caller, agent_id: str) -> Answer:
    own = agent_id == caller.agent_id
    return await memory.recall_patterns(caller, agent_id=agent_id, include_shared=own, limit=50)


async def _stm(memory: Memory, caller: Caller, agent_id: str) -> Answer:
    if agent_id != caller.agent_id:
        raise NotFound(f"short-term memory of {agent_id!r} is private to it")
    return await memory.recall_stm(caller, limit=DEFAULT_PAGE)


def register(server: MCPServer[AppContext], running: dict[str, AppContext]) -> None:
    """``running`` holds the lifespan's AppContext once the server runs: static resources get no
    request context in the SDK, and the registry is readable by every agent anyway."""

    def resource(name: str) -> Callable[[Callable[..., Awaitable[str]]], Callable[..., Awaitable[str]]]:
        uri, description = RESOURCES[name]
        return server.resource(uri, name=name, description=description, mime_type=JSON)

    @resource("agents")
    async def agents() -> str:
        return _json(await running["app"].memory.list_agents(limit=200))

    @resource("agent_state")
    async def agent_state(agent_id: str, ctx: Context[AppContext]) -> str:
        return await _read(ctx, lambda m, c: m.get_state(c, agent_id))

    @resource("agent_checkpoints")
    async def agent_checkpoints(agent_id: str, ctx: Context[AppContext]) -> str:
        return await _read(ctx, lambda m, c: _checkpoints(m, c, agent_id))

    @resource("agent_checkpoint")
    async def agent_checkpoint(agent_id: str, version: str, ctx: Context[AppContext]) -> str:
        if not version.isdigit():
            raise ResourceError(f"invalid_input: version must be a number (got {version[:20]!r})")
        return await _read(ctx, lambda m, c: m.get_checkpoint(c, int(version), agent_id))

    @resource("agent_patterns")
    async def agent_patterns(agent_id: str, ctx: Context[AppContext]) -> str:
        return await _read(ctx, lambda m, c: _patterns(m, c, agent_id))

    @resource("agent_stm")
    async def agent_stm(agent_id: str, ctx: Context[AppContext]) -> str:
        return await _read(ctx, lambda m, c: _stm(m, c, agent_id))

    @resource("decision")
    async def decision(decision_id: str, ctx: Context[AppContext]) -> str:
        return await _read(ctx, lambda m, c: m.get_decision(c, decision_id))

    @resource("signal")
    async def signal(signal_id: str, ctx: Context[AppContext]) -> str:
        return await _read(ctx, lambda m, c: m.get_signal(c, signal_id))

    @resource("agent_decision")
    async def agent_decision(agent_id: str, decision_id: str, ctx: Context[AppContext]) -> str:
        return await _read(ctx, lambda m, c: m.get_decision(c, decision_id, agent_id))

    @resource("agent_signal")
    async def agent_signal(agent_id: str, signal_id: str, ctx: Context[AppContext]) -> str:
        return await _read(ctx, lambda m, c: m.get_signal(c, signal_id, agent_id))
