"""Conversion between the engine's JSON-like item values and DynamoDB attribute values.

DynamoDB stores numbers as decimal strings of at most 38 significant digits, in magnitude between
1E-130 and 9.99...9E+125. Floats are converted through ``Decimal(str(x))`` so that what is stored
is the shortest decimal that round-trips to the same float (``0.1`` stays ``0.1``, not
``0.1000000000000000055511151231257827``). Reading back, integral numbers become ``int`` and
the rest ``float``, so every value the record layer writes comes back equal to itself (see
:func:`number_from_wire` for the one exception: round ints beyond 2**53).

Everything is validated here, before a request is built, so that a bad value fails with a message
naming the attribute instead of a service-side ValidationException about "one or more parameter
values".
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, TypeAlias

from agent_memory.errors import InvalidInput
from agent_memory.item_rules import (
    EXACT,
    MAX_SIGNIFICANT_DIGITS,
    check_depth,
    check_item_size,
    check_number,
    describe,
    item_size,
    value_size,
)
from agent_memory.storage.engine import Item

__all__ = [
    "AttributeValue",
    "WireItem",
    "check_item_size",
    "from_attr",
    "from_wire",
    "item_size",
    "number_from_wire",
    "to_attr",
    "to_decimal",
    "to_wire",
    "value_size",
]

AttributeValue: TypeAlias = dict[str, Any]
WireItem: TypeAlias = dict[str, AttributeValue]


def to_decimal(value: int | float | Decimal, path: str = "") -> Decimal:
    """``value`` as the Decimal sent to DynamoDB, or InvalidInput if DynamoDB cannot hold it."""
    number = check_number(value, path)
    # DynamoDB counts digits after trimming zeros, but a literal like str(10**40) spells out 41 of
    # them; send the trimmed form (1E+40) then, and the plain form otherwise.
    if len(number.as_tuple().digits) > MAX_SIGNIFICANT_DIGITS:
        return number.normalize(EXACT)
    return number


# Below this every integral float is exactly an int, so "integral means int" loses nothing.
_FLOAT_EXACT_INTS = 2**53


def number_from_wire(text: str) -> int | float:
    """Integral numbers as int, the rest as float; beyond 2**53 the wire is ambiguous.

    The wire does not say whether a number was written as an int or a float. Beyond 2**53 every
    float is integral, yet its shortest repr (which is what was sent) is usually not its exact
    value: 1.5e125 travels as 1.5E+125, whose int differs from the float. Such a number comes back
    as the float whose repr it is, so every float round-trips exactly. The price: an int that is
    itself such a repr (a round number like 10**40) comes back as the float nearest to it.
    Ints with more significant digits than a float repr (2**53 + 1, 38-digit ids) are exact.
    """
    number = Decimal(text)
    if number != number.to_integral_value():
        return float(number)
    integral = int(number)
    if abs(integral) < _FLOAT_EXACT_INTS:
        return integral
    as_float = float(number)
    if integral != as_float and Decimal(repr(as_float)) == number:
        return as_float
    return integral


def to_attr(value: Any, path: str = "", _depth: int = 0) -> AttributeValue:
    """One Python value as a DynamoDB AttributeValue; ``path`` names it in error messages."""
    check_depth(_depth, path)
    # bool before int: bool is an int subclass, but must stay a boolean.
    if isinstance(value, bool):
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | float | Decimal):
        return {"N": str(to_decimal(value, path))}
    if isinstance(value, Mapping):
        members: dict[str, AttributeValue] = {}
        for key, member in value.items():
            if not isinstance(key, str):
                raise InvalidInput(f"{describe(path)} has a non-string key {key!r}; map keys must be strings")
            members[key] = to_attr(member, f"{path}.{key}" if path else key, _depth + 1)
        return {"M": members}
    if isinstance(value, list | tuple):
        return {"L": [to_attr(member, f"{path}[{i}]", _depth + 1) for i, member in enumerate(value)]}
    raise InvalidInput(
        f"{describe(path)} has type {type(value).__name__}; "
        "only str, bool, int, float, None, list and dict can be stored"
    )


def from_attr(attr: AttributeValue) -> Any:
    """A DynamoDB AttributeValue as the Python value the engine hands out."""
    if "S" in attr:
        return attr["S"]
    if "N" in attr:
        return number_from_wire(attr["N"])
    if "BOOL" in attr:
        return bool(attr["BOOL"])
    if "NULL" in attr:
        return None
    if "M" in attr:
        return {key: from_attr(member) for key, member in attr["M"].items()}
    if "L" in attr:
        return [from_attr(member) for member in attr["L"]]
    # Sets and binaries are never written by this package; decode them leniently for export.
    if "SS" in attr:
        return list(attr["SS"])
    if "NS" in attr:
        return [number_from_wire(n) for n in attr["NS"]]
    if "B" in attr:
        return attr["B"]
    if "BS" in attr:
        return list(attr["BS"])
    raise ValueError(f"unknown DynamoDB attribute value {attr!r}")


def to_wire(item: Mapping[str, Any]) -> WireItem:
    return {name: to_attr(value, name) for name, value in item.items()}


def from_wire(item: Mapping[str, AttributeValue]) -> Item:
    return {name: from_attr(value) for name, value in item.items()}
