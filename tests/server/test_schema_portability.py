"""The schemas in tools/list are portable (inputs) and flat (outputs), and change nothing that validates.

Input schemas: no refs, closed fixed-shape objects, a type on every node, no titles, no null
wrappers. Output schemas: no refs, no ``anyOf: [X, null]``; they accept exactly the results the
SDK's own (pydantic-generated) schemas accept, checked on real results of every tool and on
mutations of them."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from mcp import Client

from agent_memory.api import TOOLS
from agent_memory.server.app import build_server
from agent_memory.server.schemas import JSON_VALUE, flat_output_schema, portable_input_schema
from agent_memory.storage.store import MemoryStore
from tests.fixtures.sqlite import sqlite_engine
from tests.server.conftest import Agent
from tests.support import FakeClock, settings_for

FREE_FORM = {"type": "object", "additionalProperties": True}


@asynccontextmanager
async def desk(tmp_path: Path) -> AsyncIterator[tuple[Any, list[Agent]]]:
    """Two agents on one SQLite store; yields the first agent's server and both clients."""
    clock = FakeClock()
    async with sqlite_engine(tmp_path / "memory.db") as engine:
        store = MemoryStore(engine, clock)
        servers = [
            build_server(settings_for(tmp_path, agent_id=agent), store=store, clock=clock)
            for agent in ("market-hunter", "risk-manager")
        ]
        async with Client(servers[0]) as hunter, Client(servers[1]) as risk:
            yield servers[0], [Agent(hunter), Agent(risk)]


def _nodes(schema: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node (not the name maps under ``properties``), with its path."""
    if not isinstance(schema, dict):
        return
    yield path, schema
    for key in ("properties", "patternProperties"):
        for name, sub in (schema.get(key) or {}).items():
            yield from _nodes(sub, f"{path}/{key}/{name}")
    for key in ("items", "additionalProperties", "contains"):
        if isinstance(schema.get(key), dict):
            yield from _nodes(schema[key], f"{path}/{key}")
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for i, sub in enumerate(schema.get(key) or []):
            yield from _nodes(sub, f"{path}/{key}/{i}")


def _typed(node: dict[str, Any]) -> bool:
    if "type" in node or "enum" in node or "const" in node:
        return True
    return "anyOf" in node and all(_typed(branch) for branch in node["anyOf"])


async def test_every_input_schema_is_portable(tmp_path: Path) -> None:
    async with desk(tmp_path) as (_, [hunter, _risk]):
        tools = (await hunter.client.list_tools()).tools
    assert len(tools) >= 16
    for tool in tools:
        schema = tool.input_schema
        text = json.dumps(schema)
        assert "$ref" not in text and "$defs" not in text, tool.name
        assert schema["type"] == "object" and schema["additionalProperties"] is False, tool.name
        for path, node in _nodes(schema):
            where = f"{tool.name}{path}"
            assert "title" not in node, where
            assert _typed(node), f"{where} has no type: {node}"
            assert {"type": "null"} not in node.get("anyOf", []), f"{where} keeps a null wrapper"
            assert not isinstance(node.get("type"), list), (
                f"{where}: a type list (Gemini converters refuse it)"
            )
            if node.get("type") == "object":
                if node.get("properties") or not path:  # the root is closed even without arguments
                    assert node["additionalProperties"] is False, f"{where} is fixed-shape but open"
                else:
                    assert node.get("additionalProperties") is True, f"{where}: free-form must stay open"


async def test_free_form_and_any_fields_keep_their_meaning(tmp_path: Path) -> None:
    async with desk(tmp_path) as (_, [hunter, _risk]):
        tools = {t.name: t.input_schema for t in (await hunter.client.list_tools()).tools}
    for tool, field in [
        ("log_decision", "context"),
        ("log_decision", "reasoning"),
        ("store_pattern", "outcomes"),
        ("update_state", "patch"),
        ("publish_signal", "data"),
    ]:
        node = tools[tool]["properties"][field]
        assert {k: node[k] for k in FREE_FORM} == FREE_FORM, (tool, field)
        assert node["description"], (tool, field)
    value = tools["store_stm"]["properties"]["value"]
    assert value["anyOf"] == JSON_VALUE["anyOf"] and value["description"]
    condition = tools["store_pattern"]["properties"]["conditions"]["items"]
    assert condition["properties"]["value"]["anyOf"] == JSON_VALUE["anyOf"]
    assert condition["properties"]["op"]["enum"][:2] == ["eq", "ne"]  # enums kept
    assert tools["store_pattern"]["properties"]["confidence"] == {  # bounds and description kept
        "description": "In [0, 1].",
        "maximum": 1,
        "minimum": 0,
        "type": "number",
    }
    # A needless nullable wrapper is gone; "omit it" is spelled by the default.
    assert tools["record_outcome"]["properties"]["quality_score"]["type"] == "number"


def test_input_rewrite_accepts_what_a_model_should_send() -> None:
    """The portable schema validates the arguments the original accepts, except explicit nulls for
    optional arguments (leave them out) and nulls/nested lists inside "any value" fields."""
    original = {
        "type": "object",
        "$defs": {
            "C": {"properties": {"v": {"default": None, "title": "V"}}, "title": "C", "type": "object"}
        },
        "properties": {
            "c": {"anyOf": [{"$ref": "#/$defs/C"}, {"type": "null"}], "default": None},
            "n": {
                "anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}],
                "default": None,
                "title": "N",
            },
            "free": {"additionalProperties": True, "type": "object", "title": "Free"},
        },
        "required": ["free"],
        "title": "fArguments",
    }
    portable = portable_input_schema(original)
    assert portable == {
        "type": "object",
        "properties": {
            "c": {"properties": {"v": {**JSON_VALUE, "default": None}}, "type": "object", "default": None,
                  "additionalProperties": False},
            "n": {"type": "integer", "minimum": 1, "default": None},
            "free": {"additionalProperties": True, "type": "object"},
        },
        "required": ["free"],
        "additionalProperties": False,
    }  # fmt: skip
    before, after = Draft202012Validator(original), Draft202012Validator(portable)
    for args in [
        {"free": {}},
        {"free": {"a": [1, {"b": None}]}, "n": 3, "c": {"v": 5}},
        {"free": {}, "c": {"v": "x"}},
        {"free": {}, "c": {"v": [1, "a", {"k": 1}]}},
        {"free": {}, "c": {"v": True}},
    ]:
        assert before.is_valid(args) and after.is_valid(args), args
    for args in [
        {},
        {"free": 1},
        {"free": {}, "n": 0},
        {"free": {}, "n": "3"},
        {"free": {}, "c": {"v": 1, "w": 2}},
    ]:
        assert not after.is_valid(args), args


# -- output schemas -------------------------------------------------------------------------------


async def _result_corpus(hunter: Agent, risk: Agent) -> dict[str, list[dict[str, Any]]]:
    """Real results of every tool, from a small trading-desk session."""
    corpus: dict[str, list[dict[str, Any]]] = {}

    async def call(agent: Agent, tool: str, **args: Any) -> dict[str, Any]:
        result = await agent.ok(tool, **args)  # the SDK client validates it against the flat schema
        corpus.setdefault(tool, []).append(result)
        return result

    await call(risk, "get_state")
    ctx = {"market": {"trend": "bullish", "vol": 0.42}, "whale_count": 7, "tags": ["a", None]}
    for i in range(3):
        await call(
            hunter,
            "log_decision",
            decision_type="SOURCE_SELECTION",
            context=ctx,
            reasoning={"selected": ["whaleMovements"], "score": i / 3},
            decision_id=f"hunt-{i}",
            **({"outcome": {"success": True, "quality_score": 0.8}} if i == 2 else {}),
        )
    await call(
        hunter, "record_outcome", decision_id="hunt-0", success=True, quality_score=0.9, latency_ms=800
    )
    await call(hunter, "record_outcome", decision_id="hunt-1", success=False, errors=["slippage"])
    signal = await call(
        hunter,
        "publish_signal",
        signal_type="WHALE_ACTIVITY",
        data={"whale_count": 7},
        target_agents=["risk-manager"],
        confidence=0.85,
        severity="high",
    )
    await call(risk, "recall_stm")
    await call(risk, "read_inbox")
    await call(risk, "ack_signal", signal_id=signal["signal_id"], status="processed")
    await call(hunter, "store_stm", key="plan", value="buy the dip")
    await call(hunter, "store_stm", key="numbers", value=[1, 2.5, None])
    await call(hunter, "recall_stm")
    await call(hunter, "recall_stm", decision_type="SOURCE_SELECTION", limit=1)
    await call(hunter, "search_decisions")
    await call(hunter, "search_decisions", success=True)
    await call(
        hunter, "update_state", patch={"current": {"cycle": 1}}, expected_version=0, checkpoint="first"
    )
    await call(hunter, "get_state")
    pattern = await call(
        hunter,
        "store_pattern",
        description="Whales in a bullish trend predict a pump",
        conditions=[{"field": "market.trend", "op": "eq", "value": "bullish"}, {"field": "whale_count", "op": "gte", "value": 5}],
        outcomes={"pump_probability": 0.78},
        confidence=0.7,
        success_rate=0.78,
        sample_size=23,
    )  # fmt: skip
    await call(hunter, "share_pattern", pattern_id=pattern["pattern_id"], shared_with=["*"])
    await call(risk, "recall_patterns", context={"market": {"trend": "bullish"}, "whale_count": 9})
    await call(hunter, "pattern_history", pattern_id=pattern["pattern_id"])
    await call(hunter, "learn_patterns", min_samples=5)
    await call(hunter, "get_analytics", window="24h")
    await call(hunter, "get_analytics", window="24h", include_series=True)
    # Results are summaries now: more of them keep the mutation count of the check up.
    await call(hunter, "store_stm", key="big", value={"blob": "x" * 500})
    await call(hunter, "recall_stm", limit=4)
    await call(risk, "read_inbox", status="processed")
    await call(hunter, "search_decisions", oldest_first=True, limit=2)
    await call(hunter, "consume_budget", key="exchange/orders", limit=1, window="1m")
    await call(hunter, "consume_budget", key="exchange/orders", limit=1, window="1m")  # refused
    return corpus


def _mutations(value: Any) -> Iterator[Any]:
    """Copies of ``value`` with one thing wrong: each leaf's type changed, each key dropped, an
    unknown key added to each object."""
    swaps: dict[type, Any] = {
        str: 12345,
        int: "12345",
        float: "1.5",
        bool: "yes",
        type(None): [],
        list: "[]",
        dict: 5,
    }

    def walk(node: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str, Any]]:
        yield path, "swap", swaps[type(node)]
        if isinstance(node, dict):
            for key, sub in node.items():
                yield path, "drop", key
                yield from walk(sub, (*path, key))
            yield path, "add", "unexpected_key"
        elif isinstance(node, list):
            for i, sub in enumerate(node[:3]):
                yield from walk(sub, (*path, i))

    for path, kind, arg in list(walk(value, ())):
        mutated = copy.deepcopy(value)
        if not path and kind == "swap":
            continue
        parent = mutated
        for step in path[:-1] if kind == "swap" else path:
            parent = parent[step]
        if kind == "swap":
            parent[path[-1]] = arg
        elif kind == "drop":
            del parent[arg]
        else:
            parent[arg] = 1
        yield mutated


async def test_flat_output_schemas_accept_exactly_the_same_results(tmp_path: Path) -> None:
    async with desk(tmp_path) as (server, [hunter, risk]):
        corpus = await _result_corpus(hunter, risk)
        published = {t.name: t.output_schema for t in (await hunter.client.list_tools()).tools}
    checked = rejected = 0
    for tool in server._tool_manager.list_tools():
        flat = published[tool.name]
        assert flat is not None and tool.name in corpus, f"no result of {tool.name} in the corpus"
        text = json.dumps(flat)
        assert "$ref" not in text and '{"type": "null"}' not in text, tool.name
        # The schema pydantic derives from the tool's result model (agent_memory.api), unrewritten.
        original = TOOLS[tool.name].result.model_json_schema()
        assert flat == flat_output_schema(original)
        before, after = Draft202012Validator(original), Draft202012Validator(flat)
        for result in corpus[tool.name]:
            assert before.is_valid(result) and after.is_valid(result), tool.name
            for mutated in _mutations(result):
                verdict = before.is_valid(mutated)
                assert after.is_valid(mutated) == verdict, (tool.name, mutated)
                checked += 1
                rejected += not verdict
    assert checked > 1000 and rejected > checked // 4, (checked, rejected)


async def test_arguments_are_still_validated_by_the_tool_model(tmp_path: Path) -> None:
    async with desk(tmp_path) as (_, [hunter, _risk]):
        created = await hunter.ok(
            "store_pattern",
            description="Many whales",
            conditions=[{"field": "whale_count", "op": "gte", "value": 5}],
            outcomes={},
            confidence=0.5,
            success_rate=0.5,
            sample_size=3,
        )
        assert created["pattern_id"]
        refused = await hunter.error(
            "store_pattern",
            description="Too sure",
            conditions=[],
            outcomes={},
            confidence=1.5,
            success_rate=0.5,
            sample_size=3,
        )
        assert "confidence" in refused


def test_recursive_and_foreign_refs_are_refused() -> None:
    from agent_memory.server.schemas import SchemaError

    recursive = {
        "$defs": {"N": {"properties": {"next": {"$ref": "#/$defs/N"}}, "type": "object"}},
        "$ref": "#/$defs/N",
    }
    with pytest.raises(SchemaError, match="recursive"):
        flat_output_schema(recursive)
    with pytest.raises(SchemaError, match="only local"):
        flat_output_schema({"$ref": "https://example.com/schema"})
