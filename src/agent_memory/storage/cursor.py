"""Opaque pagination cursors, short enough for a model to copy.

A cursor wraps the engine's continuation key and a short digest of the query it belongs to, so a
cursor handed to a different query is refused with a clear message instead of returning a wrong
page. The key's values are written once (the index key of a query often repeats the table's sort
key), without attribute names and sharing prefixes with the query's partition key, so a cursor
stays under about 100 characters. It is opaque to callers (they pass it back unchanged) and
identical on every backend.

A query whose bounds move with time (recall_stm's "last 24 h") puts the bound it was issued for
in front of the cursor (:func:`with_origin`), so every later page continues the same window.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

import orjson

from agent_memory.errors import InvalidInput
from agent_memory.memo import Memo
from agent_memory.storage.engine import Key

_NAMES = ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk")
_INVALID = "cursor is not valid: pass the next_cursor of a previous page unchanged, or omit it"


_DIGEST_ENCODE = (
    c_make_encoder(None, str, encode_basestring_ascii, None, ":", ",", True, False, True)
    if c_make_encoder is not None
    else None
)
"""The C encoder of ``json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))``,
made once (``json.dumps`` with options builds one per call, which cost more than the hash)."""
_REMEMBERED = frozenset((str, bool, type(None)))
_DIGESTS: Memo[tuple[Any, ...], str] = Memo(1024)
"""Digests remembered: most queries repeat (an agent's notes, its patterns), and a page that has a
successor needs its query's digest."""


def query_digest(*parts: Any) -> str:
    """A short digest of a query (its table, index, partition, bounds, order, filters): the same
    for the same query in any process and version, so a cursor outlives the server that made it."""
    for part in parts:
        if type(part) not in _REMEMBERED:  # (1 == True: only parts of these types are keys)
            return _digest(parts)
    found = _DIGESTS.get(parts)
    return _DIGESTS.keep(parts, _plain_digest(parts)) if found is None else found


def _plain_digest(parts: tuple[str | bool | None, ...]) -> str:
    """:func:`_digest` of parts that are strings, booleans and None, from orjson's encoding when
    it is the same text: orjson writes them as ``json`` does (compact) but for the characters
    ``json`` escapes and orjson does not (beyond ASCII, and DEL); any other escape holds a
    backslash, and a lone surrogate orjson refuses. orjson is warm in every call (it reads the
    rows), where the JSON encoder was cold code run once a call: a query bounded by a moving time
    (recall_stm's window) misses the memo every time (issue #14)."""
    try:
        raw = orjson.dumps(parts)
    except TypeError:  # (orjson.JSONEncodeError) a lone surrogate
        return _digest(parts)
    if raw.isascii() and b"\\" not in raw and b"\x7f" not in raw:
        return hashlib.sha256(raw).hexdigest()[:8]
    return _digest(parts)


def _digest(parts: tuple[Any, ...]) -> str:
    if _DIGEST_ENCODE is None:
        raw = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    else:
        raw = "".join(_DIGEST_ENCODE(parts, 0))
    return hashlib.sha256(raw.encode()).hexdigest()[:8]


def encode(key: Key, digest: str, known: str = "") -> str:
    """``digest~mask~v1~v2...``: each key value written once, as a back-reference (``=i``), as a
    shared prefix of ``known`` (the query's partition key) or of an earlier value plus the rest
    (``^k.n.rest``, ``^i.n.rest``), or literally."""
    mask = 0
    parts: list[str] = []
    values: list[str] = []
    for bit, name in enumerate(_NAMES):
        if name not in key:
            continue
        mask |= 1 << bit
        value = key[name]
        parts.append(_encode_value(value, known, values))
        values.append(value)
    return "~".join([digest, _base36(mask), *parts])


_SHORTEST_SHARED = 6
"""Shortest shared prefix written as a reference (a shorter one saves nothing)."""


def _encode_value(value: str, known: str, earlier: list[str]) -> str:
    if value in earlier:
        return f"={earlier.index(value)}"
    best, ref = _common_prefix_length(value, known), "k"
    for i, other in enumerate(earlier):
        n = _common_prefix_length(value, other)
        if n > best:
            best, ref = n, str(i)
    if best >= _SHORTEST_SHARED:
        return f"^{ref}.{best}.{value[best:]}"
    return "!" + value if value[:1] in ("=", "^", "!") else value


def _common_prefix_length(a: str, b: str) -> int:
    """The length of the prefix ``a`` and ``b`` share, or 0 when it is shorter than
    :data:`_SHORTEST_SHARED` (most pairs of a key's values share nothing)."""
    # A binary search over slice comparisons (done in C): a cursor's keys are ~100 characters,
    # and a loop over characters was a tenth of a page's CPU.
    if a[:_SHORTEST_SHARED] != b[:_SHORTEST_SHARED]:
        return 0
    lo, hi = _SHORTEST_SHARED, min(len(a), len(b))
    if lo > hi:
        return 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def decode(cursor: str | None, digest: str, known: str = "") -> Key | None:
    if not cursor:
        return None
    try:
        owner, mask_text, *parts = cursor.split("~")
        mask = int(mask_text, 36)
        names = [name for bit, name in enumerate(_NAMES) if mask & (1 << bit)]
        if len(names) != len(parts) or not names:
            raise ValueError("bad key")
    except ValueError as exc:
        raise InvalidInput(_INVALID) from exc
    if owner != digest:
        raise InvalidInput(
            "cursor belongs to a different query: repeat the same arguments with it, or omit it to start over"
        )
    try:
        values: list[str] = []
        for part in parts:
            if part.startswith("="):
                values.append(values[int(part[1:])])
            elif part.startswith("^"):
                ref, n, rest = part[1:].split(".", 2)
                base = known if ref == "k" else values[int(ref)]
                if int(n) > len(base):
                    raise ValueError("bad prefix")
                values.append(base[: int(n)] + rest)
            else:
                values.append(part.removeprefix("!"))
    except (ValueError, IndexError) as exc:
        raise InvalidInput(_INVALID) from exc
    return dict(zip(names, values, strict=True))


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
