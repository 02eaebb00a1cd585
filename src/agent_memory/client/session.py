"""The client's plumbing: one MCP session, argument checks, timeouts, retries, errors as data."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TextIO, TypeVar

import anyio
from pydantic import BaseModel, ValidationError

from agent_memory.api import TOOLS, to_exception
from agent_memory.api import results as rs
from agent_memory.api.validation import describe
from agent_memory.errors import AgentMemoryError

if TYPE_CHECKING:
    from mcp import Client

M = TypeVar("M", bound=BaseModel)

DEFAULT_TIMEOUT_S = 30.0
"""Longest a call may take before the client gives up on it (``MemoryClient(timeout_s=...)``)."""

DEFAULT_RETRIES = 1
"""How many times a call that is safe to repeat is sent again after no answer or a transient
error (``MemoryClient(retries=...)``)."""

MAX_RETRY_WAIT_S = 5.0
"""Longest the client waits before a retry (the server's ``retry_after_s``, capped)."""

TRANSIENT = frozenset({"timeout", "conflict", "throttled", "storage_busy", "storage_unreachable"})
"""Error codes after which the same call, sent again, may succeed. Not ``version_conflict`` (the
caller must read the current version first) nor ``rate_limited`` (retrying spends the budget)."""


class MemoryToolError(Exception):
    """A tool call that did not succeed. Every error the client raises is one of these and also an
    instance of the :mod:`agent_memory.errors` class its ``code`` names (``except VersionConflict``
    works), with ``tool``, ``code``, ``message``, ``retryable``, ``retry_after_s`` and ``current``
    (a conflict's record as it is now, as the server summarised it, or ``None``)."""

    tool: str
    code: str
    message: str
    retryable: bool
    retry_after_s: float | None
    current: dict[str, Any] | None


class MemoryTimeout(AgentMemoryError):
    """The server did not answer within the client's timeout (the call may still have happened:
    retry with the same ids, which is safe)."""

    code = "timeout"
    retryable = True


def client_error(tool: str, code: str, message: str, *, retryable: bool = False) -> AgentMemoryError:
    """The error the client raises for ``code`` (also a :class:`MemoryToolError`)."""
    return tool_error(tool, rs.ErrorResult(code=code, message=message, retryable=retryable))


def tool_error(tool: str, error: rs.ErrorResult) -> AgentMemoryError:
    exc = to_exception(error, MemoryToolError, tool=tool)
    exc.args = (f"{tool}: {error.code}: {error.message}",)
    return exc


def _server_log(errlog: TextIO | None, files: contextlib.ExitStack) -> TextIO:
    """Where the server's stderr goes: ``errlog``, else this process's stderr. The subprocess
    needs a real file descriptor, which a replaced ``sys.stderr`` (pytest's capsys, a notebook)
    may lack: then the original stderr, or nowhere."""
    for candidate in (errlog, sys.stderr, sys.__stderr__):
        if candidate is None:
            continue
        try:
            candidate.fileno()
        except (OSError, ValueError):
            if candidate is errlog:
                raise ValueError(
                    "errlog must be a file with a file descriptor (the server writes to it)"
                ) from None
            continue
        return candidate
    return files.enter_context(open(os.devnull, "w", encoding="utf-8"))


def default_server_command() -> list[str]:
    """``agent-memory serve`` run by this interpreter (works without the console script on PATH)."""
    return [sys.executable, "-m", "agent_memory.cli", "serve"]


def _utf8_clean(value: Any, tool: str, where: str) -> None:
    """Refuse text that cannot travel as UTF-8 (a lone surrogate), as the server would."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise client_error(
            tool,
            "invalid_input",
            f"{where}: text contains a lone surrogate (not valid Unicode): send valid text",
        ) from None


def retry_safe(tool: str, arguments: Mapping[str, Any]) -> bool:
    """Whether sending ``tool`` again with the same ``arguments`` cannot apply it twice: reads,
    writes idempotent by design or by the ids the client made, and ``update_state`` named by a
    ``request_id``."""
    spec = TOOLS.get(tool)
    if spec is None:
        return False
    return spec.kind in ("read", "write_idempotent") or (tool == "update_state" and "request_id" in arguments)


class Session:
    """One MCP client session acting as one agent: validation, timeout and retries of each call."""

    def __init__(
        self,
        client: Client,
        agent_id: str | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        if timeout_s <= 0 or retries < 0:
            raise ValueError("timeout_s must be positive and retries at least 0")
        self.client = client
        """The underlying ``mcp.Client`` (for resources, prompts, or tools added later)."""
        self.agent_id = agent_id
        """The agent this session acts as, when known (stdio); the server decides it."""
        self.timeout_s = timeout_s
        """How long each attempt of a call may take."""
        self.retries = retries
        """How many more times a call safe to repeat is sent after no answer or a transient error
        (with the same arguments, so with the same ids)."""

    @classmethod
    def from_client(
        cls,
        client: Client,
        agent_id: str | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
    ) -> Self:
        """Wrap an ``mcp.Client`` that is already connected (entered)."""
        return cls(client, agent_id, timeout_s=timeout_s, retries=retries)

    @classmethod
    @asynccontextmanager
    async def stdio(
        cls,
        agent_id: str,
        *,
        sqlite_path: Path | None = None,
        env: Mapping[str, str] | None = None,
        command: Sequence[str] | None = None,
        errlog: TextIO | None = None,
        cwd: Path | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
    ) -> AsyncIterator[Self]:
        """Launch ``agent-memory serve`` acting as ``agent_id`` and connect to it over stdio.

        ``sqlite_path`` selects the embedded store file (several servers may share one); ``env``
        adds ``AGENT_MEMORY_*`` (or AWS) variables to the server's environment, which otherwise
        inherits only the MCP SDK's safe defaults (HOME, PATH, ...). ``command`` replaces the
        default ``python -m agent_memory.cli serve`` (e.g. ``["agent-memory", "serve"]``).
        The server's log lines (stderr) go to ``errlog`` (default: this process's stderr).
        The server stops when the block exits.
        """
        from mcp import Client, StdioServerParameters
        from mcp.client.stdio import stdio_client

        argv = list(command) if command is not None else default_server_command()
        if not argv:
            raise ValueError("command must name a program to run")
        server_env = dict(env or {})
        server_env["AGENT_MEMORY_AGENT_ID"] = agent_id
        if sqlite_path is not None:
            server_env["AGENT_MEMORY_SQLITE_PATH"] = str(sqlite_path)
        if command is None and "PYTHONPATH" in os.environ:
            # The default command runs this interpreter: give it this process's import path too
            # (the SDK passes only a few safe variables on to the server).
            server_env.setdefault("PYTHONPATH", os.environ["PYTHONPATH"])
        params = StdioServerParameters(command=argv[0], args=argv[1:], env=server_env, cwd=cwd)
        with contextlib.ExitStack() as files:
            transport = stdio_client(params, errlog=_server_log(errlog, files))
            async with Client(transport) as client:
                yield cls(client, agent_id, timeout_s=timeout_s, retries=retries)

    def check(self, tool: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON arguments for ``tool``, validated by its request model as the server would;
        raises ``InvalidInput`` (a :class:`MemoryToolError`) saying what to change."""
        spec = TOOLS[tool]
        args = {k: v for k, v in arguments.items() if v is not None}
        try:
            request = spec.request.model_validate(args)
        except ValidationError as exc:
            raise client_error(tool, "invalid_input", describe(exc, spec.request)) from None
        data = request.model_dump(mode="json", include=set(args))
        for name, value in data.items():
            _utf8_clean(value, tool, f"{tool}.{name}")
        return data

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        """Call any tool; return its structured result. ``None`` arguments are omitted; the
        arguments of a known tool are validated before they are sent. A call that is safe to
        repeat (:func:`retry_safe`) is sent again, up to ``retries`` times, after no answer
        within ``timeout_s`` or a transient error, waiting what the server advised (capped)."""
        args = (
            self.check(tool, arguments)
            if tool in TOOLS
            else {k: v for k, v in arguments.items() if v is not None}
        )
        attempts = 1 + (self.retries if retry_safe(tool, args) else 0)
        for attempt in range(1, attempts + 1):
            try:
                return await self._send(tool, args)
            except AgentMemoryError as exc:
                if attempt == attempts or exc.code not in TRANSIENT:
                    raise
                await anyio.sleep(min(exc.retry_after_s or 0.0, MAX_RETRY_WAIT_S))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        try:
            with anyio.fail_after(self.timeout_s):
                result = await self.client.call_tool(tool, args)
        except TimeoutError:
            raise client_error(
                tool,
                MemoryTimeout.code,
                f"no answer within {self.timeout_s:g} s; retrying with the same ids is safe",
                retryable=True,
            ) from None
        data = result.structured_content
        if result.is_error:
            text = next((block.text for block in result.content if block.type == "text"), "")
            try:
                error = rs.ErrorResult.model_validate(data)
            except ValidationError:  # an error raised by the SDK itself (an unknown tool, ...)
                error = rs.ErrorResult(code="error", message=text or "the tool failed", retryable=False)
            raise tool_error(tool, error)
        if data is None:
            raise client_error(tool, "error", "the result carried no structured content")
        return dict(data)

    async def _call(self, model: type[M], tool: str, **arguments: Any) -> M:
        return model.model_validate(await self.call(tool, **arguments))

    async def _resource(self, uri: str) -> Any:
        from mcp.shared.exceptions import MCPError

        try:
            with anyio.fail_after(self.timeout_s):
                result = await self.client.read_resource(uri)
        except TimeoutError:
            raise client_error(
                uri, MemoryTimeout.code, f"no answer within {self.timeout_s:g} s", retryable=True
            ) from None
        except MCPError as exc:
            code, _, message = str(exc.error.message).partition(": ")
            raise tool_error(
                uri,
                rs.ErrorResult(code=code if message else "error", message=message or code, retryable=False),
            ) from None
        text = next((c.text for c in result.contents if hasattr(c, "text")), "null")
        return json.loads(text)
