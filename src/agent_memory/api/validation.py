"""Argument problems in our own words, the same on the server and in the Python client.

pydantic's messages name its own error types and link to its docs; a model acts better on
"confidence: must be at most 1 (got 1.5)". :func:`describe` turns a ``ValidationError`` of a
request model into one such line per problem (at most five).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

MAX_PROBLEMS = 5


def _num(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _got(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:39] + "…"


def _problem(err: ErrorDetails, valid: Iterable[str]) -> str:
    kind = err["type"]
    ctx: dict[str, Any] = dict(err.get("ctx") or {})
    value = err.get("input")
    if kind == "extra_forbidden":
        return f"unknown argument; valid arguments are: {', '.join(valid)}"
    if kind == "missing":
        return "is required"
    bound = {
        "less_than_equal": ("at most", "le"),
        "less_than": ("less than", "lt"),
        "greater_than_equal": ("at least", "ge"),
        "greater_than": ("greater than", "gt"),
    }.get(kind)
    if bound is not None:
        return f"must be {bound[0]} {_num(ctx[bound[1]])} (got {_got(value)})"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false (got {_got(value)})"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be an integer (got {_got(value)})"
    if kind in ("float_type", "float_parsing", "finite_number"):
        return f"must be a finite number (got {_got(value)})"
    if kind in ("string_type",):
        return f"must be a string (got {_got(value)})"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be an object (got {_got(value)})"
    if kind == "list_type":
        return f"must be a list (got {_got(value)})"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')} (got {_got(value)})"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "string_too_short":
        return f"must be at least {ctx.get('min_length')} characters"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} items"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} items"
    if kind == "string_pattern_mismatch":
        return f"has characters that are not allowed (got {_got(value)})"
    if kind.startswith("datetime") or kind.startswith("date_"):
        return f"must be an ISO 8601 time with zone, e.g. 2026-11-01T00:00:00Z (got {_got(value)})"
    if isinstance(ctx.get("error"), UnicodeError):
        return "text contains a lone surrogate (not valid Unicode): send valid UTF-8 text"
    if kind in ("value_error", "assertion_error"):
        return str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return str(err["msg"])


def describe(exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    """``"a: problem; b: problem"`` for the first problems of ``exc`` (no code prefix)."""
    valid = sorted(model.model_fields) if model is not None else []
    parts = []
    errors = exc.errors()
    for err in errors[:MAX_PROBLEMS]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__") or "arguments"
        parts.append(f"{where}: {_problem(err, valid)}")
    if len(errors) > MAX_PROBLEMS:
        parts.append(f"and {len(errors) - MAX_PROBLEMS} more")
    return "; ".join(parts)
