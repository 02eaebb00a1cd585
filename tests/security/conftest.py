"""A team of agents over the real HTTP transport, one of them hostile.

Every test here starts a real ``agent-memory serve --transport http`` process with a tokens file
of five tokens: three honest agents, one hostile agent (``mallory``) and an observer, on each
backend (SQLite, and DynamoDB on Amazon's DynamoDB Local, the emulator of record: see
tests/fixtures/dynamodb.py). Attacks are
ordinary tool calls with mallory's token; each test then checks that the honest agents' memory is
what it was and that nothing of theirs leaked.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from agent_memory.server.auth import add_token
from tests.fixtures.http_server import start_server, stop, storage_env
from tests.server.conftest import Agent

BACKENDS = [b for b in os.environ.get("AGENT_MEMORY_TEST_BACKENDS", "sqlite,dynamodb").split(",") if b]

HONEST = ("market-hunter", "risk-manager", "executor")
HOSTILE = "mallory"
OBSERVER = "dashboard"


@dataclass
class Server:
    url: str
    port: int
    tokens_file: Path
    tokens: dict[str, str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    backend: str
    stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    @asynccontextmanager
    async def agent(self, name: str) -> AsyncIterator[Agent]:
        async with connect(self.url, self.tokens[name]) as agent:
            yield agent

    @asynccontextmanager
    async def team(self) -> AsyncIterator[dict[str, Agent]]:
        """One connected client per token: the honest agents, mallory and the observer."""
        async with AsyncExitStack() as stack:
            members = {name: await stack.enter_async_context(self.agent(name)) for name in self.tokens}
            yield members


@asynccontextmanager
async def connect(url: str, token: str) -> AsyncIterator[Agent]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield Agent(client)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def launch(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """``launch(**env)`` starts a server on ``backend`` with extra AGENT_MEMORY_* settings."""
    started: list[subprocess.Popen[bytes]] = []
    endpoint = request.getfixturevalue("dynamodb_endpoint") if backend == "dynamodb" else None
    storage = storage_env(tmp_path, backend, endpoint, tag="sec")
    tokens_file = tmp_path / "tokens.json"
    tokens = {name: add_token(tokens_file, name, "agent") for name in (*HONEST, HOSTILE)}
    tokens[OBSERVER] = add_token(tokens_file, OBSERVER, "observer")

    def start(**env: str) -> Server:
        full_env = {**os.environ, **storage, **env}
        # A loaded CI machine starts Python slowly.
        proc, port = start_server(tokens_file, full_env, stdout=subprocess.DEVNULL, timeout=120)
        started.append(proc)
        return Server(f"http://127.0.0.1:{port}/mcp", port, tokens_file, tokens, full_env, proc, backend)

    try:
        yield start
    finally:
        for proc in started:
            stop(proc)


@pytest.fixture
def server(launch: Callable[..., Server]) -> Server:
    return launch()


async def snapshot(agent: Agent) -> dict[str, Any]:
    """Everything an agent can read of its own memory (reads only: taking it changes nothing)."""
    stm = await agent.ok("recall_stm", limit=50)
    history = await agent.ok("search_decisions", limit=50)
    patterns = await agent.ok("recall_patterns", include_shared=False, limit=50)
    state = await agent.ok("get_state")
    pending = await agent.ok("read_inbox", status="pending", limit=50)
    processed = await agent.ok("read_inbox", status="processed", limit=50)
    return {
        "stm": stm,
        "history": history,
        "patterns": patterns,
        "state": state,
        "pending": pending,
        "processed": processed,
    }


async def seed_honest(team: dict[str, Agent], names: tuple[str, ...] | list[str] = HONEST) -> None:
    """Give each honest agent (of ``names``) some memory worth attacking."""
    for name in names:
        agent = team[name]
        logged = await agent.ok(
            "log_decision",
            decision_type="TRADE",
            decision_id=f"{name}-d1",
            context={"market": {"trend": "bullish"}, "secret": f"{name}-private"},
            reasoning={"why": "private reasoning"},
        )
        await agent.ok("record_outcome", decision_id=logged["decision_id"], success=True)
        await agent.ok("update_state", patch={"current": {"cycle": 1, "owner": name}}, expected_version=0)
        await agent.ok("store_stm", key="working", value={"note": f"{name} note"})
        await agent.ok(
            "store_pattern",
            description=f"{name}'s private rule",
            conditions=[{"field": "market.trend", "op": "eq", "value": "bullish"}],
            outcomes={"win": True},
            confidence=0.7,
            success_rate=0.7,
            sample_size=40,
            pattern_id=f"{name}-p1",
        )


def leaked(text: str, *secrets: str) -> list[str]:
    """The secrets that appear in ``text``."""
    return [s for s in secrets if s in text]


SECRETS = (
    *(s for name in HONEST for s in (f"{name}-private", f"{name} note", f"{name}'s private rule")),
    "private reasoning",
)
"""What seed_honest gives the honest agents that no other agent may read."""


async def honest_snapshots(team: dict[str, Agent]) -> dict[str, dict[str, Any]]:
    return {name: await snapshot(team[name]) for name in HONEST}


async def assert_unharmed(team: dict[str, Agent], before: dict[str, dict[str, Any]], *answers: Any) -> None:
    """The honest agents' memory is what it was, and none of their secrets is in ``answers`` (what
    the attacker was told) nor in what the attacker can read of its own memory now."""
    for name in HONEST:
        assert await snapshot(team[name]) == before[name], f"{name}'s memory changed"
    told = str(answers) + str(await snapshot(team[HOSTILE]))
    assert leaked(told, *SECRETS) == []
