"""Cursor digests: the same query's digest in any process and version (a cursor outlives the
server that made it), whether remembered or not."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from agent_memory.storage import cursor as cursors


def _digest_as_written(*parts: Any) -> str:
    """The digest as cursors have always been made: what issued cursors carry."""
    raw = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:8]


def test_digests_are_the_json_digest_remembered_or_not() -> None:
    queries: list[tuple[Any, ...]] = [
        ("decisions", "gsi3", "agent:a#decisions", "2026-12-02T00:00:00.000000Z", None, None, False, True),
        ("decisions", "gsi3", "agent:a#decisions", "2026-12-02T00:00:00.000000Z", None, None, False, None),
        ("ltm", None, "agent:é#pattern", None, None, "a#", True, "own"),
        ("state", None, "notes#x", None, None, None, True, 1),  # 1 == True: not the same digest
        ("state", None, "notes#x", None, None, None, True, True),
        (
            "signals",
            None,
            "inbox#b",
            2.5,
            {"b": 1, "a": [1, None]},
            datetime(2026, 12, 2, tzinfo=UTC),
            ("t",),
        ),
        ("signals", None, "inbox#\u2028\x00", None, None, "pending#", False),
    ]
    for _ in range(2):  # the second time from what was remembered
        for parts in queries:
            assert cursors.query_digest(*parts) == _digest_as_written(*parts), parts
    assert cursors.query_digest(*queries[3]) != cursors.query_digest(*queries[4])


def test_a_cursor_encodes_its_key_and_decodes_back() -> None:
    known = "agent:bench#decisions"
    key = {
        "pk": "agent:bench#decision#T",
        "sk": "2026-12-02T07:54:30.481339Z#dec_1",
        "gsi3pk": known,
        "gsi3sk": "2026-12-02T07:54:30.481339Z#dec_1",
    }
    text = cursors.encode(key, "d1", known)
    assert text == "d1~5f~^k.20.#T~2026-12-02T07:54:30.481339Z#dec_1~^k.21.~=1"  # as issued before
    assert cursors.decode(text, "d1", known) == key
    odd = {"pk": "=x", "sk": "abcde"}  # values that start like a reference, and short prefixes
    assert cursors.decode(cursors.encode(odd, "d2", "abcdef"), "d2", "abcdef") == odd
