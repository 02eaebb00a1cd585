"""The official MCP conformance suite (npm ``@modelcontextprotocol/conformance``, pinned in
package.json / package-lock.json beside this file) against our streamable HTTP server.

Scenarios that apply to this server; the others test fixture tools, prompts or resources a
conformance test server defines (``test_tool_with_logging``, ...), or features we do not offer
(completion, subscriptions, sampling, elicitation). The suite sends no bearer token, so the app is
wrapped to add a valid one to requests that carry none; Host/Origin checks (DNS rebinding) are the
server's own. Needs node 22: ``npm ci`` here installs it (npm's ``node`` package) with the suite.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from agent_memory.config import Settings
from agent_memory.server.auth import add_token
from agent_memory.server.run import http_app

HERE = Path(__file__).resolve().parent
SUITE = HERE / "node_modules" / "@modelcontextprotocol" / "conformance"
SCENARIOS = [
    "server-initialize",
    "ping",
    "logging-set-level",
    "tools-list",
    "resources-list",
    "prompts-list",
    "dns-rebinding-protection",
]


def _node22() -> str | None:
    """A node binary of major version 22 or later: the one npm ci put here, else PATH's."""
    for candidate in (HERE / "node_modules" / "node" / "bin" / "node", shutil.which("node")):
        if candidate is None or not Path(candidate).exists():
            continue
        try:
            version = subprocess.run(
                [str(candidate), "--version"], capture_output=True, text=True, timeout=30
            )
        except OSError:
            continue
        match = re.match(r"v(\d+)\.", version.stdout.strip())
        if match and int(match.group(1)) >= 22:
            return str(candidate)
    return None


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("conformance")
    tokens = folder / "tokens.json"
    token = add_token(tokens, "conformance", "agent")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = http_app(Settings(sqlite_path=folder / "memory.db", tokens_file=tokens, http_port=port))
    bearer = (b"authorization", f"Bearer {token}".encode())

    async def with_token(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not any(name == b"authorization" for name, _ in scope["headers"]):
            scope = {**scope, "headers": [*scope["headers"], bearer]}
        await app(scope, receive, send)

    server = uvicorn.Server(uvicorn.Config(with_token, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start"
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_conformance_scenario(scenario: str, server_url: str, tmp_path: Path) -> None:
    node = _node22()
    if node is None:
        pytest.skip("needs node 22 or later: run 'npm ci' in tests/conformance (it installs npm's node@22)")
    if not SUITE.exists():
        pytest.skip("the conformance suite is not installed: run 'npm ci' in tests/conformance")
    result = subprocess.run(
        [node, str(HERE / "node_modules" / ".bin" / "conformance"), "server", "--url", server_url,
         "--scenario", scenario, "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"},
    )  # fmt: skip
    plain = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    summary = re.search(r"Passed: (\d+)/(\d+), (\d+) failed", plain)
    assert summary is not None, plain[-3000:]
    passed, total, failed = map(int, summary.groups())
    assert failed == 0 and passed == total > 0, plain[-3000:]
    assert result.returncode == 0, plain[-3000:]
