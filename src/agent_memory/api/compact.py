"""How results are made small for a model's context: previews, rounding, no nulls.

Every tool result goes through :func:`compact` (structured content) and :func:`to_text` (the text
block a model reads), so a result never carries ``null``s, long floats or indentation.
:func:`dump` is the one pass that turns a result model into that compact form.
"""

from __future__ import annotations

import json
import math
import types
from collections.abc import Callable
from datetime import UTC, datetime
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Annotated, Any, Literal, Union, cast, get_args, get_origin

import orjson
from pydantic import BaseModel, PlainSerializer

from agent_memory.memo import Memo

PREVIEW_CHARS = 160
"""Longest preview of a free-form field (context, reasoning, data, a note's value) in a list."""
SIGNIFICANT_DIGITS = 4
"""Floats in results keep this many significant digits (a rate of 0.7834, a latency of 1210 ms)."""


def round_float(value: float) -> float | int:
    if value == 0 or not math.isfinite(value):
        return value
    if type(value) is float:
        found = _ROUNDED.get(value)
        if found is not None:
            return found
    digits = SIGNIFICANT_DIGITS - math.floor(math.log10(abs(value))) - 1
    rounded = round(value, max(digits, 0))
    result = int(rounded) if digits <= 0 else rounded
    if type(value) is float:
        _ROUNDED.keep(value, result)
    return result


_ROUNDED: Memo[float, float | int] = Memo(4096)
"""Floats remembered rounded: results repeat a few (scores, rates, latencies) many times, and
rounding one cost a logarithm and a ``round``. Finite, non-zero floats only (0.0 == -0.0)."""


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
_ENCODE: Callable[[Any, int], list[str]] | None = (
    c_make_encoder(None, _ENCODER.default, encode_basestring, None, ":", ",", False, False, True)
    if c_make_encoder is not None
    else None
)
"""The C encoder :data:`_ENCODER` makes for each ``encode`` (with its options, without the check
for circular references, which JSON values cannot have), made once: building it was half the time
of encoding a small value, and previews encode several per item of a page."""


def to_text(value: Any) -> str:
    """Compact JSON: no spaces, no ASCII escaping (a model pays per character)."""
    if _ENCODE is None:
        return _ENCODER.encode(value)
    return "".join(_ENCODE(value, 0))


_PLAIN_ONLY = (
    orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS
)
"""orjson refuses (TypeError) what :func:`to_text` would not encode as plain JSON."""


def fits(value: Any, limit: int) -> bool:
    """Whether :func:`to_text` of ``value`` (not a string) is certainly at most ``limit``
    characters, told from orjson's encoding, a tenth of the time: orjson writes the same JSON text
    (in UTF-8, whose bytes are at least its characters) but for floats, where ``json`` writes an
    exponent one character longer (``1e-05``, ``1e+16``; orjson's has an "e" too, or is a longer
    decimal) and non-finite ones (``NaN``, ``-Infinity``: orjson's ``null``, up to 5 shorter).
    False says "do not know": encode it with :func:`to_text`."""
    try:
        raw = orjson.dumps(value, option=_PLAIN_ONLY)
    except TypeError:  # (orjson.JSONEncodeError) a value orjson does not take
        return False
    return len(raw) + raw.count(b"e") + 5 * raw.count(b"null") <= limit


_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")


def dumped_text(data: Any) -> str:
    """:func:`to_text` of what :func:`dump` made, from orjson's encoding (a tenth of the time)
    when that is the same text. orjson writes JSON as ``json`` does (compact, UTF-8 unescaped,
    the same escapes, the same shortest float digits) but for floats that ``json`` writes with an
    exponent, below 1e-4 or from 1e16 (orjson: ``1e-5`` for ``1e-05``, or ``0.00001``; ``1e16``
    for ``1e+16``), and non-finite ones (``NaN``: orjson's ``null``). A dumped result holds no
    float from 1000 up (:func:`round_float` turns those into integers), so its text is orjson's
    unless that holds a digit before ``e-`` (a small float's exponent), ``0.0000`` (one written
    out) or ``null`` (or a list's None): then, or when orjson refuses a value, ``json`` writes
    it. A string holding those is written by ``json`` too, which costs time, not exactness."""
    try:
        raw = orjson.dumps(data, option=_PLAIN_ONLY)
    except TypeError:  # (orjson.JSONEncodeError) a value orjson does not take
        return to_text(data)
    if b"0.0000" in raw or b"null" in raw or b"0e-" in raw.translate(_DIGITS_AS_ZERO):
        return to_text(data)
    return raw.decode()


def preview(value: Any, limit: int = PREVIEW_CHARS) -> tuple[Any, bool]:
    """``(value, False)`` when its JSON fits in ``limit`` characters, else ``(a string of its first
    characters ending in an ellipsis, True)``: a list stays bounded whatever was stored."""
    if isinstance(value, str):
        text = value
    elif fits(value, limit):  # most previews are short: their text is not needed
        return value, False
    else:
        text = to_text(value)
    if len(text) <= limit:
        return value, False
    return text[: limit - 1] + "…", True


def utc_seconds(t: datetime) -> str:
    """A time in results: UTC, to the second (``2026-12-02T05:38:54Z``)."""
    if t.tzinfo is UTC:
        found = _SECONDS.get(t)
        if found is not None:
            return found
    else:
        t = t.astimezone(UTC)
    if t.year < 1000:  # strftime does not pad such years; isoformat would
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    return _SECONDS.keep(t, t.isoformat()[:19] + "Z")


_SECONDS: Memo[datetime, str] = Memo(4096)
"""Times in UTC remembered with their text: results repeat the same times (a decision's, a note's
expiry) on every read, and an aware time's ``isoformat`` cost several times a dict look-up (a
tenth of a page of summaries' dump; issue #14). Equal keys are the same instant, so the same text."""


# --------------------------------------------------------------------------------------------------
# one pass from a result model to its compact form
# --------------------------------------------------------------------------------------------------


class _NotPlain(Exception):
    """A value :func:`dump` does not convert itself: the model is dumped by pydantic instead."""


def _plain(value: Any) -> Any:
    """:func:`compact` of a JSON value (str keys; str, int, bool, finite float, None, dict, list),
    which is what pydantic's JSON-mode dump leaves it as; anything else raises :class:`_NotPlain`."""
    kind = type(value)
    if kind is dict:
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                raise _NotPlain
            inner = type(v)
            if inner in _AS_IS:
                out[k] = v
            elif inner is float:  # (inline: most nested values are leaves, and repeat)
                rounded = _ROUNDED.get(v)  # (holds finite non-zero floats only)
                if rounded is None:
                    if not math.isfinite(v):
                        raise _NotPlain
                    rounded = round_float(v)
                out[k] = rounded
            elif v is not None:
                out[k] = _plain(v)
        return out
    if kind is list:
        return [v if type(v) in _AS_IS else _plain(v) for v in value]
    if kind is float:
        if not math.isfinite(value):
            raise _NotPlain
        return round_float(value)
    if kind in _AS_IS:
        return value
    raise _NotPlain


def _str(value: Any) -> Any:
    if type(value) is not str:
        raise _NotPlain
    return value


def _int(value: Any) -> Any:
    if type(value) is not int:
        raise _NotPlain
    return value


def _bool(value: Any) -> Any:
    if type(value) is not bool:
        raise _NotPlain
    return value


def _float(value: Any) -> Any:
    kind = type(value)
    if kind is float:
        rounded = _ROUNDED.get(value)  # (holds finite non-zero floats only)
        if rounded is not None:
            return rounded
        if not math.isfinite(value):
            raise _NotPlain
    elif kind is int or kind is bool:
        value = float(value)  # pydantic dumps a number of a float field as a float
    else:
        raise _NotPlain
    return round_float(value)


def _time(value: Any) -> Any:
    if not isinstance(value, datetime):
        raise _NotPlain
    return utc_seconds(value)


def _strings(value: Any) -> Any:
    if type(value) is not list or any(type(v) is not str for v in value):
        raise _NotPlain
    return list(value)


Step = Callable[[Any], Any]
_SCALARS: dict[Any, Step] = {str: _str, int: _int, bool: _bool, float: _float}
_DUMPERS: dict[type[BaseModel], Step | None] = {}


def _step(annotation: Any) -> Step:
    """How a value of ``annotation`` is dumped, or :class:`_NotPlain` for a type left to pydantic."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        if len(options) != 1:
            raise _NotPlain
        return _step(options[0])
    if origin is Annotated:
        inner, *meta = get_args(annotation)
        serializers = [m for m in meta if isinstance(m, PlainSerializer)]
        if inner is datetime and len(serializers) == 1 and serializers[0].func is utc_seconds:
            return _time
        if serializers:
            raise _NotPlain
        return _step(inner)
    if origin is Literal:
        if not all(type(a) is str for a in get_args(annotation)):
            raise _NotPlain
        return _str
    if origin is list:
        (item,) = get_args(annotation) or (Any,)
        if item is str:
            return _strings
        if isinstance(item, type) and issubclass(item, BaseModel):
            model = item

            def each(value: Any) -> Any:
                if type(value) is not list:
                    raise _NotPlain
                one = _dumper(model)
                return [one(v) for v in value]

            return each
        if item is Any:
            return _plain
        raise _NotPlain
    if origin is dict:
        key, item = get_args(annotation) or (str, Any)
        if key is not str or item is not Any:
            raise _NotPlain
        return _plain
    if annotation is Any:
        return _plain
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        model = annotation
        return lambda v: _dumper(model)(v)
    raise _NotPlain


def _dumper(cls: type[BaseModel]) -> Step:
    """The compiled dump of ``cls`` (:func:`_compile`); :class:`_NotPlain` when pydantic must
    dump it."""
    if cls in _DUMPERS:
        found = _DUMPERS[cls]
    else:
        found = _DUMPERS[cls] = _compile(cls)
    if found is None:
        raise _NotPlain
    return found


def _compile(cls: type[BaseModel]) -> Step | None:
    """The dump of one model class as the source of one function, compiled once: per field in
    the model's order, its value left out when None, else converted by its declared type (str,
    int and bool tested inline, free-form values compacted, times, floats and nested models by
    their step). None when pydantic must dump it: a serializer, alias, computed field, extra
    fields or field type this module does not convert."""
    config = cls.model_config
    if (
        config.get("extra") == "allow"
        or cls.model_computed_fields
        or cls.__pydantic_decorators__.field_serializers
        or cls.__pydantic_decorators__.model_serializers
    ):
        return None
    env: dict[str, Any] = {"cls": cls, "NotPlain": _NotPlain, "AS_IS": _AS_IS, "plain": _plain}
    lines = [
        "def dump(record):",
        "    if type(record) is not cls:",
        "        raise NotPlain",
        "    values = record.__dict__",
        "    out = {}",
    ]
    for i, (name, info) in enumerate(cls.model_fields.items()):
        if info.exclude or info.serialization_alias or (info.alias and info.alias != name):
            return None
        annotation: Any = info.annotation
        if info.metadata:
            annotation = Annotated[(annotation, *info.metadata)]
        try:
            step = _step(annotation)
        except _NotPlain:
            return None
        key = repr(name)
        lines += [f"    x = values[{key}]", "    if x is not None:"]
        kind = next((t for t, s in _SCALARS.items() if s is step and t is not float), None)
        if kind is not None:
            env[f"t{i}"] = kind
            lines += [f"        if type(x) is not t{i}:", "            raise NotPlain"]
            lines.append(f"        out[{key}] = x")
        elif step is _plain:
            lines.append(f"        out[{key}] = x if type(x) in AS_IS else plain(x)")
        else:
            env[f"s{i}"] = step
            lines.append(f"        out[{key}] = s{i}(x)")
    lines.append("    return out")
    exec(compile("\n".join(lines), f"<dump {cls.__qualname__}>", "exec"), env)
    dumper: Step = env["dump"]
    return dumper


def dump(model: BaseModel) -> dict[str, Any]:
    """``compact(model.model_dump(mode="json", exclude_none=True))`` in one pass: each field's
    value converted by its declared type, nulls left out as it goes. A model or value of a kind
    this pass does not know (a custom serializer, a non-JSON value in a free-form field, a
    non-finite float) is dumped by pydantic and compacted, as before."""
    try:
        data = _dumper(type(model))(model)
        return cast(dict[str, Any], data)
    except _NotPlain:
        return cast(dict[str, Any], compact(model.model_dump(mode="json", exclude_none=True)))
