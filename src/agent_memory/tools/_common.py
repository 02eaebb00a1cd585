"""What every tool shares: the application context, the caller's identity, and the one place where
domain errors become tool errors a model can act on."""

from __future__ import annotations

import inspect
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, ValidationError

from agent_memory.config import Settings
from agent_memory.errors import AgentMemoryError, Conflict
from agent_memory.memory.identity import Caller, Role
from agent_memory.memory.service import Memory
from agent_memory.storage import usage

log = logging.getLogger("agent_memory.tools")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

READ = ToolAnnotations(readOnlyHint=True, idempotentHint=True, destructiveHint=False, openWorldHint=False)
WRITE_IDEMPOTENT = ToolAnnotations(
    readOnlyHint=False, idempotentHint=True, destructiveHint=False, openWorldHint=False
)
WRITE = ToolAnnotations(readOnlyHint=False, idempotentHint=False, destructiveHint=False, openWorldHint=False)


@dataclass
class AppContext:
    """Long-lived objects created in the server's lifespan and shared by every tool call."""

    memory: Memory
    settings: Settings
    services: dict[str, Any] = field(default_factory=dict)
    """Optional services by name (``analytics``, ``learner``, ``ledger``, ``metrics``)."""
    http: bool = False


def app(ctx: Context[Any, Any]) -> AppContext:
    state = ctx.request_context.lifespan_context
    assert isinstance(state, AppContext)
    return state


def caller_of(ctx: Context[Any, Any]) -> Caller:
    """The calling agent: from the verified bearer token over HTTP, from the launch settings over
    stdio. Never from a tool argument."""
    state = app(ctx)
    if not state.http:
        return Caller(state.settings.agent_id, "agent")
    token = get_access_token()
    if token is None:  # the auth middleware refuses such requests before they get here
        raise ToolError("unauthenticated: send a bearer token")
    role: Role = "observer" if "observer" in token.scopes else "agent"
    return Caller(token.client_id, role)


def describe_validation(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__") or "input"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}")
    more = f" (and {len(exc.errors()) - 5} more)" if len(exc.errors()) > 5 else ""
    return "invalid input: " + "; ".join(parts) + more


def _current_json(current: Any) -> str:
    if isinstance(current, BaseModel):
        text = current.model_dump_json(exclude_none=True)
    else:
        text = json.dumps(current, default=str)
    return text if len(text) <= 4000 else text[:4000] + "...(truncated)"


async def run(ctx: Context[Any, Any], tool: str, body: Callable[[Caller], Awaitable[T]]) -> T:
    """Run a tool body for the caller: register the caller, meter storage use, map errors.

    A domain error becomes a tool error whose text says what to change; a conflict carries the
    current record. Anything unexpected is logged to stderr with a request id and reported
    without internals.
    """
    state = app(ctx)
    caller = caller_of(ctx)
    with usage.metered() as used:
        try:
            await state.memory.register(caller)
            return await body(caller)
        except ToolError:
            raise
        except Conflict as exc:
            message = f"{exc.code}: {exc.message}"
            if exc.current is not None:
                message += f"\ncurrent: {_current_json(exc.current)}"
            raise ToolError(message) from exc
        except AgentMemoryError as exc:
            raise ToolError(f"{exc.code}: {exc.message}") from exc
        except ValidationError as exc:
            raise ToolError(describe_validation(exc)) from exc
        except Exception as exc:
            request_id = uuid.uuid4().hex[:12]
            log.exception("tool %s failed (request %s)", tool, request_id)
            raise ToolError(
                f"internal error (request id {request_id}): the memory could not complete {tool}; "
                "nothing was partially written. Retry later; if it persists, report the request id."
            ) from exc
        finally:
            ledger = state.services.get("ledger")
            if ledger is not None:
                ledger.record(tool, used)


def registrar(server: MCPServer[Any], read_only: bool) -> Callable[[ToolAnnotations], Callable[[F], F]]:
    """``@tool(annotations)``: registers a tool, except write tools on a read-only server (a
    model is better served by not seeing a tool than by calling one that always refuses)."""

    def tool(annotations: ToolAnnotations) -> Callable[[F], F]:
        def wrap(fn: F) -> F:
            if read_only and not annotations.read_only_hint:
                return fn
            server.tool(annotations=annotations, description=inspect.cleandoc(fn.__doc__ or ""))(fn)
            return fn

        return wrap

    return tool
