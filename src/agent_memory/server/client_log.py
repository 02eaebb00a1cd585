"""The MCP logging capability, and progress for long tools: ``logging/setLevel`` is honoured, and
what the server logs while it answers a request (``agent_memory.*`` loggers) is also sent to that
request's client as ``notifications/message`` at or above the level the client chose.

Kept apart from the server wiring on purpose: :func:`enable` is the only hook.

- Default level: ``warning`` (a client that never calls ``logging/setLevel`` hears warnings and
  errors, e.g. a tool that failed with an internal error and its request id).
- Clients of the 2026 protocol (no ``logging/setLevel``) put the level on each request's
  ``_meta``; that level is used for that request.
- The level set with ``logging/setLevel`` is per server process. A stdio server has one client,
  so that is per client; over stateless HTTP there is no session to hang it on, so clients of
  the protocol versions that have ``logging/setLevel`` share the level the last one set.
- Progress: the request's progress reporter is made available to the learner
  (``learner.REQUEST_PROGRESS``), so ``learn_patterns`` reports per decision type when the client
  sent a progress token.
- Records are buffered during the request and sent just before its response, on the request's
  own stream, so nothing arrives after the answer.
"""

from __future__ import annotations

import logging
import warnings
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from mcp import types
from mcp.server.connection import allowed_log_levels
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPDeprecationWarning

from agent_memory.memory.learner import REQUEST_PROGRESS

LoggingLevel = Literal["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]
LEVELS: tuple[LoggingLevel, ...] = get_args(LoggingLevel)
DEFAULT_LEVEL: LoggingLevel = "warning"
MAX_RECORDS_PER_REQUEST = 50
"""A request that logs more sends the first ones only (a client's log view is not a firehose)."""

_PYTHON_LEVEL: dict[LoggingLevel, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": logging.INFO + 5,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "alert": logging.CRITICAL + 5,
    "emergency": logging.CRITICAL + 10,
}


def _mcp_level(levelno: int) -> LoggingLevel:
    chosen: LoggingLevel = "debug"
    for level in LEVELS:
        if levelno >= _PYTHON_LEVEL[level]:
            chosen = level
    return chosen


@dataclass
class _Request:
    threshold: int
    records: list[tuple[LoggingLevel, str, str]] = field(default_factory=list)


_current: ContextVar[_Request | None] = ContextVar("agent_memory_client_log", default=None)


class _ToClient(logging.Handler):
    """Collects the records of the request being answered (found through a context variable)."""

    def emit(self, record: logging.LogRecord) -> None:
        request = _current.get()
        if request is None or record.levelno < request.threshold:
            return
        if len(request.records) < MAX_RECORDS_PER_REQUEST:
            request.records.append((_mcp_level(record.levelno), record.name, record.getMessage()))


_HANDLER = _ToClient(level=logging.DEBUG)


@dataclass
class ClientLog:
    """The level a client chose, and the middleware that forwards log records to it."""

    level: LoggingLevel = DEFAULT_LEVEL

    async def set_level(
        self, ctx: ServerRequestContext[Any, Any], params: types.SetLevelRequestParams
    ) -> Any:
        self.level = params.level
        return types.EmptyResult()

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.request_id is None:  # a notification: nothing to answer, nothing to log to
            return await call_next(ctx)

        async def progress(done: int, total: int, label: str) -> None:
            # A no-op unless the client sent a progress token with this request.
            await ctx.session.report_progress(done, total, f"learned {label} ({done}/{total} decision types)")

        progress_token = REQUEST_PROGRESS.set(progress)
        try:
            return await self._logged(ctx, call_next)
        finally:
            REQUEST_PROGRESS.reset(progress_token)

    async def _logged(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        # Handshake-era clients: the level set with logging/setLevel. 2026 clients: the level the
        # request itself carries in _meta (none: nothing may be sent).
        allowed = allowed_log_levels(ctx.protocol_version, ctx.meta)
        if allowed == frozenset(LEVELS):
            threshold = _PYTHON_LEVEL[self.level]
        elif allowed:
            threshold = min(_PYTHON_LEVEL[level] for level in allowed)
        else:
            return await call_next(ctx)
        request = _Request(threshold=threshold)
        token = _current.set(request)
        try:
            return await call_next(ctx)
        finally:
            _current.reset(token)
            for level, name, message in request.records:
                try:
                    await ctx.session.send_log_message(level, message, logger=name)
                except Exception:  # the client went away: its answer cannot be sent either
                    break


def enable(server: MCPServer[Any]) -> ClientLog:
    """Give ``server`` the logging capability (and forward ``agent_memory`` logs to clients)."""
    state = ClientLog()
    server._lowlevel_server.add_request_handler(
        "logging/setLevel", types.SetLevelRequestParams, state.set_level
    )
    server._lowlevel_server.middleware.append(state)
    # The SDK marks the capability deprecated for the 2026 protocol and warns on every use; we
    # offer it on purpose (clients of earlier versions expect it): that warning is not for users.
    warnings.filterwarnings(
        "ignore", message="The logging capability is deprecated", category=MCPDeprecationWarning
    )
    root = logging.getLogger("agent_memory")
    if _HANDLER not in root.handlers:
        root.addHandler(_HANDLER)
    if root.level == logging.NOTSET:
        # Let every record of ours reach this handler; what reaches stderr is the stderr handler's
        # own level (the CLI sets it from -v).
        root.setLevel(logging.DEBUG)
    return state
