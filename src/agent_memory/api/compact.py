"""How results are made small for a model's context: previews, rounding, no nulls.

Every tool result goes through :func:`compact` (structured content) and :func:`to_text` (the text
block a model reads), so a result never carries ``null``s, long floats or indentation.
"""

from __future__ import annotations

import json
import math
from typing import Any

PREVIEW_CHARS = 160
"""Longest preview of a free-form field (context, reasoning, data, a note's value) in a list."""
SIGNIFICANT_DIGITS = 4
"""Floats in results keep this many significant digits (a rate of 0.7834, a latency of 1210 ms)."""


def round_float(value: float) -> float | int:
    if value == 0 or not math.isfinite(value):
        return value
    digits = SIGNIFICANT_DIGITS - math.floor(math.log10(abs(value))) - 1
    rounded = round(value, max(digits, 0))
    return int(rounded) if digits <= 0 else rounded


_AS_IS = frozenset({str, int, bool})
"""Leaf types :func:`compact` returns unchanged: tested by exact type, before any call, since most
members of a result are such leaves (a page of summaries holds hundreds)."""


def compact(value: Any) -> Any:
    """Drop ``None`` members of objects and round floats, recursively (lists keep their items)."""
    kind = type(value)
    if kind is dict:
        return {k: v if type(v) in _AS_IS else compact(v) for k, v in value.items() if v is not None}
    if kind is list:
        return [v if type(v) in _AS_IS else compact(v) for v in value]
    if kind is float:
        return round_float(value)
    if isinstance(value, dict):
        return {k: compact(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [compact(v) for v in value]
    if isinstance(value, float):
        return round_float(value)
    return value


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
"""One encoder for every result: ``json.dumps`` with these options builds a new one per call."""


def to_text(value: Any) -> str:
    """Compact JSON: no spaces, no ASCII escaping (a model pays per character)."""
    return _ENCODER.encode(value)


def preview(value: Any, limit: int = PREVIEW_CHARS) -> tuple[Any, bool]:
    """``(value, False)`` when its JSON fits in ``limit`` characters, else ``(a string of its first
    characters ending in an ellipsis, True)``: a list stays bounded whatever was stored."""
    text = value if isinstance(value, str) else to_text(value)
    if len(text) <= limit:
        return value, False
    return text[: limit - 1] + "…", True
