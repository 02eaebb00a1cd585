"""Bounded work per request (issue #12: two 4 MB payloads stalled another agent for 9.5 s; uvicorn
had no concurrency limit nor header timeout; no rate limit)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator

import anyio
import httpx2

from tests.security.conftest import (
    HONEST,
    HOSTILE,
    SECRETS,
    Server,
    assert_unharmed,
    honest_snapshots,
    leaked,
    seed_honest,
    snapshot,
)

HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def _call(tool: str, args: dict[str, object]) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": args}}


async def test_bodies_over_1_mib_are_refused_unread(server: Server) -> None:
    async with server.team() as team:
        await seed_honest(team)
        before = await honest_snapshots(team)
    auth = {**HEADERS, "Authorization": f"Bearer {server.tokens[HOSTILE]}"}
    huge = {f"k{i}": i for i in range(120_000)}  # the 120k keys: ~1.8 MB of JSON
    body = json.dumps(_call("log_decision", {"decision_type": "TRADE", "context": huge})).encode()
    assert len(body) > 1024 * 1024
    async with httpx2.AsyncClient(timeout=30) as http:
        response = await http.post(server.url, content=body, headers=auth)
        assert response.status_code == 413
        assert "larger than 1048576 bytes" in response.json()["error"]

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(body), 64 * 1024):
                yield body[i : i + 64 * 1024]

        chunked = await http.post(server.url, content=chunks(), headers=auth)
        assert chunked.status_code == 413
    async with server.team() as team:
        await assert_unharmed(team, before, response.text, chunked.text)
        assert (await team[HOSTILE].ok("search_decisions"))["decisions"] == []


async def test_a_large_payload_is_refused_by_size_with_a_clear_message(server: Server) -> None:
    async with server.team() as team:
        await seed_honest(team)
        before = await honest_snapshots(team)
        big = {f"k{i}": i for i in range(50_000)}  # ~0.8 MB: within the body limit, over a field's
        message = await team[HOSTILE].error("log_decision", decision_type="TRADE", context=big)
        assert "limit is 65536 bytes" in message
        recalled = await team[HOSTILE].error("recall_patterns", context=big)
        assert "limit is 65536 bytes" in recalled
        await assert_unharmed(team, before, message, recalled)


async def test_a_half_open_request_is_closed(launch) -> None:  # type: ignore[no-untyped-def]
    server: Server = launch(AGENT_MEMORY_HTTP_HEADER_TIMEOUT_S="1")
    async with server.team() as team:
        await seed_honest(team)
        before = await honest_snapshots(team)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n")  # never finished
        start = time.monotonic()
        assert sock.recv(1024) == b""  # closed by the server (the recv would block 10 s otherwise)
        assert time.monotonic() - start < 9
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        # Headers complete, body never sent: closed too.
        sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")
        start = time.monotonic()
        assert sock.recv(1024) == b""
        assert time.monotonic() - start < 9
    # The server still answers others, whose memory is as it was.
    async with server.team() as team:
        await assert_unharmed(team, before)


async def test_connections_beyond_the_limit_get_503(launch) -> None:  # type: ignore[no-untyped-def]
    server: Server = launch(AGENT_MEMORY_HTTP_MAX_CONCURRENCY="3", AGENT_MEMORY_HTTP_HEADER_TIMEOUT_S="30")
    before = {}
    for name in HONEST:  # one connection at a time: the limit is 3
        async with server.agent(name) as agent:
            await seed_honest({name: agent}, [name])
            before[name] = await snapshot(agent)
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(3)]
    try:
        await anyio.sleep(0.2)
        auth = {**HEADERS, "Authorization": f"Bearer {server.tokens['executor']}"}
        async with httpx2.AsyncClient(timeout=10) as http:
            response = await http.post(server.url, json=_call("get_state", {}), headers=auth)
            assert response.status_code == 503
    finally:
        for sock in idle:
            sock.close()
    assert leaked(response.text, *SECRETS) == []
    for name in HONEST:  # served again once the idle connections are gone, memory as it was
        async with server.agent(name) as agent:
            assert await snapshot(agent) == before[name]


async def test_rate_limit_is_per_agent_and_says_when_to_retry(launch) -> None:  # type: ignore[no-untyped-def]
    server: Server = launch(AGENT_MEMORY_RATE_LIMIT_PER_MINUTE="1", AGENT_MEMORY_RATE_LIMIT_BURST="5")
    async with server.team() as team:
        mallory = team[HOSTILE]
        for _ in range(5):
            await mallory.ok("get_state")
        message = await mallory.error("get_state")
        assert "rate_limited: rate limit of 1 calls per minute" in message and "retry after" in message
        seconds = float(message.split("retry after ")[1].split(" s")[0])
        assert 0 < seconds <= 60.0  # one call a minute: the bucket refills in at most a minute
        # Other agents keep their own budget (each call here counts against it), and their memory.
        assert (await team["executor"].ok("get_state"))["version"] == 0
        assert (await team["executor"].ok("recall_stm"))["decisions"] == []
        assert "executor" not in message
