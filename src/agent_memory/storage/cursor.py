"""Opaque pagination cursors.

A cursor wraps the engine's continuation key and a short digest of the query it belongs to, so a
cursor handed to a different query is refused with a clear message instead of returning a wrong
page. It is base64url JSON: opaque to callers, identical on every backend.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from agent_memory.errors import InvalidInput
from agent_memory.storage.engine import Key


def query_digest(*parts: Any) -> str:
    raw = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def encode(key: Key, digest: str) -> str:
    raw = json.dumps({"k": key, "q": digest}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(cursor: str | None, digest: str) -> Key | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        key, owner = data["k"], data["q"]
        if not isinstance(key, dict) or not all(isinstance(v, str) for v in key.values()):
            raise ValueError("bad key")
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(
            "cursor is not valid: pass the next_cursor of a previous page unchanged, or omit it"
        ) from exc
    if owner != digest:
        raise InvalidInput(
            "cursor belongs to a different query: repeat the same arguments with it, or omit it to start over"
        )
    return {str(k): str(v) for k, v in key.items()}
