"""Payload checks of the records (models.py): the one-walk path that builds no paths normalises
exactly as the path-naming walk does, and reports what it refuses in the same words."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from pydantic import ValidationError

from agent_memory.models import MAX_DEPTH, MAX_PAYLOAD_BYTES, Note, _normalize, normalize_json, utcnow

EDGE_NUMBERS: list[Any] = [
    0, -0.0, 1.0, -3, 2.5, 1e15, 1e16, 2.0**53, 2.0**53 + 2, 9007199254740993.0, 1e23, 1.5e100, 1e-5, 1e-120,
    1e-130, 1e130, 10**37, 10**38, -(10**38) + 1, 10**40, 10**40 + 1, 2**64, 123.0, float("nan"), float("inf"),
]  # fmt: skip
LEAVES: list[Any] = [None, True, False, "x", "é ☕", "", *EDGE_NUMBERS]


def _value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.35:
        return rng.choice(LEAVES)
    if roll < 0.7:
        return {rng.choice("abcd"): _value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    items = [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return tuple(items) if roll < 0.75 else items


def _outcome(value: Any) -> tuple[str, str]:
    try:
        out = normalize_json(value, "payload")
    except ValueError as exc:
        return "refused", str(exc)
    return "ok", repr(out)


def _reference(value: Any) -> tuple[str, str]:
    try:
        out = _normalize(value, "payload", 0)
    except ValueError as exc:
        return "refused", str(exc)
    return "ok", repr(out)


def test_normalize_matches_the_path_naming_walk() -> None:
    rng = random.Random(14)
    for _ in range(5000):
        value = _value(rng, 0)
        assert _outcome(value) == _reference(value), value


@pytest.mark.parametrize("extra", [0, 1, 2])
def test_nesting_is_refused_at_the_same_depth(extra: int) -> None:
    leaves: list[Any] = ["x", 1, {}, []]
    for leaf in leaves:
        value: Any = leaf
        for _ in range(MAX_DEPTH + extra - 1):
            value = [value]
        assert _outcome(value) == _reference(value)
        assert _outcome({"k": value}) == _reference({"k": value})


def _note(value: Any) -> Note:
    now = utcnow()
    return Note(agent_id="a", key="k", value=value, created_at=now, expires_at=now)


def test_payload_sizes_and_messages() -> None:
    assert _note({"n": 1.0, "l": (1, 2.0)}).value == {"n": 1, "l": [1, 2]}
    # Just within the limit by json's measure, with floats orjson writes shorter.
    floats = [1e-05] * ((MAX_PAYLOAD_BYTES - 2) // 6)
    assert len(json.dumps(floats, separators=(",", ":"))) <= MAX_PAYLOAD_BYTES
    assert _note(floats).value == floats
    with pytest.raises(ValidationError, match=r"payload is \d+ bytes; the limit is 65536 bytes"):
        _note([1e-05] * (MAX_PAYLOAD_BYTES // 5))
    with pytest.raises(ValidationError, match="payload is 70002 bytes"):
        _note("x" * 70_000)
    # Integral floats grow as ints past 2**53 (1e23 is 24 digits): measured again once normalised.
    grown = [1e23] * (MAX_PAYLOAD_BYTES // 6)
    with pytest.raises(ValidationError, match="the limit is 65536 bytes"):
        _note(grown)
    with pytest.raises(ValidationError, match="NaN and infinity cannot be stored"):
        _note({"x": [float("nan")]})
    with pytest.raises(ValidationError, match="object keys must be strings"):
        _note({1: "x"})
    with pytest.raises(ValidationError, match="datetime is not a JSON value"):
        _note({"t": utcnow()})
