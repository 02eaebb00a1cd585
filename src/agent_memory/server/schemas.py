"""Tool schemas that every client library and model provider can read.

pydantic writes JSON schemas for pydantic: ``$ref``/``$defs``, ``anyOf: [X, {"type": "null"}]``
for every optional argument, untyped nodes for ``Any``, a generated ``title`` on every node and no
``additionalProperties: false`` at the root. Provider converters read a subset of JSON Schema and
degrade the rest silently (Gemini's function declarations drop ``$defs`` and turn untyped nodes into
strings; OpenAI's strict mode refuses objects without ``additionalProperties: false``).

``portable_input_schema`` rewrites an argument schema into that common subset without changing what
a model may send; ``flat_output_schema`` rewrites a result schema so that it accepts exactly the same
results and is cheaper to validate (the SDK client validates every result against it);
``apply_portable_schemas`` applies both to every tool registered on a server. docs/SCHEMAS.md says
what each provider makes of the result.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata
from pydantic import PrivateAttr, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from agent_memory.api.validation import describe
from agent_memory.tools._common import ARGUMENT_PROBLEMS

__all__ = [
    "JSON_VALUE",
    "SchemaProfile",
    "apply_portable_schemas",
    "flat_output_schema",
    "portable_input_schema",
    "strict_input_schema",
]

JsonSchema = dict[str, Any]
SchemaProfile = Literal["portable", "strict"]

# A JSON value of any kind, spelled as a union of typed branches: an untyped node (``{}``) is read
# as a string by Gemini's converters, a ``type`` list is refused by langchain-google-genai's, and a
# null branch makes it keep only the last branch. So: no null branch (leave the argument out
# instead), and list items are scalars or objects (nested lists are accepted, not advertised).
_SCALARS: list[JsonSchema] = [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]
JSON_VALUE: JsonSchema = {
    "anyOf": [
        *_SCALARS,
        {"type": "object", "additionalProperties": True},
        {"type": "array", "items": {"anyOf": [*_SCALARS, {"type": "object", "additionalProperties": True}]}},
    ]
}

_DEFS_PREFIX = "#/$defs/"
_COMBINATORS = ("anyOf", "oneOf", "allOf", "$ref", "not", "if")
# Keywords whose value is a map of names to schemas (the names are data, not keywords).
_SCHEMA_MAPS = ("properties", "patternProperties")
# Keywords whose value is one schema.
_SCHEMA_VALUES = ("items", "additionalProperties", "contains", "propertyNames", "unevaluatedProperties")
# Keywords whose value is a list of schemas.
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")


class SchemaError(ValueError):
    """A schema this module cannot rewrite faithfully (a recursive or dangling ``$ref``)."""


def portable_input_schema(schema: Mapping[str, Any]) -> JsonSchema:
    """The argument schema in the subset every provider reads, accepting what the original accepts.

    - every ``$ref`` inlined, ``$defs`` gone;
    - ``additionalProperties: false`` at the root and on every object with declared properties;
      free-form objects (no declared properties) keep ``additionalProperties: true``;
    - an optional argument whose default is null loses its ``anyOf: [X, null]`` wrapper: a model
      leaves it out instead of sending null;
    - any other ``anyOf: [X, null]`` over a simply typed X becomes ``type: [t, "null"]``;
    - an untyped node (``Any``) becomes :data:`JSON_VALUE`;
    - generated ``title``s dropped; descriptions, defaults, bounds, enums and formats kept.
    """
    root = copy.deepcopy(dict(schema))
    defs = root.pop("$defs", {})
    out: JsonSchema = _rewrite(root, defs, input_side=True, seen=())
    out["type"] = "object"
    out.setdefault("properties", {})
    out["additionalProperties"] = False
    return out


def flat_output_schema(schema: Mapping[str, Any]) -> JsonSchema:
    """The result schema with refs inlined and null wrappers flattened to ``type: [t, "null"]``.

    It accepts exactly the results the original accepts (no keyword that changes what validates is
    added or removed), and validates faster: no reference resolution, no ``anyOf`` branches. Titles
    are dropped but the root's (the result's model name)."""
    root = copy.deepcopy(dict(schema))
    defs = root.pop("$defs", {})
    out: JsonSchema = _rewrite(root, defs, input_side=False, seen=())
    if "title" in root:
        out["title"] = root["title"]  # the result's model name, kept once (docs name it)
    return out


def apply_portable_schemas(server: MCPServer[Any], profile: SchemaProfile = "portable") -> None:
    """Publish portable input schemas and flat output schemas for every tool on ``server``.

    Call it once every tool is registered. With the ``portable`` profile only the published schemas
    change: arguments are still validated by the SDK's pydantic model of each tool, results by its
    output model. The ``strict`` profile publishes :func:`strict_input_schema` instead and decodes
    what it asks for (JSON text, nulls for "not given") before that validation."""
    for tool in server._tool_manager.list_tools():  # the SDK has no public way to reach a Tool
        portable = portable_input_schema(tool.parameters)
        metadata = tool.fn_metadata
        if metadata.output_schema is not None:
            # FuncMetadata reads output_schema live; Tool caches it once read, so drop that cache.
            metadata.output_schema = flat_output_schema(metadata.output_schema)
            tool.__dict__.pop("output_schema", None)
        if profile == "strict":
            tool.parameters = strict_input_schema(portable)
            tool.fn_metadata = _StrictArguments.wrapping(metadata, portable)
        else:
            tool.parameters = portable


def _rewrite(node: Any, defs: Mapping[str, Any], *, input_side: bool, seen: tuple[str, ...]) -> Any:
    if not isinstance(node, dict):
        return node
    node = dict(node)
    ref = node.pop("$ref", None)
    if ref is not None:
        name = ref.removeprefix(_DEFS_PREFIX) if isinstance(ref, str) else None
        if name is None or name == ref or name not in defs:
            raise SchemaError(f"cannot inline $ref {ref!r}: only local #/$defs/ references are supported")
        if name in seen:
            raise SchemaError(f"cannot inline recursive $ref {ref!r}")
        target = _rewrite(defs[name], defs, input_side=input_side, seen=(*seen, name))
        # Keywords beside a $ref (description, default) describe this use of the definition.
        siblings = _rewrite(node, defs, input_side=input_side, seen=seen) if node else {}
        siblings.pop("title", None)
        return {**target, **siblings}

    node.pop("title", None)
    node.pop("$defs", None)
    for key in _SCHEMA_MAPS:
        if isinstance(node.get(key), dict):
            node[key] = {
                name: _rewrite(sub, defs, input_side=input_side, seen=seen) for name, sub in node[key].items()
            }
    for key in _SCHEMA_VALUES:
        if isinstance(node.get(key), dict):
            node[key] = _rewrite(node[key], defs, input_side=input_side, seen=seen)
    for key in _SCHEMA_LISTS:
        if isinstance(node.get(key), list):
            node[key] = [_rewrite(sub, defs, input_side=input_side, seen=seen) for sub in node[key]]

    node = _flatten_nullable(node, input_side=input_side)

    if input_side:
        if _is_untyped(node):
            extra = {k: v for k, v in node.items() if k in ("description", "default", "examples")}
            return {**copy.deepcopy(JSON_VALUE), **extra}
        if node.get("type") == "object" and "properties" in node:
            node["additionalProperties"] = False
            if node.get("required") == []:
                del node["required"]
    return node


def _flatten_nullable(node: JsonSchema, *, input_side: bool) -> JsonSchema:
    """``anyOf: [X, {"type": "null"}]`` (either order) with X simply typed, merged into one node."""
    branches = node.get("anyOf")
    if not isinstance(branches, list) or len(branches) != 2 or {"type": "null"} not in branches:
        return node
    (inner,) = [b for b in branches if b != {"type": "null"}]
    if not _is_simply_typed(inner):
        return node
    outer = {k: v for k, v in node.items() if k != "anyOf"}
    if input_side and outer.get("default", 0) is None:
        # Optional with a null default: leaving the argument out means null, so the wrapper is
        # needless, and a model that omits it is what every provider handles best. The
        # ``default: null`` stays: converters read "has a default" as "not required".
        return {**inner, **outer}
    if "const" in inner:
        return node  # const cannot take a second value; keep the wrapper
    merged = {**inner, **outer}
    types = inner["type"] if isinstance(inner["type"], list) else [inner["type"]]
    merged["type"] = [*types, "null"] if "null" not in types else types
    if "enum" in inner and None not in inner["enum"]:
        merged["enum"] = [*inner["enum"], None]
    return merged


def _is_simply_typed(node: Any) -> bool:
    return isinstance(node, dict) and "type" in node and not any(k in node for k in _COMBINATORS)


def _is_untyped(node: JsonSchema) -> bool:
    return not any(k in node for k in ("type", "enum", "const", *_COMBINATORS))


# -- the strict profile ---------------------------------------------------------------------------

_JSON_TEXT_HINT = 'JSON text, e.g. "{\\"a\\": 1}" for an object, "5" for a number, "\\"x\\"" for a string.'


def strict_input_schema(portable: Mapping[str, Any]) -> JsonSchema:
    """A portable input schema in the form OpenAI's strict mode requires.

    Every property required (an optional one as ``type: [t, "null"]``: null means "not given"),
    ``additionalProperties: false`` on every object, no ``default``; free-form objects and
    any-value fields, which strict mode cannot express, become strings holding JSON text."""
    out: JsonSchema = _strictify(copy.deepcopy(dict(portable)))
    return out


def _is_open(node: Mapping[str, Any]) -> bool:
    """A free-form object or an any-value node: what strict mode cannot express."""
    if (
        node.get("type") == "object"
        and node.get("additionalProperties") is True
        and not node.get("properties")
    ):
        return True
    return any(isinstance(b, dict) and _is_open(b) for b in node.get("anyOf", []))


def _strictify(node: JsonSchema) -> JsonSchema:
    description = node.get("description")
    default = node.pop("default", None)
    if default is not None:
        said = f"Default: {json.dumps(default)}."
        node["description"] = description = f"{description} {said}" if description else said
    if _is_open(node):
        text = f"{description} As {_JSON_TEXT_HINT}" if description else f"As {_JSON_TEXT_HINT}"
        return {"type": "string", "description": text}
    if isinstance(node.get("items"), dict):
        node["items"] = _strictify(node["items"])
    if isinstance(node.get("anyOf"), list):
        node["anyOf"] = [_strictify(b) for b in node["anyOf"]]
    properties = node.get("properties")
    if isinstance(properties, dict):
        required = set(node.get("required", []))
        node["properties"] = {
            name: _strictify(sub) if name in required else _nullable(_strictify(sub))
            for name, sub in properties.items()
        }
        node["required"] = list(properties)
        node["additionalProperties"] = False
    return node


def _nullable(node: JsonSchema) -> JsonSchema:
    if "anyOf" in node:
        node["anyOf"] = [*node["anyOf"], {"type": "null"}]
    elif isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]
        if "enum" in node:
            node["enum"] = [*node["enum"], None]
    return node


def _relax(
    value: Any, node: Mapping[str, Any], loc: tuple[str | int, ...], errors: list[InitErrorDetails]
) -> Any:
    """Strict-profile arguments back into what the tool's model takes (the inverse of _strictify)."""
    if _is_open(node):
        if not isinstance(value, str):
            return value  # already a JSON value: the tool's own validation judges it
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            message = 'must be JSON text (a string such as {"a": 1}, 5 or "text"), got {got}'
            errors.append(
                InitErrorDetails(
                    type=PydanticCustomError("json_text", message, {"got": value[:80]}), loc=loc, input=value
                )
            )
            return value
    properties = node.get("properties")
    if isinstance(properties, dict) and isinstance(value, dict):
        required = set(node.get("required", []))
        return {
            key: _relax(sub, properties[key], (*loc, key), errors) if key in properties else sub
            for key, sub in value.items()
            if not (sub is None and key in properties and key not in required)  # null = not given
        }
    if isinstance(node.get("items"), dict) and isinstance(value, list):
        return [_relax(sub, node["items"], (*loc, i), errors) for i, sub in enumerate(value)]
    return value


class _StrictArguments(FuncMetadata):
    """A tool's FuncMetadata that first turns strict-profile arguments back into what the tool
    takes; everything else is the wrapped metadata's."""

    _inner: FuncMetadata = PrivateAttr()
    _portable: JsonSchema = PrivateAttr()

    @classmethod
    def wrapping(cls, inner: FuncMetadata, portable: JsonSchema) -> _StrictArguments:
        wrapper = cls(
            arg_model=inner.arg_model,
            output_schema=inner.output_schema,
            output_model=inner.output_model,
            wrap_output=inner.wrap_output,
        )
        wrapper._inner, wrapper._portable = inner, portable
        return wrapper

    def validate_arguments(self, arguments_to_validate: dict[str, Any]) -> dict[str, Any]:
        errors: list[InitErrorDetails] = []
        relaxed = _relax(arguments_to_validate, self._portable, (), errors)
        arguments = self._inner.validate_arguments(relaxed)
        if errors:
            # The tool reports them in its own words, as data (tools._common.run).
            problem = ValidationError.from_exception_data(f"{self.arg_model.__name__}", errors)
            arguments[ARGUMENT_PROBLEMS] = describe(problem)
        return arguments

    async def call_fn(
        self,
        fn: Callable[..., Any | Awaitable[Any]],
        fn_is_async: bool,
        arguments: dict[str, Any],
        arguments_to_pass_directly: dict[str, Any] | None = None,
    ) -> Any:
        return await self._inner.call_fn(fn, fn_is_async, arguments, arguments_to_pass_directly)

    def convert_result(self, result: Any) -> Any:
        return self._inner.convert_result(result)
