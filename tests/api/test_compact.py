"""``api.compact.dump`` (one pass from a result model to its compact form, what every tool
answers) gives exactly what pydantic's dump compacted gave, for every result model and for values
of every kind a field may hold; what it answers for the tools validates against their output
schemas."""

from __future__ import annotations

import math
import types
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from agent_memory.api import TOOLS
from agent_memory.api import results as rs
from agent_memory.api.compact import compact, dump, dumped_text, fits, preview, to_text, utc_seconds

WHEN = datetime(2026, 12, 2, 5, 38, 54, 526186, tzinfo=UTC)

# Free-form values: JSON ones (nulls to drop, floats to round at any magnitude, escapes), and ones
# pydantic converts when dumping (tuples, non-string keys, sets, times, non-finite floats).
PLAIN_VALUES: list[Any] = [
    {"market": {"trend": "bullish", "volatility": 0.123456}, "n": [1, 2.5, None, True], "gone": None},
    [0.000012345678, 1e-7, 123456789.123, 1e22, -0.0, 0.0, 2 / 3, 10**30],
    'naïve \u2028 "quoted" \n',
    {},
    [],
    3.14159265,
    17,
    False,
]
OTHER_VALUES: list[Any] = [
    {1: "int key", "t": (1, 2.345678)},
    {"when": WHEN, "nan": math.nan},
    (None, {"a": None}),
    {"inf": math.inf},
]


def _models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    todo: list[type[BaseModel]] = [rs.Result]
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls is not rs.Result:
            found.append(cls)
    return found


def _value(annotation: Any, variant: int, depth: int = 0) -> Any:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        return None if variant % 3 == 2 else _value(options[0], variant, depth)
    if origin is Annotated:
        inner = get_args(annotation)[0]
        if inner is datetime:
            offset = timezone(timedelta(hours=variant % 4 - 1))
            return (WHEN + timedelta(days=variant)).astimezone(offset)
        return _value(inner, variant, depth)
    if origin is Literal:
        return get_args(annotation)[variant % len(get_args(annotation))]
    if origin is list:
        (item,) = get_args(annotation)
        return [_value(item, variant + i, depth + 1) for i in range(2)]
    if origin is dict or annotation is Any:
        pool = PLAIN_VALUES if variant < 100 else OTHER_VALUES
        if origin is dict:
            pool = [v for v in pool if isinstance(v, dict) and all(isinstance(k, str) for k in v)]
        return pool[variant % len(pool)]
    if annotation is str:
        return ["dec_1", 'naïve \u2028 "quoted"', ""][variant % 3]
    if annotation is bool:
        return variant % 2 == 0
    if annotation is int:
        return variant * 7
    if annotation is float:
        # An int in a float field: the results are built without validation (Result.built).
        return [0.78341234, 1, 1e-9, 1234567.891, True][variant % 5]
    if annotation is datetime:
        return WHEN
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _instance(annotation, variant, depth + 1)
    raise AssertionError(f"no test value for {annotation!r}")


def _instance(cls: type[BaseModel], variant: int, depth: int = 0) -> BaseModel:
    values: dict[str, Any] = {}
    for name, info in cls.model_fields.items():
        annotation: Any = info.annotation
        if info.metadata:
            annotation = Annotated[(annotation, *info.metadata)]
        values[name] = _value(annotation, variant + len(values), depth)
    if issubclass(cls, rs.Result):
        return cls.built(**values)
    return cls.model_construct(**values)


@pytest.mark.parametrize("cls", _models(), ids=lambda c: c.__name__)
@pytest.mark.parametrize("variant", [0, 1, 2, 3, 4, 5, 100, 101, 102, 103])
def test_dump_is_pydantic_dump_compacted(cls: type[BaseModel], variant: int) -> None:
    result = _instance(cls, variant)
    expected = compact(result.model_dump(mode="json", exclude_none=True))
    got = dump(result)
    assert got == expected
    assert to_text(got) == to_text(expected)
    assert dumped_text(got) == to_text(got)
    assert list(got) == list(expected)  # the same order of members: the same text


def test_dump_output_validates_against_each_tools_output_schema() -> None:
    for spec in TOOLS.values():
        schema = spec.result.model_json_schema()
        validator = Draft202012Validator(schema)
        for variant in range(6):
            result = _instance(spec.result, variant)
            if spec.result is rs.AnalyticsResult:
                continue  # free-form: its schema is the report's, filled by the analytics service
            validator.validate(dump(result))


def test_times_in_results_are_utc_to_the_second() -> None:
    assert utc_seconds(WHEN) == "2026-12-02T05:38:54Z"
    assert utc_seconds(WHEN.astimezone(timezone(timedelta(hours=-5)))) == "2026-12-02T05:38:54Z"
    early = datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert utc_seconds(early) == early.strftime("%Y-%m-%dT%H:%M:%SZ")
    # Remembered texts are those of the same instant, whatever the offset it was given in.
    for _ in range(2):
        for t in (WHEN, WHEN.replace(microsecond=0), WHEN.astimezone(timezone(timedelta(hours=2))), early):
            assert utc_seconds(t) == t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_text_is_the_standard_encoders() -> None:
    import json

    for value in [*PLAIN_VALUES, {"a": [1, {"b": "c"}]}, "x", 1.5, None, 10**40]:
        assert to_text(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# Values whose text orjson and json write differently, or nearly so: floats json writes with an
# exponent (below 1e-4, from 1e16), orjson's decimal forms of small floats, non-finite floats,
# integers beyond 64 bits, non-string keys, lone surrogates, and strings that look like numbers.
TRICKY_VALUES: list[Any] = [
    *PLAIN_VALUES,
    *OTHER_VALUES,
    [1e-5, 2.5e-5, 1.5e-7, 9.999e-5, 1e-4, 1e15, 1e16, 1.2345e300, 5e-324],
    {"n": [math.nan, None], "big": 2**64, "neg": -(2**63) - 1},
    {"s": "1e-05 0.00001 null 3e-7", "id": "dec_3e5a0e-1", "k": [0.1, 0.25, 999.9]},
    {"x": "lone \ud800"},
    {"é": 'naïve \u2028\u2029 \x00\x1f\x7f "q" \\'},
    [[[{"deep": [1.0, -0.0, 0.0, 123.4]}]]],
]


def _json_text(value: Any) -> str | None:
    import json

    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        return None


def test_dumped_text_is_the_standard_encoders() -> None:
    """The text every tool answers (orjson's when it writes the same) is what ``json`` writes,
    for what ``dump`` leaves (floats rounded) and for values it never leaves (the exact floats)."""
    for raw in TRICKY_VALUES:
        for value in (raw, compact(raw)):
            expected = _json_text(value)
            if expected is None:
                with pytest.raises((TypeError, ValueError)):
                    to_text(value)
                continue
            if not isinstance(value, float) or abs(value) < 1000:
                assert dumped_text(compact(value)) == _json_text(compact(value))


@pytest.mark.parametrize("limit", [1, 5, 20, 40, 160])
def test_previews_are_decided_by_the_text_length(limit: int) -> None:
    """``fits`` (told from orjson's bytes) never says a value fits that ``json`` writes longer,
    and a preview is the value when its text fits, else the text cut with an ellipsis."""
    for value in TRICKY_VALUES:
        text = _json_text(value)
        if text is None or isinstance(value, str):
            continue
        if fits(value, limit):
            assert len(text) <= limit
        shown, cut = preview(value, limit)
        if len(text) <= limit:
            assert shown is value and not cut
        else:
            assert (shown, cut) == (text[: limit - 1] + "…", True)
