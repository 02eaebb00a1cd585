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


class _Unexpected(Exception):
    """A stored value of a shape :func:`stored` does not convert: validate the item instead."""


def _time(value: Any) -> datetime:
    if type(value) is str:
        parsed = datetime.fromisoformat(value)
    elif isinstance(value, datetime):
        parsed = value
    else:
        raise _Unexpected
    if parsed.tzinfo is UTC:
        return parsed
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

        def nested(value: Any) -> Any:
            return value if isinstance(value, model) else _builder(model)(value)

        return nested
    return None


def _refuse(value: Any) -> Any:
    raise _Unexpected


def _optional(convert: Convert) -> Convert:
    return lambda v: None if v is None else convert(v)


def _each_item(convert: Convert) -> Convert:
    return lambda v: [convert(x) for x in v] if type(v) is list else _refuse(v)


def _each_value(convert: Convert) -> Convert:
    return lambda v: {k: convert(x) for k, x in v.items()} if type(v) is dict else _refuse(v)


Builder = Callable[[Any], Any]
_BUILDERS: dict[type[BaseModel], Builder] = {}
_set = object.__setattr__


def _builder(cls: type[BaseModel]) -> Builder:
    """The function that builds ``cls`` from a stored dict, made once per class."""
    build = _BUILDERS.get(cls)
    if build is None:
        build = _BUILDERS[cls] = _compile(cls)
    return build


def _compile(cls: type[BaseModel]) -> Builder:
    """What ``model_construct`` does (its per-call look-ups of default factories' signatures cost
    more than validating), as the source of one function per class, compiled once: a dict display
    of the field values in the fields' order, each the stored value (converted when JSON cannot
    carry it as the record holds it) or its default. A loop over the fields with a call per value
    cost twice as much for a record of a dozen fields (issue #14).

    The function raises :class:`_Unexpected` for a value it does not convert and for data with a
    field the class does not know or without a required one."""
    if cls.__pydantic_post_init__ or cls.__pydantic_root_model__:
        raise TypeError(f"{cls.__name__} cannot be built from stored data without validation")
    env: dict[str, Any] = {
        "cls": cls,
        "names": frozenset(cls.model_fields),
        "required": frozenset(n for n, info in cls.model_fields.items() if info.is_required()),
        "Unexpected": _Unexpected,
        "set_": _set,
        "new": object.__new__,
    }
    values: list[str] = []
    for i, (name, info) in enumerate(cls.model_fields.items()):
        key = repr(name)
        convert = _converter(info.annotation)
        value = f"data[{key}]"
        if convert is not None:
            env[f"c{i}"] = convert
            value = f"c{i}({value})"
        if not info.is_required():
            factory = info.default_factory
            if factory is dict or factory is list:
                default = "{}" if factory is dict else "[]"
            elif factory is None and (info.default is None or type(info.default) in (str, int, float, bool)):
                env[f"k{i}"] = info.default
                default = f"k{i}"
            else:
                env[f"d{i}"] = _default(info)
                default = f"d{i}()"
            value = f"({value} if {key} in data else {default})"
        values.append(f"{key}: {value}")
    source = f"""
def build(data):
    if type(data) is not dict:
        raise Unexpected
    given = data.keys()
    if not (given <= names and required <= given):
        raise Unexpected
    record = new(cls)
    set_(record, "__dict__", {{{", ".join(values)}}})
    set_(record, "__pydantic_fields_set__", set(given))
    set_(record, "__pydantic_extra__", None)
    set_(record, "__pydantic_private__", None)
    return record
"""
    exec(compile(source, f"<stored {cls.__qualname__}>", "exec"), env)
    build: Builder = env["build"]
    return build


def stored(cls: type[M], data: dict[str, Any]) -> M:
    """The record ``cls`` of ``data`` read back from storage (see the module's docstring)."""
    build = _builder(cls)  # a class it cannot be made for is a programming error, not an item's
    try:
        record: M = build(data)
        return record
    except (_Unexpected, ValueError, TypeError, AttributeError, KeyError):
        return cls.model_validate(data, context=STORED)
