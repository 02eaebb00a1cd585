"""Records rebuilt from what the store itself wrote, without validating them again (issue #14).

Every item a record is read back from was written from a validated record (the store's writes take
records) or checked field by field when imported (:mod:`agent_memory.storage.records.validate`).
Validating it again on every read cost more CPU than the query (regex checks of every id, timezone
checks of every time, per field, per record of a page). :func:`stored` instead converts only what
JSON cannot carry as the record holds it - times, nested records, ints in float fields - and builds
the record without validation. An item of another shape (a field it does not know, a required
one missing, a time or nested record it cannot read) goes through full validation, with its error,
as before; the other values are taken as stored.
"""

from __future__ import annotations

import copy
import types
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar, Union, cast, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

M = TypeVar("M", bound=BaseModel)
Convert = Callable[[Any], Any]

STORED = {"stored": True}
"""Validation context of records read back from storage (see models._payload)."""


class _Plan:
    """How to build one record class: per field in order, its stored-value conversion (or None)
    and, for an optional field, the factory of its default."""

    __slots__ = ("names", "required", "steps")

    def __init__(self, cls: type[BaseModel]) -> None:
        if cls.__pydantic_post_init__ or cls.__pydantic_root_model__:
            raise TypeError(f"{cls.__name__} cannot be built from stored data without validation")
        self.names = frozenset(cls.model_fields)
        self.required = frozenset(n for n, info in cls.model_fields.items() if info.is_required())
        self.steps = tuple(
            (name, _converter(info.annotation), None if info.is_required() else _default(info))
            for name, info in cls.model_fields.items()
        )


def _default(info: FieldInfo) -> Callable[[], Any]:
    factory = info.default_factory
    if factory is not None:
        if info.default_factory_takes_validated_data:
            raise TypeError("a default factory that takes the validated data")
        return cast(Callable[[], Any], factory)
    value = info.default
    if value is None or isinstance(value, str | int | float | bool | tuple | frozenset):
        return lambda: value
    return lambda: copy.deepcopy(value)


_PLANS: dict[type[BaseModel], _Plan] = {}
_set = object.__setattr__


class _Unexpected(Exception):
    """A stored value of a shape :func:`stored` does not convert: validate the item instead."""


def _time(value: Any) -> datetime:
    if type(value) is str:
        parsed = datetime.fromisoformat(value)
    elif isinstance(value, datetime):
        parsed = value
    else:
        raise _Unexpected
    if parsed.tzinfo is None:
        raise _Unexpected
    return parsed.astimezone(UTC)


def _float(value: Any) -> Any:
    kind = type(value)
    if kind is float:
        return value
    if kind is int:
        return float(value)
    raise _Unexpected


def _int(value: Any) -> Any:
    kind = type(value)
    if kind is int:
        return value
    if kind is float and value.is_integer():
        return int(value)
    raise _Unexpected


def _converter(annotation: Any) -> Convert | None:
    """How a stored JSON value becomes the field's value; None when it already is."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _converter(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        if len(options) != 1:
            return None if all(_converter(a) is None for a in options) else _refuse
        inner = _converter(options[0])
        return None if inner is None else _optional(inner)
    if origin is list:
        (item,) = get_args(annotation) or (Any,)
        each = _converter(item)
        return None if each is None else _each_item(each)
    if origin is dict:
        _, item = get_args(annotation) or (str, Any)
        each = _converter(item)
        return None if each is None else _each_value(each)
    if annotation is datetime:
        return _time
    if annotation is float:
        return _float
    if annotation is int:
        return _int
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        model = annotation
        return lambda v: v if isinstance(v, model) else _build(model, v)
    return None


def _refuse(value: Any) -> Any:
    raise _Unexpected


def _optional(convert: Convert) -> Convert:
    return lambda v: None if v is None else convert(v)


def _each_item(convert: Convert) -> Convert:
    return lambda v: [convert(x) for x in v] if type(v) is list else _refuse(v)


def _each_value(convert: Convert) -> Convert:
    return lambda v: {k: convert(x) for k, x in v.items()} if type(v) is dict else _refuse(v)


def _plan(cls: type[BaseModel]) -> _Plan:
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _Plan(cls)
    return plan


def _build(cls: type[M], data: Any) -> M:
    return _construct(cls, _plan(cls), data)


def _construct(cls: type[M], plan: _Plan, data: Any) -> M:
    """What ``model_construct`` does (its per-call look-ups of default factories' signatures cost
    more than validating), from a plan made once per class."""
    if type(data) is not dict:
        raise _Unexpected
    given = data.keys()
    if not (given <= plan.names and plan.required <= given):
        raise _Unexpected
    values: dict[str, Any] = {}
    for name, convert, default in plan.steps:
        if name in data:
            value = data[name]
            values[name] = value if convert is None else convert(value)
        else:
            assert default is not None
            values[name] = default()
    record = cls.__new__(cls)
    _set(record, "__dict__", values)
    _set(record, "__pydantic_fields_set__", set(given))
    _set(record, "__pydantic_extra__", None)
    _set(record, "__pydantic_private__", None)
    return record


def stored(cls: type[M], data: dict[str, Any]) -> M:
    """The record ``cls`` of ``data`` read back from storage (see the module's docstring)."""
    plan = _plan(cls)  # a class it cannot plan for is a programming error, not a stored item's
    try:
        return _construct(cls, plan, data)
    except (_Unexpected, ValueError, TypeError, AttributeError, KeyError):
        return cls.model_validate(data, context=STORED)
