"""The streamable HTTP transport (many agents, bearer tokens) as an ASGI app. The command that runs
it, and the stdio transport, are in :mod:`agent_memory.cli.serve`."""

from __future__ import annotations

import logging

from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette

from agent_memory.config import Settings
from agent_memory.errors import ConfigurationError
from agent_memory.server.app import build_server
from agent_memory.server.auth import load_tokens, verifier_for
from agent_memory.server.hardening import BodyLimit

log = logging.getLogger("agent_memory.server")


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
