"""MCP clients over the real server, in-process, on every backend."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
from mcp import Client

from agent_memory.server.app import build_server
from agent_memory.storage.engine import ItemEngine
from agent_memory.storage.store import MemoryStore
from tests.support import FakeClock, settings_for


class Agent:
    """One agent's MCP client session, with helpers that assert on the protocol result."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def ok(self, tool: str, **args: Any) -> dict[str, Any]:
        result = await self.client.call_tool(tool, args)
        text = result.content[0].text if result.content else ""  # type: ignore[union-attr]
        assert not result.is_error, f"{tool} failed: {text}"
        data: dict[str, Any] | None = result.structured_content
        assert data is not None
        return data

    async def error(self, tool: str, **args: Any) -> str:
        """The error text of a call that must fail (one line: "code: message")."""
        return (await self.failure(tool, **args))[0]

    async def failure(self, tool: str, **args: Any) -> tuple[str, dict[str, Any]]:
        """Text and structured content of a call that must fail: the structured content is the
        error as data (code, message, retryable), and the text says the same on one line."""
        result = await self.client.call_tool(tool, args)
        assert result.is_error, f"{tool} should have failed: {result.structured_content}"
        text: str = result.content[0].text  # type: ignore[union-attr]
        assert "Traceback" not in text and 'File "' not in text and "pydantic" not in text
        data = result.structured_content
        assert data is not None, f"{tool}: an error without structured content: {text}"
        assert isinstance(data["code"], str) and isinstance(data["retryable"], bool)
        assert text == f"{data['code']}: {data['message']}" and "\n" not in text
        return text, data

    async def resource(self, uri: str) -> Any:
        result = await self.client.read_resource(uri)
        return json.loads(result.contents[0].text)  # type: ignore[union-attr]


@pytest.fixture
async def clock() -> FakeClock:
    return FakeClock()


@asynccontextmanager
async def team(
    engine: ItemEngine, clock: FakeClock, *agent_ids: str, **overrides: Any
) -> AsyncIterator[list[Agent]]:
    """One MCP client per agent, each connected to its own server acting as that agent; every
    server shares the one store, as the stdio servers of a team share one database.

    (A context manager used inside the test, not a fixture: the SDK's client must be closed by
    the task that opened it.)"""
    store = MemoryStore(engine, clock)
    async with AsyncExitStack() as stack:
        members = []
        for agent_id in agent_ids:
            server = build_server(settings_for(agent_id=agent_id, **overrides), store=store, clock=clock)
            members.append(Agent(await stack.enter_async_context(Client(server))))
        yield members
