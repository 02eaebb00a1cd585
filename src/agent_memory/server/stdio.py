"""The stdio transport, answering every line it receives.

The SDK's stdio reader turns a line it cannot parse (invalid JSON, a lone surrogate, nesting past
its parser's limit of 200 levels, JSON that is no JSON-RPC message) into an exception on its read
stream, which the server drops: no answer comes, and the client waits for ever. Here the server
runs behind :class:`AnsweredLines`, which feeds the SDK's reader the lines of stdin and stands
between its read stream and the server: each exception there is answered with a JSON-RPC error
(``-32700`` parse error, ``-32600`` invalid request) carrying the request's id when it can be read
from the line (else ``null``, as JSON-RPC says), and the server keeps serving.

The SDK reads one line at a time and puts exactly one item (a message or an exception) on its read
stream per line, in order, so the line behind an exception is the oldest line handed over whose
item has not been seen yet; nothing is parsed twice. Bytes that are not UTF-8 are refused here
with a parse error (the SDK would replace them with U+FFFD and store the altered text). Blank
lines are skipped: nothing was asked.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any, Protocol, cast

import anyio
from anyio.streams.memory import MemoryObjectSendStream
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp_types import ErrorData, JSONRPCError
from pydantic import ValidationError

log = logging.getLogger("agent_memory.server")

PARSE_ERROR = -32700
INVALID_REQUEST = -32600

_ID = re.compile(r'"id"\s*:\s*(-?\d{1,18}(?![\d.eE])|"(?:[^"\\]|\\.){0,256}")')
"""The first ``"id": <integer or string>`` of a line that is not JSON (a guess, used only then)."""


class _Sender(Protocol):
    async def send(self, item: SessionMessage, /) -> None: ...


class _Items(Protocol):
    def __aiter__(self) -> AsyncIterator[SessionMessage | Exception]: ...


def _clean_id(value: Any) -> str | int | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate cannot be written back
            return None
    return value


def recover_id(text: str) -> str | int | None:
    """The request id of a line the SDK could not read, when it can be told."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        match = _ID.search(text)
        if match is None:
            return None
        try:
            return _clean_id(json.loads(match.group(1)))
        except ValueError:
            return None
    return _clean_id(message.get("id")) if isinstance(message, dict) else None


def _parse_problem(detail: str) -> str:
    if "recursion limit" in detail:
        return "it nests values too deeply to be read (keep JSON under 200 levels)"
    if "surrogate" in detail or "hex escape" in detail:
        return f"it is not valid JSON text ({detail}): strings must be valid Unicode (no lone surrogates)"
    return f"it is not valid JSON ({detail})"


def answer_for(line: str, exc: Exception) -> JSONRPCError:
    """The error that answers ``line``, which the SDK could not read (``exc`` says why)."""
    errors = exc.errors(include_url=False, include_input=False) if isinstance(exc, ValidationError) else []
    first = errors[0] if errors else None
    if first is None or first["type"] == "json_invalid":
        detail = str(exc)
        if first is not None:
            ctx = first.get("ctx")
            detail = str(ctx["error"]) if isinstance(ctx, dict) and "error" in ctx else first["msg"]
        message = f"Parse error: {_parse_problem(detail)}; send one JSON-RPC message per line"
        return _error(PARSE_ERROR, message, recover_id(line))
    where = ".".join(str(part) for part in first["loc"][1:]) or "the message"
    message = (
        f"Invalid request: not a JSON-RPC 2.0 request, notification or response ({where}: "
        f"{first['msg']}); send an object with jsonrpc '2.0', a method and an id"
    )
    return _error(INVALID_REQUEST, message, recover_id(line))


def _error(code: int, message: str, request_id: str | int | None) -> JSONRPCError:
    return JSONRPCError(jsonrpc="2.0", id=request_id, error=ErrorData(code=code, message=message))


class AnsweredLines:
    """stdin's lines for the SDK's stdio reader, and the answers to those it cannot read."""

    def __init__(self, source: AsyncIterable[bytes]) -> None:
        self._source = source
        self._handed: deque[str] = deque()
        """Lines given to the SDK whose item has not come out of its read stream yet."""
        self._answers: _Sender | None = None
        self._ready = anyio.Event()
        self.answered = 0
        """Lines answered with an error here."""

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        async for raw in self._source:
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                problem = f"Parse error: the line is not valid UTF-8 (byte {exc.start}): send UTF-8 text"
                await self._answer(_error(PARSE_ERROR, problem, recover_id(raw.decode("utf-8", "replace"))))
                continue
            self._handed.append(text)
            yield text

    async def _answer(self, error: JSONRPCError) -> None:
        await self._ready.wait()
        assert self._answers is not None
        await self._answers.send(SessionMessage(error))
        self.answered += 1
        log.warning("answered a line it could not read with JSON-RPC error %d", error.error.code)

    async def forward(
        self, items: _Items, server_side: MemoryObjectSendStream[SessionMessage | Exception], answers: _Sender
    ) -> None:
        """Pass the SDK's messages on to the server; answer its exceptions instead."""
        self._answers = answers
        self._ready.set()
        async with server_side:
            async for item in items:
                line = self._handed.popleft() if self._handed else ""
                if isinstance(item, Exception):
                    await self._answer(answer_for(line, item))
                else:
                    await server_side.send(item)


async def run_stdio(server: MCPServer[Any]) -> None:
    """Serve ``server`` over this process's stdin and stdout until stdin closes."""
    lines = AnsweredLines(anyio.wrap_file(sys.stdin.buffer))
    # stdin is given, so the SDK claims only stdout (fd 1, pointed at stderr while serving so that
    # stray output cannot corrupt the protocol); nothing in this process reads fd 0 but this.
    async with stdio_server(stdin=cast(Any, lines)) as (read_stream, write_stream):
        to_server, server_reads = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        async with anyio.create_task_group() as group:
            group.start_soon(lines.forward, read_stream, to_server, write_stream)
            lowlevel = server._lowlevel_server  # as the SDK's own run_stdio_async does
            async with server_reads:
                await lowlevel.run(server_reads, write_stream, lowlevel.create_initialization_options())
