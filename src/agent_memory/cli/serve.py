"""``agent-memory serve``: run the MCP server over stdio (one agent) or streamable HTTP (many)."""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys
import threading
from types import FrameType
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer

from agent_memory.cli.main import UsageError
from agent_memory.config import Settings
from agent_memory.storage.engine import PHYSICAL_NAMES

STOP_GRACE_SECONDS = 2.0
"""How long a stdio server interrupted by Ctrl-C may take to shut down before it just exits."""


def where(settings: Settings) -> str:
    """The store a server uses, in words a user can act on."""
    if settings.backend == "sqlite":
        return f"the embedded store {settings.sqlite_path}"
    names = ", ".join(settings.table_name(name) for name in PHYSICAL_NAMES.values())
    endpoint = f" at {settings.dynamodb_endpoint_url}" if settings.dynamodb_endpoint_url else ""
    return f"the DynamoDB tables {names}{endpoint}"


def serve(settings: Settings, transport: str) -> int:
    if transport == "stdio":
        return serve_stdio(settings)
    return serve_http(settings)


def serve_stdio(settings: Settings) -> int:
    from agent_memory.server.app import build_server
    from agent_memory.server.run import settle_heap

    server = build_server(settings)
    settle_heap()
    greeting = None
    if sys.stdin.isatty():
        # Typed into a terminal by hand: say what this process is waiting for.
        greeting = (
            f"agent-memory: MCP server for agent {settings.agent_id!r} on {where(settings)}.\n"
            "It waits for an MCP client on stdin (an MCP client launches it; see the README's "
            "Claude Desktop section). Stop it with Ctrl-C."
        )
    stopped = anyio.run(_until_interrupted, server, greeting)
    return 130 if stopped else 0


async def _until_interrupted(server: MCPServer[Any], greeting: str | None) -> bool:
    """Serve over stdio until the client closes stdin (False) or Ctrl-C / SIGTERM (True).

    A signal cancels the server, whose shutdown flushes the usage counters. A stdin that is a
    regular file or a device (a terminal) is read in a worker thread that no cancellation reaches (a pipe is
    read on the event loop, see server/stdio.py), so a blocked read would then keep the
    process alive: it ends after a short grace instead (every record is committed by the call
    that wrote it, so nothing is lost)."""
    from agent_memory.server.stdio import run_stdio

    interrupted = False
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            nonlocal interrupted
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                if greeting:  # said once Ctrl-C is handled as it says
                    print(greeting, file=sys.stderr, flush=True)
                async for _ in signals:
                    interrupted = True
                    timer = threading.Timer(STOP_GRACE_SECONDS, os._exit, args=(130,))
                    timer.daemon = True
                    timer.start()
                    group.cancel_scope.cancel()
                    return

        group.start_soon(watch)
        await run_stdio(server)  # answers every line, even one it cannot parse
        group.cancel_scope.cancel()  # the client closed stdin: stop watching for signals
    return interrupted


def serve_http(settings: Settings) -> int:
    import uvicorn

    from agent_memory.server.hardening import exposure_warning, uvicorn_options
    from agent_memory.server.run import http_app, settle_heap

    warning = exposure_warning(settings)
    if warning:  # said before listening, so whoever sees the port open has seen it
        print(warning, file=sys.stderr, flush=True)
    sock = _bind(settings.http_host, settings.http_port)
    try:
        port = sock.getsockname()[1]
        # With --port 0 the system picks the port: the app's Host/Origin checks need the real one.
        app = http_app(settings.model_copy(update={"http_port": port}))
        settle_heap()
        # No access log: at this log level uvicorn would only test and drop a record per request.
        config = uvicorn.Config(app, log_level="warning", access_log=False, **uvicorn_options(settings))
        server = uvicorn.Server(config)
        # Whoever sees the banner may signal at once, before uvicorn listens for signals itself:
        # from here on a Ctrl-C or SIGTERM asks the server to stop, whenever it comes (uvicorn hands
        # the signals it caught back to this handler once it has shut down).
        stopped: list[int] = []

        def stop(sig: int, frame: FrameType | None) -> None:
            stopped.append(sig)
            server.handle_exit(sig, frame)

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, stop)
        print(
            f"agent-memory: serving MCP on http://{settings.http_host}:{port}/mcp ({where(settings)}); "
            "stop with Ctrl-C",
            file=sys.stderr,
            flush=True,
        )
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 130 if stopped else 0


def _bind(host: str, port: int) -> socket.socket:
    """Bind before announcing anything, so a port in use is reported as such (not after a banner)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on connections of sockets whose
    # protocol says TCP; without it each response waited ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(
                f"port {port} on {host} is already in use: choose another with --port "
                "(or AGENT_MEMORY_HTTP_PORT), or stop the process using it"
            ) from None
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror}; check --host and --port "
            "(AGENT_MEMORY_HTTP_HOST, AGENT_MEMORY_HTTP_PORT)"
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
