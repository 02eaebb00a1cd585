"""The streamable HTTP transport (many agents, bearer tokens) as an ASGI app. The command that runs
it, and the stdio transport, are in :mod:`agent_memory.cli.serve`."""

from __future__ import annotations

import gc
import logging

from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette

from agent_memory.config import Settings
from agent_memory.errors import ConfigurationError
from agent_memory.server.app import build_server
from agent_memory.server.auth import load_tokens, verifier_for
from agent_memory.server.hardening import BodyLimit

log = logging.getLogger("agent_memory.server")

GC_YOUNG_THRESHOLD = 10_000
"""Container objects allocated (net) between two young-generation collections in a server process,
stdio or HTTP (Python's default is 700). Each call of the MCP stack allocates many, and with tens of
calls in flight most of them are still alive when a collection runs: at 700 the collector kept
scanning them, for nothing (the stack makes no cycles worth collecting that soon). Measured
in-process at 25 calls in flight, the collector's CPU per get_state fell from 0.16-0.21 ms to
0.07-0.10 ms with :func:`settle_heap`'s freeze alone, and to 0.01 ms with this threshold too
(docs/BENCHMARKS.md, HTTP section)."""


def settle_heap() -> None:
    """Tune the garbage collector of a process that is about to serve (stdio or HTTP), once its
    server is built: what exists now (modules, schemas, validators: about 100,000 objects that live
    as long as the process) is moved out of the collector's sight (``gc.freeze``), so no full
    collection walks it again, and young collections run every :data:`GC_YOUNG_THRESHOLD`
    allocations. Cycles are
    still collected, later; memory grows by at most that many young objects."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def http_app(settings: Settings) -> Starlette:
    """The ASGI app of the HTTP transport: stateless (any instance may answer any call, so
    instances scale out behind a load balancer), bearer tokens required, Host/Origin checked."""
    if settings.tokens_file is None and settings.jwt_issuer is None:
        raise ConfigurationError(
            "the HTTP transport needs bearer tokens: set AGENT_MEMORY_TOKENS_FILE (or --tokens-file); "
            "create one with 'agent-memory tokens add --agent-id NAME --file PATH'"
        )
    port = settings.http_port
    resource_url = (settings.public_url or f"http://{settings.http_host}:{port}") + "/mcp"
    if settings.tokens_file is not None and settings.jwt_issuer is None:
        tokens = load_tokens(settings.tokens_file)
        if not tokens.tokens:
            raise ConfigurationError(
                f"tokens file {settings.tokens_file} holds no tokens, so every request would be refused: "
                "add one with 'agent-memory tokens add --agent-id NAME --file "
                f"{settings.tokens_file}'"
            )
    verifier = verifier_for(settings, resource_url)
    server = build_server(settings, http=True, token_verifier=verifier)
    hosts = [f"127.0.0.1:{port}", f"localhost:{port}", f"{settings.http_host}:{port}"]
    origins = [f"http://127.0.0.1:{port}", f"http://localhost:{port}", *settings.allowed_origins]
    if settings.public_url:
        from urllib.parse import urlsplit

        hosts.append(urlsplit(settings.public_url).netloc)
        origins.append(settings.public_url.rstrip("/"))
    app = server.streamable_http_app(
        stateless_http=True,
        json_response=True,
        host=settings.http_host,
        transport_security=TransportSecuritySettings(
            enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
        ),
    )
    app.add_middleware(BodyLimit, limit=settings.http_max_body_bytes)
    return app
