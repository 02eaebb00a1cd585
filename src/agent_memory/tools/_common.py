"""What every tool shares: the application context, the caller's identity, and the one place
where a tool's arguments are validated and its result or error is put on the wire.

A tool is a :class:`~agent_memory.api.tools.ToolSpec` (name, request model, result model,
description) plus a handler ``(app, caller, request) -> result``. :func:`build_tool` turns the pair
into an SDK tool whose input schema is the request model's, that validates arguments itself (so
every argument problem is reported in our words, unknown arguments included), and that answers
compact JSON text plus the same structured content; an error answers ``"code: message"`` as text
and :class:`~agent_memory.api.results.ErrorResult` as structured content.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, ValidationError

from agent_memory.api import error_result
from agent_memory.api.compact import dump, dumped_text
from agent_memory.api.results import ErrorResult
from agent_memory.api.tools import Kind, ToolSpec
from agent_memory.api.validation import describe
from agent_memory.config import Settings
from agent_memory.deadline import deadline
from agent_memory.errors import AgentMemoryError, InvalidInput
from agent_memory.memory.analytics import Analytics
from agent_memory.memory.costs import note_error
from agent_memory.memory.identity import Caller, Role
from agent_memory.memory.learner import Learner
from agent_memory.memory.service import Memory
from agent_memory.models import Decision, Outcome

log = logging.getLogger("agent_memory.tools")

Req = TypeVar("Req", bound=BaseModel)

ANNOTATIONS: dict[Kind, ToolAnnotations] = {
    "read": ToolAnnotations(
        readOnlyHint=True, idempotentHint=True, destructiveHint=False, openWorldHint=False
    ),
    "write_idempotent": ToolAnnotations(
        readOnlyHint=False, idempotentHint=True, destructiveHint=False, openWorldHint=False
    ),
    "write": ToolAnnotations(
        readOnlyHint=False, idempotentHint=False, destructiveHint=False, openWorldHint=False
    ),
}


class DecisionEvents(Protocol):
    """Told about each new decision and outcome (CloudWatch metrics, when configured)."""

    def emit_decision(self, decision: Decision) -> None: ...

    def emit_outcome(self, agent_id: str, decision_type: str, outcome: Outcome) -> None: ...


class NoEvents:
    def emit_decision(self, decision: Decision) -> None:
        return None

    def emit_outcome(self, agent_id: str, decision_type: str, outcome: Outcome) -> None:
        return None


Meter = Callable[[str], AbstractContextManager[object]]
"""Opens a block that accounts the storage requests of one tool call (named) to its tool."""


@dataclass
class AppContext:
    """Long-lived objects created in the server's lifespan and shared by every tool call."""

    memory: Memory
    settings: Settings
    analytics: Analytics
    learner: Learner
    meter: Meter
    events: DecisionEvents
    http: bool = False

    @functools.cached_property
    def launch_caller(self) -> Caller:
        """The caller of a stdio server: the agent it was launched for (made once, not per call)."""
        return Caller(self.settings.agent_id, "agent")


def caller_of(state: AppContext) -> Caller:
    """The calling agent: from the verified bearer token over HTTP, from the launch settings over
    stdio. Never from a tool argument."""
    if not state.http:
        return state.launch_caller
    token = get_access_token()
    if token is None:  # the auth middleware refuses such requests before they get here
        raise AgentMemoryError("unauthenticated: send a bearer token")
    role: Role = "observer" if "observer" in token.scopes else "agent"
    return Caller(token.client_id, role)


def app(ctx: Context[AppContext]) -> AppContext:
    # The SDK's Context keeps the request context as a pydantic private attribute, and its
    # property reads it twice through BaseModel.__getattr__: 3 us of every call (issue #14). It is
    # read where pydantic keeps it; when it is not there (another SDK version, or outside a
    # request), through the property, which raises as before.
    private = ctx.__pydantic_private__
    request_context = private.get("_request_context") if private else None
    if request_context is None:
        request_context = ctx.request_context
    state = request_context.lifespan_context
    assert isinstance(state, AppContext)
    return state


ARGUMENT_PROBLEMS = "argument_problems"
"""Keyword under which a step before the tool (the strict schema profile's decoding) hands over
problems it found in the arguments, as a description; the tool refuses the call with them."""


class _RawArguments(ArgModelBase):
    """Lets every argument through the SDK untouched: the tool validates them itself."""

    model_config = ConfigDict(extra="allow")

    def model_dump_one_level(self) -> dict[str, Any]:
        return {"arguments": dict(self.__pydantic_extra__ or {})}


def success(result: BaseModel) -> CallToolResult:
    data = dump(result)
    return CallToolResult(content=[TextContent(type="text", text=dumped_text(data))], structured_content=data)


def failure(error: ErrorResult) -> CallToolResult:
    note_error(error.code)
    data = dump(error)
    return CallToolResult(
        content=[TextContent(type="text", text=f"{error.code}: {error.message}")],
        structured_content=data,
        is_error=True,
    )


def validate(spec: ToolSpec, arguments: dict[str, Any]) -> BaseModel:
    """The request model for ``arguments``, or :class:`InvalidInput` saying what to change."""
    try:
        return spec.request.model_validate(arguments)
    except ValidationError as exc:
        raise InvalidInput(describe(exc, spec.request)) from None


Handler = Callable[[AppContext, Caller, Req], Awaitable[BaseModel]]


async def run(
    state: AppContext,
    spec: ToolSpec,
    handler: Handler[Any],
    arguments: dict[str, Any],
    problems: str | None = None,
) -> CallToolResult:
    """Run one call: resolve and register the caller, validate, meter, map errors to data.

    Anything unexpected is logged to stderr with a request id and reported without internals.
    """
    caller: Caller | None = None
    with state.meter(spec.name), deadline(state.settings.call_timeout_seconds):
        try:
            caller = caller_of(state)
            if problems:
                raise InvalidInput(problems)
            request = validate(spec, arguments)
            await state.memory.register(caller)
            return success(await handler(state, caller, request))
        except AgentMemoryError as exc:
            return failure(error_result(exc, caller.agent_id if caller else None))
        except ValidationError as exc:  # a record refused what the request model let through
            return failure(error_result(InvalidInput(describe(exc)), caller.agent_id if caller else None))
        except Exception:
            request_id = uuid.uuid4().hex[:12]
            log.exception("tool %s failed (request %s)", spec.name, request_id)
            return failure(
                ErrorResult(
                    code="internal_error",
                    message=f"request id {request_id}: the memory could not complete {spec.name}; "
                    "nothing was partially written. Retry later; if it persists, report the request id.",
                    retryable=True,
                )
            )


def build_tool(spec: ToolSpec, handler: Handler[Any]) -> Tool:
    """The SDK tool for ``spec``: its schemas from the api models, its body :func:`run`."""

    async def call(
        ctx: Context[AppContext], arguments: dict[str, Any], argument_problems: str | None = None
    ) -> CallToolResult:
        return await run(app(ctx), spec, handler, arguments, argument_problems)

    return Tool(
        fn=call,
        name=spec.name,
        description=spec.description,
        parameters=spec.request.model_json_schema(),
        fn_metadata=FuncMetadata(arg_model=_RawArguments, output_schema=spec.result.model_json_schema()),
        is_async=True,
        context_kwarg="ctx",
        annotations=ANNOTATIONS[spec.kind],
    )
