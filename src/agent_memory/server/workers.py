"""The HTTP transport served by several processes: ``agent-memory serve --transport http --workers N``.

The HTTP server keeps no state that correctness depends on (stateless streamable HTTP, conditional
writes, idempotent retries; in-process caches are advisory), so N processes can answer the same
port. Each worker binds its own listening socket on the port with ``SO_REUSEPORT``, and the kernel
spreads new connections over them; the parent process only supervises (a worker that dies is
started again; SIGTERM or Ctrl-C stops them all). One Python process runs on one core at a time,
so N close to the number of cores multiplies throughput (the HTTP section of docs/BENCHMARKS.md).

Each worker builds its own app (store, services, token verifier) from the settings of the command
line, handed over in an environment variable: settings are made once, in ``main()``, and the
workers only read them back. With the embedded store the N processes share one SQLite file (WAL
mode, file locks: see :mod:`agent_memory.storage.sqlite.engine`); with DynamoDB each opens its own
client.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from multiprocessing.process import BaseProcess
from typing import Any

from starlette.applications import Starlette

from agent_memory.config import Settings
from agent_memory.errors import ConfigurationError

LOG_LEVEL_ENV = "AGENT_MEMORY_WORKER_LOG_LEVEL"
"""The log level of the command (``-v``: DEBUG), for the workers, which do not run ``main()``."""
SETTINGS_ENV = "AGENT_MEMORY_WORKER_SETTINGS_JSON"
"""Where a worker finds the settings of the command that started it (JSON of :class:`Settings`)."""
MAX_WORKERS = 64
RESTART_PAUSE = 1.0
"""Seconds between restarts of a worker that died, so a worker failing at start-up does not spin."""


def check_workers(workers: int, transport: str) -> None:
    if not 1 <= workers <= MAX_WORKERS:
        raise ConfigurationError(f"--workers must be between 1 and {MAX_WORKERS} (about the number of cores)")
    if workers > 1 and transport != "http":
        raise ConfigurationError(
            "--workers applies to --transport http only: a stdio server is one process per agent"
        )


def serve_http(settings: Settings, workers: int) -> None:
    """Serve the HTTP transport from ``workers`` processes on ``settings.http_port``."""
    from agent_memory.server.run import http_app

    check_workers(workers, "http")
    if settings.http_port == 0:
        raise ConfigurationError("--workers needs a fixed --port: each worker binds the same port")
    http_app(settings)  # fail here, once, on bad settings (tokens file...), not in every worker
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    os.environ[LOG_LEVEL_ENV] = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    print(
        f"agent-memory: serving MCP on http://{settings.http_host}:{settings.http_port}/mcp "
        f"with {workers} worker processes",
        file=sys.stderr,
    )
    serve_workers(
        f"{__name__}:worker_app",
        settings.http_host,
        settings.http_port,
        workers,
        factory=True,
        options=f"{__name__}:worker_options",
    )


def _worker_settings() -> Settings:
    raw = os.environ.get(SETTINGS_ENV)
    if raw is None:
        raise ConfigurationError(
            f"{SETTINGS_ENV} is not set: start workers with 'agent-memory serve --transport http --workers N'"
        )
    return Settings.model_validate_json(raw)


def worker_options() -> dict[str, Any]:
    """The uvicorn options of one worker process: the same bounds on each client as one process
    (header timeout, concurrency limit, keep-alive), so ``--workers`` weakens no protection."""
    from agent_memory.server.hardening import uvicorn_options

    return uvicorn_options(_worker_settings())


def worker_app() -> Starlette:
    """The app of one worker process, its heap settled (:func:`~agent_memory.server.run.settle_heap`)
    before it serves."""
    from agent_memory.server.run import http_app, settle_heap

    app = http_app(_worker_settings())
    settle_heap()
    return app


def listening_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` that other processes may bind too (SO_REUSEPORT).

    Created with ``IPPROTO_TCP`` spelled out: asyncio sets TCP_NODELAY only on connections of
    sockets whose protocol says TCP, and without it every response waited for the client's delayed
    ACK (about 40 ms: 20 calls/s per connection, measured with uvicorn's own multi-worker socket).
    """
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ConfigurationError("--workers needs SO_REUSEPORT (Linux, macOS, BSD); run one process per port")
    family, _, _, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )[0]
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(2048)
    return sock


def serve_workers(
    target: str,
    host: str,
    port: int,
    workers: int,
    *,
    factory: bool,
    app_dir: str | None = None,
    options: str | None = None,
) -> None:
    """Run ``workers`` processes serving the ASGI app ``target`` ("module:attribute"; with
    ``factory`` the attribute is called to make the app) on ``host:port``, until SIGTERM/SIGINT.
    ``options`` ("module:function") names a function each worker calls for more uvicorn options
    (they are made in the worker: a protocol class does not cross a process boundary)."""
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> BaseProcess:
        process = context.Process(
            target=_worker, args=(target, host, port, factory, app_dir, options), daemon=True
        )
        process.start()
        return process

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    processes = [start() for _ in range(workers)]
    try:
        while not stopping:
            time.sleep(0.2)
            for i, process in enumerate(processes):
                if not process.is_alive() and not stopping:
                    logging.getLogger("agent_memory.server").warning(
                        "worker %s exited (code %s); starting another", process.pid, process.exitcode
                    )
                    time.sleep(RESTART_PAUSE)
                    processes[i] = start()
    finally:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        for process in processes:
            process.join(timeout=15)
            if process.is_alive():
                process.kill()
        for s, handler in previous.items():
            signal.signal(s, handler)


def _load(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def _worker(
    target: str, host: str, port: int, factory: bool, app_dir: str | None, options: str | None
) -> None:
    import uvicorn

    # Logging as the command configured it; otherwise the SDK would configure INFO with a rich
    # handler, and log every stateless request ("Terminating session") at a cost per call.
    logging.basicConfig(
        stream=sys.stderr,
        level=os.environ.get(LOG_LEVEL_ENV, "WARNING"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if app_dir is not None:
        sys.path.insert(0, app_dir)
    obj = _load(target)
    app = obj() if factory else obj
    extra: dict[str, Any] = _load(options)() if options is not None else {}
    sock = listening_socket(host, port)
    config = uvicorn.Config(app, log_level="warning", access_log=False, **extra)
    uvicorn.Server(config).run(sockets=[sock])
