"""The real server's tools/list, converted by the client libraries people connect agents with.

Each library is optional (the ``clients`` extra); a test skips, naming the library, when it is not
installed. What the conversions cannot express is in docs/SCHEMAS.md, and asserted here as exactly
that: a new loss shows up as a failure."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from agent_memory.server.app import build_server
from agent_memory.storage.store import MemoryStore
from tests.fixtures.sqlite import sqlite_engine
from tests.support import FakeClock, settings_for

# The tools with a free-form object or an any-value argument: OpenAI's strict mode cannot express
# those (see docs/SCHEMAS.md), so strict converters refuse them and nothing else.
OPEN_ARGUMENT_TOOLS = {
    "log_decision",
    "store_stm",
    "store_pattern",
    "recall_patterns",
    "publish_signal",
    "update_state",
}


def _need(module: str, distribution: str) -> Any:
    return pytest.importorskip(
        module, reason=f"{distribution} is not installed (pip install -e '.[clients]')"
    )


@pytest.fixture
async def tools(tmp_path: Path) -> AsyncIterator[list[Any]]:
    """tools/list of the real server on SQLite, through the SDK client."""
    clock = FakeClock()
    async with sqlite_engine(tmp_path / "memory.db") as engine:
        server = build_server(
            settings_for(tmp_path, agent_id="hunter"), store=MemoryStore(engine, clock), clock=clock
        )
        async with Client(server) as client:
            listed = (await client.list_tools()).tools
    assert len(listed) >= 16
    yield listed


def _has_open_argument(schema: dict[str, Any]) -> bool:
    def walk(node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            yield node
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    return any(node.get("additionalProperties") is True for node in walk(schema.get("properties", {})))


# -- openai-agents --------------------------------------------------------------------------------


async def test_openai_agents_strict_conversion(tools: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    _need("agents", "openai-agents")
    from agents.exceptions import UserError
    from agents.mcp import MCPServerStdio, MCPUtil
    from agents.strict_schema import ensure_strict_json_schema

    # Never started: to_function_tool only reads its settings (approval policy, error function).
    server = MCPServerStdio(params={"command": sys.executable, "args": ["-m", "agent_memory.cli", "serve"]})
    strict, fell_back = set(), set()
    for tool in tools:
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="openai.agents"):
            function_tool = MCPUtil.to_function_tool(tool, server, convert_schemas_to_strict=True)
        if function_tool.strict_json_schema:
            strict.add(tool.name)
            assert not [r for r in caplog.records if r.levelno >= logging.INFO], (tool.name, caplog.text)
            schema = function_tool.params_json_schema
            assert schema["additionalProperties"] is False
            assert set(schema["required"]) == set(schema["properties"]), tool.name
        else:
            fell_back.add(tool.name)
            # The only reason allowed: an open object, which strict mode cannot express. (The
            # library logs no reason unless told to log tool data; ask its converter directly.)
            with pytest.raises(UserError, match="permits undeclared properties"):
                ensure_strict_json_schema(
                    json.loads(json.dumps(tool.input_schema)), _reject_open_objects=True
                )
    assert fell_back == {t.name for t in tools if _has_open_argument(t.input_schema)} == OPEN_ARGUMENT_TOOLS
    assert strict == {t.name for t in tools} - OPEN_ARGUMENT_TOOLS
    assert {"get_state", "get_analytics", "recall_stm", "read_inbox", "search_decisions"} <= strict


# -- pydantic-ai ----------------------------------------------------------------------------------


async def test_pydantic_ai_mcp_toolset_and_provider_transforms(tmp_path: Path) -> None:
    _need("pydantic_ai", "pydantic-ai-slim")
    _need("fastmcp", "pydantic-ai-slim[mcp]")
    from fastmcp.client.transports import StdioTransport
    from pydantic_ai import Agent
    from pydantic_ai.mcp import MCPToolset
    from pydantic_ai.models.test import TestModel
    from pydantic_ai.profiles.google import GoogleJsonSchemaTransformer
    from pydantic_ai.profiles.openai import OpenAIJsonSchemaTransformer

    env = {
        **os.environ,
        "AGENT_MEMORY_SQLITE_PATH": str(tmp_path / "memory.db"),
        "AGENT_MEMORY_AGENT_ID": "hunter",
    }
    transport = StdioTransport(command=sys.executable, args=["-m", "agent_memory.cli", "serve"], env=env)
    model = TestModel(call_tools=[])
    agent = Agent(model, toolsets=[MCPToolset(transport, init_timeout=60)])  # a loaded machine starts slowly
    await agent.run("recall your memory")
    params = model.last_model_request_parameters
    assert params is not None
    definitions = {t.name: t for t in params.function_tools}
    assert len(definitions) >= 16

    for name, definition in definitions.items():
        schema = definition.parameters_json_schema
        # What pydantic-ai's OpenAI models send: the schema unchanged but for an empty
        # ``properties`` on free-form objects, not strict when an argument has a default (an
        # optional argument is what strict mode cannot say); a tool whose arguments are all
        # required and typed (share_pattern) is strict-compatible as it is.
        openai = OpenAIJsonSchemaTransformer(json.loads(json.dumps(schema)), strict=None)
        assert _no_empty_properties(openai.walk()) == _no_empty_properties(schema), name
        all_required = set(schema.get("required", [])) == set(schema["properties"])
        assert openai.is_strict_compatible is all_required, name
        # What its Google models send: every node keeps its type.
        google = GoogleJsonSchemaTransformer(json.loads(json.dumps(schema))).walk()
        for path, node in _json_nodes(google):
            assert "type" in node or "anyOf" in node, (name, path)

    store_pattern = GoogleJsonSchemaTransformer(definitions["store_pattern"].parameters_json_schema).walk()
    value = store_pattern["properties"]["conditions"]["items"]["properties"]["value"]
    assert {"type": "number"} in value["anyOf"] and {"type": "boolean"} in value["anyOf"], value


def _no_empty_properties(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _no_empty_properties(v) for k, v in schema.items() if not (k == "properties" and v == {})}
    if isinstance(schema, list):
        return [_no_empty_properties(v) for v in schema]
    return schema


# -- langchain --------------------------------------------------------------------------------------


def _langchain_tool(tool: Any) -> Any:
    """The StructuredTool that langchain-mcp-adapters' load_mcp_tools builds: the MCP input schema
    as args_schema. (The adapters package itself requires mcp<2, so it cannot be installed beside
    this server's SDK; this is its conversion, on langchain-core's real tool class.)"""
    from langchain_core.tools import StructuredTool

    async def call(**_: Any) -> str:  # pragma: no cover - only the schema is under test
        return ""

    return StructuredTool(
        name=tool.name, description=tool.description or "", args_schema=tool.input_schema, coroutine=call
    )


async def test_langchain_tools_keep_the_schema(tools: list[Any]) -> None:
    _need("langchain_core", "langchain-core")
    from langchain_core.utils.function_calling import convert_to_openai_tool

    for tool in tools:
        converted = convert_to_openai_tool(_langchain_tool(tool))["function"]
        assert converted["name"] == tool.name
        assert converted["parameters"]["properties"] == tool.input_schema["properties"], tool.name
        assert converted["parameters"].get("required", []) == tool.input_schema.get("required", []), tool.name


# -- Gemini -----------------------------------------------------------------------------------------


def _genai_nodes(schema: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    yield path, schema
    for name, sub in (schema.properties or {}).items():
        yield from _genai_nodes(sub, f"{path}/{name}")
    if schema.items is not None:
        yield from _genai_nodes(schema.items, f"{path}[]")
    for i, sub in enumerate(schema.any_of or []):
        yield from _genai_nodes(sub, f"{path}|{i}")


def _json_nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in (schema.get("properties") or {}).items():
        yield from _json_nodes(sub, f"{path}/{name}")
    if isinstance(schema.get("items"), dict):
        yield from _json_nodes(schema["items"], f"{path}[]")
    for i, sub in enumerate(schema.get("anyOf") or []):
        yield from _json_nodes(sub, f"{path}|{i}")


def _assert_gemini_kept_types(name: str, source: dict[str, Any], converted: Any) -> None:
    """Every node of the JSON schema is in the Gemini schema with the same type; no number or
    any-value node became a string."""
    got = dict(_genai_nodes(converted))
    for path, node in _json_nodes(source):
        assert path in got, f"{name}{path} dropped"
        if "type" in node:
            assert got[path].type is not None and got[path].type.value.lower() == node["type"], (name, path)
        if "anyOf" in node:
            assert len(got[path].any_of or []) == len(node["anyOf"]), (name, path)


async def test_gemini_langchain_conversion(tools: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    _need("langchain_google_genai", "langchain-google-genai")
    from langchain_core.utils.function_calling import convert_to_openai_tool
    from langchain_google_genai._function_utils import convert_to_genai_function_declarations

    # ChatGoogleGenerativeAI.bind_tools: convert_to_openai_tool, then the genai declarations.
    with caplog.at_level(logging.WARNING):
        declared = convert_to_genai_function_declarations(
            [convert_to_openai_tool(_langchain_tool(t)) for t in tools]
        )
    declarations = {d.name: d for d in declared[0].function_declarations or []}
    assert set(declarations) == {t.name for t in tools}
    # The one thing Gemini's function schema has no field for: additionalProperties.
    for record in caplog.records:
        assert record.getMessage() == "Key 'additionalProperties' is not supported in schema, ignoring"
    for tool in tools:
        parameters = declarations[tool.name].parameters
        if not tool.input_schema["properties"]:
            continue
        _assert_gemini_kept_types(tool.name, tool.input_schema, parameters)
    stm_value = declarations["store_stm"].parameters.properties["value"]
    assert {s.type.value for s in stm_value.any_of} == {"STRING", "NUMBER", "BOOLEAN", "OBJECT", "ARRAY"}
    condition = declarations["store_pattern"].parameters.properties["conditions"].items
    assert "NUMBER" in {s.type.value for s in condition.properties["value"].any_of}
    assert declarations["record_outcome"].parameters.properties["quality_score"].type.value == "NUMBER"
    assert "quality_score" not in (
        declarations["log_decision"].parameters.properties["outcome"].required or []
    )


# Keywords google-genai's JSONSchema model has no field for (its classic Schema cannot hold them;
# FunctionDeclaration.parameters_json_schema passes them through): ttl_hours > 0.
GENAI_UNSUPPORTED = {"exclusiveMinimum"}


def _without(schema: Any, keywords: set[str]) -> Any:
    if isinstance(schema, dict):
        # A keyword is a key with a number value; a property of that name has a schema (a dict).
        return {
            k: _without(v, keywords) for k, v in schema.items() if k not in keywords or isinstance(v, dict)
        }
    if isinstance(schema, list):
        return [_without(v, keywords) for v in schema]
    return schema


async def test_gemini_google_genai_conversion(tools: list[Any]) -> None:
    _need("google.genai", "google-genai")
    from google.genai import types

    for tool in tools:
        source = _without(tool.input_schema, GENAI_UNSUPPORTED)
        # raise_error_on_unsupported_field: any keyword it would drop is an error, not a silent loss.
        schema = types.Schema.from_json_schema(
            json_schema=types.JSONSchema.model_validate(source),
            api_option="GEMINI_API",
            raise_error_on_unsupported_field=True,
        )
        if source["properties"]:
            _assert_gemini_kept_types(tool.name, source, schema)
        types.FunctionDeclaration(name=tool.name, description=tool.description, parameters=schema)
    condition_value = _without(
        next(t for t in tools if t.name == "store_pattern").input_schema, GENAI_UNSUPPORTED
    )
    converted = types.Schema.from_json_schema(json_schema=types.JSONSchema.model_validate(condition_value))
    value = converted.properties["conditions"].items.properties["value"]
    assert "NUMBER" in {s.type.value for s in value.any_of}
