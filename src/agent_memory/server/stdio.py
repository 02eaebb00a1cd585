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

Where the bytes move is chosen by the type of each standard stream, not as a fallback on error.
stdin and stdout that are pipes or sockets (what an MCP client gives a server it launches) are read
and written on the event loop (:class:`_PipeLines`, :class:`_PipeOut`): no worker thread per line
read, per message written and per flush, which the SDK's own transport pays. A regular file (a file
of requests redirected to stdin) or a device (a terminal, ``/dev/null``) keeps the SDK's thread
path: the event loop cannot wait on a file or on ``/dev/null``, and putting a terminal shared with
a shell into non-blocking mode would leak into that shell. Either way, the SDK's reader parses each
line and its writer encodes each message once, with the same UTF-8, one JSON per line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import stat
import sys
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import AsyncExitStack, suppress
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


READ_CHUNK = 256 * 1024
"""Bytes asked of stdin per read on the event loop; a line may span any number of reads."""


def on_the_loop(fd: int) -> bool:
    """Whether ``fd`` is served on the event loop: a pipe or a socket, which the loop can wait on.

    Not a device: a terminal is shared with a shell (non-blocking mode would leak into it), and
    the loop's poller refuses others (``/dev/null``)."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


class _Blocking:
    """Puts a descriptor's blocking mode back as it was when the transport is done with it."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._was = os.get_blocking(fd)

    def restore(self) -> None:
        with suppress(OSError):  # already closed: nothing shares it any more
            os.set_blocking(self._fd, self._was)


class _PipeLines:
    """The lines of stdin, read on the event loop (any length: no line limit, as in the SDK)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[bytes]:
        pending = bytearray()
        while True:
            chunk = await self._reader.read(READ_CHUNK)
            if not chunk:
                break
            start = 0
            end = chunk.find(b"\n")
            if end < 0:
                pending += chunk
                continue
            if pending:
                pending += chunk[: end + 1]
                yield bytes(pending)
                pending.clear()
                start = end + 1
                end = chunk.find(b"\n", start)
            while end >= 0:
                yield chunk[start : end + 1]
                start = end + 1
                end = chunk.find(b"\n", start)
            pending += chunk[start:]
        if pending:  # the last line, without its newline
            yield bytes(pending)


class _Drain(asyncio.Protocol):
    """Flow control of stdout's write pipe: writes wait while the client is not reading."""

    def __init__(self) -> None:
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self.lost: BaseException | None = None
        self.closed = asyncio.Event()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc if exc is not None else BrokenPipeError("stdout was closed")
        self._wake()
        self.closed.set()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        self._waiter = None

    async def drain(self) -> None:
        while self._paused and self.lost is None:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        if self.lost is not None:
            raise self.lost


class _PipeOut:
    """stdout for the SDK's writer (``write`` then ``flush`` per message), on the event loop."""

    def __init__(self, transport: asyncio.WriteTransport, flow: _Drain) -> None:
        self._transport = transport
        self._flow = flow

    async def write(self, text: str) -> None:
        if self._flow.lost is not None:
            raise self._flow.lost
        self._transport.write(text.encode("utf-8"))

    async def flush(self) -> None:
        await self._flow.drain()


CLOSE_GRACE_SECONDS = 5.0
"""How long the last answers may take to reach a client at exit before the process stops anyway."""


async def _close_output(transport: asyncio.WriteTransport, flow: _Drain) -> None:
    """Close stdout once what is buffered is written (the client gets every answer sent)."""
    transport.close()
    with anyio.move_on_after(CLOSE_GRACE_SECONDS, shield=True):
        await flow.closed.wait()


def _divert_stdout() -> tuple[int, int]:
    """Serve the wire from a private duplicate of fd 1 and point fd 1 at stderr while serving,
    as the SDK does when it claims stdout, so that stray output cannot corrupt the protocol."""
    private = os.dup(1)
    saved = os.dup(1)
    os.dup2(2, 1)
    return private, saved


async def _loop_streams(stack: AsyncExitStack) -> tuple[AsyncIterable[bytes] | None, _PipeOut | None]:
    """stdin's lines and stdout for those of the two that are served on the event loop."""
    loop = asyncio.get_running_loop()
    source: AsyncIterable[bytes] | None = None
    out: _PipeOut | None = None
    if on_the_loop(0):
        blocking = _Blocking(0)
        stack.callback(blocking.restore)
        reader = asyncio.StreamReader(limit=READ_CHUNK, loop=loop)
        read_end = os.fdopen(os.dup(0), "rb", buffering=0)
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), read_end)
        stack.callback(transport.close)
        source = _PipeLines(reader)
    if on_the_loop(1):
        sys.stdout.flush()
        private, saved = _divert_stdout()

        was_blocking = os.get_blocking(saved)

        def put_back() -> None:  # saved shares the wire's open file: its mode is the wire's
            os.set_blocking(saved, was_blocking)
            os.dup2(saved, 1)
            os.close(saved)

        stack.callback(put_back)
        flow = _Drain()
        write_end = os.fdopen(private, "wb", buffering=0)
        wtransport, _ = await loop.connect_write_pipe(lambda: flow, write_end)
        stack.push_async_callback(_close_output, wtransport, flow)
        out = _PipeOut(wtransport, flow)
    return source, out


async def run_stdio(server: MCPServer[Any]) -> None:
    """Serve ``server`` over this process's stdin and stdout until stdin closes."""
    async with AsyncExitStack() as stack:
        source, out = await _loop_streams(stack)
        lines = AnsweredLines(source if source is not None else anyio.wrap_file(sys.stdin.buffer))
        # stdin is given, so the SDK claims at most stdout (fd 1, pointed at stderr while serving so
        # that stray output cannot corrupt the protocol, which _divert_stdout does when stdout is
        # served here); nothing in this process reads fd 0 but this.
        async with stdio_server(stdin=cast(Any, lines), stdout=cast(Any, out)) as (read_stream, write_stream):
            to_server, server_reads = anyio.create_memory_object_stream[SessionMessage | Exception](0)
            async with anyio.create_task_group() as group:
                group.start_soon(lines.forward, read_stream, to_server, write_stream)
                lowlevel = server._lowlevel_server  # as the SDK's own run_stdio_async does
                async with server_reads:
                    await lowlevel.run(server_reads, write_stream, lowlevel.create_initialization_options())
