"""The HTTP transport served by several processes: ``agent-memory serve --transport http --workers N``.

The HTTP server keeps no state that correctness depends on (stateless streamable HTTP, conditional
writes, idempotent retries; in-process caches are advisory), so N processes can answer the same
port. uvicorn's supervisor forks them after binding the socket: the kernel spreads connections
over the processes that accept on it, and a worker that dies is replaced. One Python process runs
on one core at a time, so N close to the number of cores multiplies throughput (see the HTTP
section of docs/BENCHMARKS.md).

Each worker builds its own app (store, services, token verifier) from the settings of the command
line, handed over in an environment variable: settings are made once, in ``main()``, and the
workers only read them back. With the embedded store the N processes share one SQLite file (WAL
mode, file locks: see :mod:`agent_memory.storage.sqlite.engine`); with DynamoDB each opens its own
client.
"""

from __future__ import annotations

import logging
import os
import sys

from starlette.applications import Starlette

from agent_memory.config import Settings
from agent_memory.errors import ConfigurationError

LOG_LEVEL_ENV = "AGENT_MEMORY_WORKER_LOG_LEVEL"
"""The log level of the command (``-v``: DEBUG), for the workers, which do not run ``main()``."""
SETTINGS_ENV = "AGENT_MEMORY_WORKER_SETTINGS_JSON"
"""Where a worker finds the settings of the command that started it (JSON of :class:`Settings`)."""
MAX_WORKERS = 64


def check_workers(workers: int, transport: str) -> None:
    if not 1 <= workers <= MAX_WORKERS:
        raise ConfigurationError(f"--workers must be between 1 and {MAX_WORKERS} (about the number of cores)")
    if workers > 1 and transport != "http":
        raise ConfigurationError(
            "--workers applies to --transport http only: a stdio server is one process per agent"
        )


def serve_http(settings: Settings, workers: int) -> None:
    """Serve the HTTP transport from ``workers`` processes on ``settings.http_port``."""
    import uvicorn

    from agent_memory.server.run import http_app

    check_workers(workers, "http")
    http_app(settings)  # fail here, once, on bad settings (tokens file...), not in every worker
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    os.environ[LOG_LEVEL_ENV] = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    print(
        f"agent-memory: serving MCP on http://{settings.http_host}:{settings.http_port}/mcp "
        f"with {workers} worker processes",
        file=sys.stderr,
    )
    uvicorn.run(
        f"{__name__}:worker_app",
        factory=True,
        workers=workers,
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
    )


def worker_app() -> Starlette:
    """The app of one worker process (uvicorn's factory)."""
    from agent_memory.server.run import http_app

    # Logging as the command configured it; otherwise the SDK would configure INFO with a rich
    # handler, and log every stateless request ("Terminating session") at a cost per call.
    logging.basicConfig(
        stream=sys.stderr,
        level=os.environ.get(LOG_LEVEL_ENV, "WARNING"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    raw = os.environ.get(SETTINGS_ENV)
    if raw is None:
        raise ConfigurationError(
            f"{SETTINGS_ENV} is not set: start workers with 'agent-memory serve --transport http --workers N'"
        )
    return http_app(Settings.model_validate_json(raw))
