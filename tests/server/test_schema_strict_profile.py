"""AGENT_MEMORY_SCHEMA_PROFILE=strict: schemas OpenAI's strict mode takes for every tool, and calls
shaped the way a strict-mode model makes them (every argument present, null for "not given",
free-form and any-value arguments as JSON text) do what the portable calls do."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from agent_memory.server.app import build_server
from agent_memory.storage.store import MemoryStore
from tests.fixtures.sqlite import sqlite_engine
from tests.server.conftest import Agent
from tests.support import FakeClock, settings_for


@asynccontextmanager
async def strict_server(tmp_path: Path) -> AsyncIterator[Agent]:
    """An agent on a strict-profile server (a context manager: the SDK client must be closed by
    the task that opened it)."""
    clock = FakeClock()
    async with sqlite_engine(tmp_path / "memory.db") as engine:
        settings = settings_for(tmp_path, agent_id="market-hunter", schema_profile="strict")
        server = build_server(settings, store=MemoryStore(engine, clock), clock=clock)
        async with Client(server) as client:
            yield Agent(client)


def _objects(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node:
            yield path, node
        for key, sub in node.items():
            if key == "properties":
                for name, prop in sub.items():
                    yield from _objects(prop, f"{path}/{name}")
            elif isinstance(sub, (dict, list)):
                yield from _objects(sub, f"{path}/{key}")
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            yield from _objects(sub, f"{path}/{i}")


async def test_strict_schemas_have_the_shape_strict_mode_requires(tmp_path: Path) -> None:
    async with strict_server(tmp_path) as agent:
        tools = (await agent.client.list_tools()).tools
    assert len(tools) >= 16
    for tool in tools:
        text = json.dumps(tool.input_schema)
        assert '"default"' not in text and "$ref" not in text, tool.name
        for path, node in _objects(tool.input_schema):
            assert node["additionalProperties"] is False, f"{tool.name}{path}"
            assert node.get("properties") or not path, f"{tool.name}{path}: an open object"
            assert set(node.get("required", [])) == set(node.get("properties", {})), f"{tool.name}{path}"
    schemas = {t.name: t.input_schema for t in tools}
    assert schemas["record_outcome"]["properties"]["quality_score"]["type"] == ["number", "null"]
    assert schemas["log_decision"]["properties"]["context"]["type"] == ["string", "null"]
    assert schemas["store_pattern"]["properties"]["outcomes"]["type"] == "string"
    assert "JSON text" in schemas["log_decision"]["properties"]["context"]["description"]


async def test_openai_agents_converts_every_tool_strictly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("agents", reason="openai-agents is not installed (pip install -e '.[clients]')")
    from agents.mcp import MCPServerStdio, MCPUtil

    server = MCPServerStdio(params={"command": sys.executable, "args": ["-m", "agent_memory.cli", "serve"]})
    async with strict_server(tmp_path) as agent:
        tools = (await agent.client.list_tools()).tools
    with caplog.at_level(logging.DEBUG, logger="openai.agents"):
        converted = [MCPUtil.to_function_tool(tool, server, convert_schemas_to_strict=True) for tool in tools]
    assert [t.name for t in converted if not t.strict_json_schema] == []  # no fallback
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO] == []  # no warning


async def test_strict_shaped_calls_work(tmp_path: Path) -> None:
    async with strict_server(tmp_path) as agent:
        await _strict_shaped_calls(agent)


async def _strict_shaped_calls(agent: Agent) -> None:
    logged = await agent.ok(
        "log_decision",
        decision_type="SOURCE_SELECTION",
        context='{"market": {"trend": "bullish"}, "whale_count": 7}',
        reasoning='{"chosen": "whaleMovements"}',
        outcome=None,
        decision_id="hunt-1",
        parent_decision_id=None,
        patterns_applied=None,
        memory_influenced=None,
    )
    assert logged == {"decision_id": "hunt-1", "created": True}
    whole = await agent.resource("memory://decisions/hunt-1")
    assert whole["context"] == {"market": {"trend": "bullish"}, "whale_count": 7}
    pattern = await agent.ok(
        "store_pattern",
        description="Whales in a bullish trend predict a pump",
        conditions=[
            {"field": "market.trend", "op": None, "value": '"bullish"'},  # op null: the default, eq
            {"field": "whale_count", "op": "gte", "value": "5"},  # the number 5, not the string
        ],
        outcomes='{"pump_probability": 0.78}',
        confidence=0.7,
        success_rate=0.78,
        sample_size=23,
        pattern_id=None,
        domain=None,
        decision_type=None,
        shared_with=None,
        expected_version=None,
    )
    recalled = await agent.ok(
        "recall_patterns", context='{"market": {"trend": "bullish"}, "whale_count": 9}', domain=None
    )
    assert [p["pattern_id"] for p in recalled["patterns"]] == [pattern["pattern_id"]]
    assert (await agent.ok("recall_patterns", context='{"whale_count": 4}', domain=None))["patterns"] == []
    await agent.ok("store_stm", key="plan", value='{"size": 0.25}', ttl_minutes=None)
    stm = await agent.ok("recall_stm")
    assert [(n["key"], n["value"]) for n in stm["notes"]] == [("plan", {"size": 0.25})]


async def test_text_that_is_not_json_is_refused_clearly(tmp_path: Path) -> None:
    async with strict_server(tmp_path) as agent:
        await _refusals(agent)


async def _refusals(strict_agent: Agent) -> None:
    error = await strict_agent.error("store_stm", key="plan", value="buy the dip", ttl_minutes=None)
    assert "value" in error and "must be JSON text" in error and "buy the dip" in error
    nested = await strict_agent.error(
        "store_pattern",
        description="x",
        conditions=[{"field": "whale_count", "op": "gte", "value": "five"}],
        outcomes="{}",
        confidence=0.5,
        success_rate=0.5,
        sample_size=1,
    )
    assert "conditions.0.value" in nested and "must be JSON text" in nested
    assert (await strict_agent.ok("recall_stm"))["notes"] == []  # nothing stored
