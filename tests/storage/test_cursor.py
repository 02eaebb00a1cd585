"""Cursor digests: the same query's digest in any process and version (a cursor outlives the
server that made it), whether remembered or not."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from agent_memory.storage import cursor as cursors
from agent_memory.storage import keys


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
        # What json escapes and orjson writes as is (DEL), or both escape (quotes, backslashes,
        # control characters), or orjson refuses (a lone surrogate): the digest is json's.
        ("state", None, "notes#\x7f", None, None, None, True, None),
        ("state", None, 'notes#"q"\\', "\n\t\x1f", None, None, False, None),
        ("state", None, "notes#\ud800", None, None, None, True, None),
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


def test_times_are_written_as_ever() -> None:
    """keys.iso writes a time in UTC with a fraction by orjson, any other by isoformat: the same
    text either way (sort keys of stored items, and query bounds, depend on it)."""

    def as_written(t: datetime) -> str:
        utc = t.astimezone(UTC)
        if utc.year < 1000:
            return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return utc.isoformat(timespec="microseconds")[:26] + "Z"

    plus3 = timezone(timedelta(hours=3))
    for t in (
        datetime(2026, 12, 2, 7, 54, 30, 481339, tzinfo=UTC),
        datetime(2026, 12, 2, 7, 54, 30, 1000, tzinfo=UTC),
        datetime(2026, 12, 2, 7, 54, 30, tzinfo=UTC),
        datetime(2026, 12, 2, 1, 54, 30, 5, tzinfo=plus3),
        datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        datetime(1000, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ):
        text = as_written(t)
        assert keys.iso(t) == text, t
        assert keys.bucket(t, "hour") == text[: text.index("T") + 3]
