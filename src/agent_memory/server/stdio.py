"""The stdio transport, answering every line it receives.

The SDK's stdio reader drops a line it cannot parse (invalid JSON, a lone surrogate, nesting past
its parser's limit, a JSON value that is no JSON-RPC message): no answer comes, and a client waits
for ever. Here the server's stdin goes through :class:`AnsweredLines` first: a line the SDK would
drop is answered with a JSON-RPC error (``-32700`` parse error, ``-32600`` invalid request)
carrying the request's id when it can be read from the line (else ``null``, as JSON-RPC says), and
the server keeps serving. Lines the SDK can read pass on unchanged. Bytes that are not UTF-8 are a
parse error too (the SDK would replace them with U+FFFD and store the altered text). Blank lines are
skipped (nothing was asked).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any, Protocol, cast

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp_types import ErrorData, JSONRPCError, jsonrpc_message_adapter
from pydantic import ValidationError

log = logging.getLogger("agent_memory.server")

PARSE_ERROR = -32700
INVALID_REQUEST = -32600

_ID = re.compile(r'"id"\s*:\s*(-?\d{1,18}(?![\d.eE])|"(?:[^"\\]|\\.){0,256}")')
"""The first ``"id": <integer or string>`` of a line that is not JSON (a guess, used only then)."""


class _Sender(Protocol):
    async def send(self, item: SessionMessage, /) -> None: ...


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
    """The request id of a line the SDK cannot read, when it can be told."""
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
        return "it nests values too deeply for the server to read (keep JSON under 200 levels)"
    if "surrogate" in detail or "hex escape" in detail:
        return f"it is not valid JSON text ({detail}): strings must be valid Unicode (no lone surrogates)"
    return f"it is not valid JSON ({detail})"


def screen(raw: bytes) -> str | JSONRPCError:
    """The line to hand to the SDK, or the error that answers it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _error(
            PARSE_ERROR,
            f"Parse error: the line is not valid UTF-8 (byte {exc.start}): send UTF-8 text",
            recover_id(raw.decode("utf-8", "replace")),
        )
    try:
        jsonrpc_message_adapter.validate_json(text, by_name=False)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        first = errors[0] if errors else {"type": "", "msg": "unreadable", "loc": ()}
        if first["type"] == "json_invalid":
            ctx = first.get("ctx")
            detail = str(ctx.get("error", first["msg"]) if isinstance(ctx, dict) else first["msg"])
            message = f"Parse error: {_parse_problem(detail)}; send one JSON-RPC message per line"
            return _error(PARSE_ERROR, message, recover_id(text))
        where = ".".join(str(part) for part in first["loc"][1:]) or "the message"
        message = (
            f"Invalid request: not a JSON-RPC 2.0 request, notification or response ({where}: "
            f"{first['msg']}); send an object with jsonrpc '2.0', a method and an id"
        )
        return _error(INVALID_REQUEST, message, recover_id(text))
    return text


def _error(code: int, message: str, request_id: str | int | None) -> JSONRPCError:
    return JSONRPCError(jsonrpc="2.0", id=request_id, error=ErrorData(code=code, message=message))


class AnsweredLines:
    """Lines of stdin for the SDK's stdio reader; the lines it would drop are answered here."""

    def __init__(self, source: AsyncIterable[bytes]) -> None:
        self._source = source
        self._answers: _Sender | None = None
        self._ready = anyio.Event()
        self.answered = 0
        """Lines answered with an error here (the SDK never saw them)."""

    def answer_to(self, write_stream: _Sender) -> None:
        """Where the answers go: the transport's write stream (shared with the server)."""
        self._answers = write_stream
        self._ready.set()

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        async for raw in self._source:
            if not raw.strip():
                continue
            line = screen(raw)
            if isinstance(line, str):
                yield line
                continue
            await self._ready.wait()
            assert self._answers is not None
            await self._answers.send(SessionMessage(line))
            self.answered += 1
            log.warning("answered an unreadable line (%d bytes) with error %d", len(raw), line.error.code)


async def run_stdio(server: MCPServer[Any]) -> None:
    """Serve ``server`` over this process's stdin and stdout until stdin closes."""
    lines = AnsweredLines(anyio.wrap_file(sys.stdin.buffer))
    # stdin given explicitly, so the SDK claims only stdout (fd 1, diverted to stderr while
    # serving so that stray output cannot corrupt the protocol); nothing here reads fd 0 but this.
    async with stdio_server(stdin=cast(Any, lines)) as (read_stream, write_stream):
        lines.answer_to(write_stream)
        lowlevel = server._lowlevel_server  # the SDK's run_stdio_async does the same
        await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
