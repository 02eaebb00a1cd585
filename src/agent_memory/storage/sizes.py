"""A bounded measure of a value's size, to decide whether work on it may run on the event loop.

Work on a small value (validating a record, decoding a row) costs microseconds, less than handing
it to a worker thread and back; work on a large one costs milliseconds, during which every other
call on the event loop would wait. :func:`fits` tells the two apart by walking the value only
until the budget is spent, so asking costs little whatever the value's size.
"""

from __future__ import annotations

from typing import Any

INLINE_BUILD_BYTES = 8 * 1024
"""Approximate bytes of text and numbers up to which a record is built on the event loop."""


def fits(value: Any, budget: int) -> bool:
    """Whether ``value`` (JSON-like: dicts, lists, tuples, scalars, and objects counted as small)
    holds at most about ``budget`` bytes of strings, keys and numbers."""
    return _left(value, budget) >= 0


_SCALARS = frozenset({int, float, bool, type(None)})
"""Leaves counted as 8 bytes without a call (most members of a request are strings or these)."""


def _left(value: Any, budget: int) -> int:
    if isinstance(value, str):
        return budget - len(value)
    if isinstance(value, dict):
        for key, child in value.items():
            budget -= len(key) if isinstance(key, str) else 8
            kind = type(child)
            if kind is str:
                budget -= len(child)
            elif kind in _SCALARS:
                budget -= 8
            else:
                budget = _left(child, budget)
            if budget < 0:
                return budget
        return budget
    if isinstance(value, list | tuple):
        for child in value:
            budget -= 1
            kind = type(child)
            if kind is str:
                budget -= len(child)
            elif kind in _SCALARS:
                budget -= 8
            else:
                budget = _left(child, budget)
            if budget < 0:
                return budget
        return budget
    return budget - 8
