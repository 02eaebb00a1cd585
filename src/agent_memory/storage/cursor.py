"""Opaque pagination cursors, short enough for a model to copy.

A cursor wraps the engine's continuation key and a short digest of the query it belongs to, so a
cursor handed to a different query is refused with a clear message instead of returning a wrong
page. The key's values are written once (the index key of a query often repeats the table's sort
key) and without attribute names; the whole is base64url: opaque to callers, identical on every
backend.

A query whose bounds move with time (recall_stm's "last 24 h") puts the bound it was issued for
in front of the cursor (:func:`with_origin`), so every later page continues the same window.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from agent_memory.errors import InvalidInput
from agent_memory.storage.engine import Key

_NAMES = ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk")
_INVALID = "cursor is not valid: pass the next_cursor of a previous page unchanged, or omit it"


def query_digest(*parts: Any) -> str:
    raw = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:8]


def encode(key: Key, digest: str) -> str:
    mask = 0
    values: list[str | int] = []
    for bit, name in enumerate(_NAMES):
        if name in key:
            mask |= 1 << bit
            value = key[name]
            values.append(values.index(value) if value in values else value)
    raw = json.dumps([digest, mask, *values], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(cursor: str | None, digest: str) -> Key | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        owner, mask, *values = data
        names = [name for bit, name in enumerate(_NAMES) if mask & (1 << bit)]
        if len(names) != len(values) or not names:
            raise ValueError("bad key")
        resolved: list[str] = []
        for value in values:
            resolved.append(resolved[value] if isinstance(value, int) else value)
        if not all(isinstance(v, str) for v in resolved):
            raise ValueError("bad key")
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise InvalidInput(_INVALID) from exc
    if owner != digest:
        raise InvalidInput(
            "cursor belongs to a different query: repeat the same arguments with it, or omit it to start over"
        )
    return dict(zip(names, resolved, strict=True))


def with_origin(cursor: str | None, origin: datetime) -> str | None:
    """``cursor`` prefixed with the time bound it was issued for (milliseconds, base 36)."""
    if cursor is None:
        return None
    millis = int(origin.timestamp() * 1000)
    return f"{_base36(millis)}.{cursor}"


def split_origin(cursor: str | None) -> tuple[datetime | None, str | None]:
    """The time bound and the inner cursor of a :func:`with_origin` cursor."""
    if not cursor:
        return None, None
    head, sep, inner = cursor.partition(".")
    try:
        if not sep or not inner:
            raise ValueError("no origin")
        return datetime.fromtimestamp(int(head, 36) / 1000, UTC), inner
    except (ValueError, OverflowError, OSError) as exc:
        raise InvalidInput(_INVALID) from exc


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def floor_origin(origin: datetime) -> datetime:
    """``origin`` at the precision :func:`with_origin` keeps (a query uses this for page 1 too)."""
    return origin.replace(microsecond=origin.microsecond // 1000 * 1000)
