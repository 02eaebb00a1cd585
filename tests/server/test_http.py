"""The streamable HTTP transport, end to end: a real `agent-memory serve --transport http` process,
bearer tokens from a tokens file, on both backends."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from agent_memory.server.auth import add_token
from tests.fixtures.http_server import http_server as http_server_process
from tests.fixtures.http_server import storage_env
from tests.server.conftest import Agent

BACKENDS = [b for b in os.environ.get("AGENT_MEMORY_TEST_BACKENDS", "sqlite,dynamodb").split(",") if b]


@pytest.fixture(params=BACKENDS)
def http_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    tokens_file = tmp_path / "tokens.json"
    tokens = {
        "market-hunter": add_token(tokens_file, "market-hunter", "agent"),
        "risk-manager": add_token(tokens_file, "risk-manager", "agent"),
        "dashboard": add_token(tokens_file, "dashboard", "observer"),
    }
    endpoint = request.getfixturevalue("dynamodb_endpoint") if request.param == "dynamodb" else None
    with http_server_process(tokens_file, storage_env(tmp_path, request.param, endpoint)) as (url, port):
        yield {"url": url, "tokens": tokens, "port": port}


@asynccontextmanager
async def _agent(url: str, token: str):  # type: ignore[no-untyped-def]
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield Agent(client)


async def test_identity_comes_from_the_token(http_server: dict[str, Any]) -> None:
    url, tokens = http_server["url"], http_server["tokens"]
    async with _agent(url, tokens["market-hunter"]) as hunter, _agent(url, tokens["risk-manager"]) as risk:
        await risk.ok("get_state")
        logged = await hunter.ok("log_decision", decision_type="SOURCE_SELECTION", decision_id="h1")
        assert logged == {"decision_id": "h1", "created": True}
        assert (await hunter.resource("memory://decisions/h1"))["agent_id"] == "market-hunter"
        sig = await hunter.ok(
            "publish_signal",
            signal_type="WHALE_ACTIVITY",
            data={"n": 5},
            target_agents=["risk-manager"],
            confidence=0.9,
        )
        inbox = await risk.ok("read_inbox")
        assert [e["signal_id"] for e in inbox["entries"]] == [sig["signal_id"]]
        assert inbox["entries"][0]["source_agent"] == "market-hunter"
        assert "access_denied" in await risk.error("search_decisions", agent_id="market-hunter")
        # A retried write landing on any instance is idempotent.
        again = await hunter.ok("log_decision", decision_type="SOURCE_SELECTION", decision_id="h1")
        assert again["created"] is False
    async with _agent(url, tokens["dashboard"]) as observer:
        seen = await observer.ok("search_decisions", agent_id="market-hunter")
        assert [d["decision_id"] for d in seen["decisions"]] == ["h1"]


async def test_requests_without_a_valid_token_are_refused(http_server: dict[str, Any]) -> None:
    url = http_server["url"]
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    async with httpx2.AsyncClient(timeout=10) as http:
        assert (await http.post(url, json=body, headers=headers)).status_code == 401
        bad = {**headers, "Authorization": "Bearer not-a-token"}
        assert (await http.post(url, json=body, headers=bad)).status_code == 401
        token = http_server["tokens"]["market-hunter"]
        evil = {**headers, "Authorization": f"Bearer {token}", "Origin": "http://evil.example"}
        assert (await http.post(url, json=body, headers=evil)).status_code in (400, 403)
