"""DynamoDB's item rules, defined once.

Both engines enforce them (the SQLite engine too, so that whatever the embedded store accepts can be
moved to DynamoDB unchanged), and :mod:`agent_memory.models` validates payloads with them, so a value
is refused by every entry point with the same message, or by none.

The rules, from the DynamoDB developer guide ("Service, account, and table quotas"; "Data types"):

- numbers: at most 38 significant digits (trailing zeros do not count: 10**40 is one digit), zero or
  a magnitude from 1E-130 to 9.99...9E+125; no NaN or infinity;
- documents (maps and lists) nested at most 32 levels, the attribute itself being the first: a
  value may sit at most 31 containers below its attribute (DynamoDB Local refuses 32 nested lists
  around a number, and accepts 31);
- an item at most 400 KB, measured as the UTF-8 length of each attribute name plus the size of its
  value (strings: UTF-8 length; numbers: about one byte per two significant digits plus one; null and
  booleans: 1; maps and lists: 3 plus, per member, its name, its value and 1);
- partition keys at most 2048 bytes, sort keys at most 1024 bytes, both non-empty;
- attribute names non-empty, at most 64 KB (key and index key attribute names at most 255 bytes);
- transactions at most 100 operations and 4 MB.

Everything here is pure: no I/O, no engine types beyond plain values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import Context, Decimal
from typing import Any, NoReturn

from agent_memory.errors import InvalidInput, LimitExceeded

MAX_ITEM_BYTES = 400 * 1024
MAX_TRANSACTION_ITEMS = 100
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
MAX_PARTITION_KEY_BYTES = 2048
MAX_SORT_KEY_BYTES = 1024
MAX_ATTRIBUTE_NAME_BYTES = 64 * 1024
MAX_KEY_ATTRIBUTE_NAME_BYTES = 255
MAX_SIGNIFICANT_DIGITS = 38
# Adjusted exponents (the exponent of the leading digit): 1E-130 .. 9.99..9E+125.
MIN_ADJUSTED_EXPONENT = -130
MAX_ADJUSTED_EXPONENT = 125
MAX_NESTING_DEPTH = 32
"""DynamoDB's nesting levels, the top-level attribute counted as the first: a value's depth below
its attribute (the attribute's own value at depth 0) must stay under this."""

# 2**419 > 10**126: an int with more bits is out of range whatever its digits, and Decimal() of a
# huge int is slow, so it is refused before converting.
_MAX_INT_BITS = 419
# Wide enough that normalising any number the checks accept never rounds.
EXACT = Context(prec=400)
# DynamoDB computes in decimal with 38 digits (ADD 0.1 to 0.2 gives 0.3); the SQLite engine too.
DYNAMODB_ARITHMETIC = Context(prec=MAX_SIGNIFICANT_DIGITS)


def describe(path: str) -> str:
    return f"attribute '{path}'" if path else "a value"


def child_path(parent: str, child: str | int) -> str:
    if isinstance(child, int):
        return f"{parent}[{child}]"
    return f"{parent}.{child}" if parent else child


def as_decimal(value: int | float | Decimal) -> Decimal:
    """The decimal a number is stored as: a float by its shortest repr (0.1 stays 0.1)."""
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _out_of_range(value: object, path: str) -> NoReturn:
    shown = f"an integer of {value.bit_length()} bits" if isinstance(value, int) else repr(value)
    raise InvalidInput(
        f"{describe(path)} is {shown}, outside the range the storage backends can hold "
        "(0, or a magnitude from 1E-130 to 9.99E+125): store it as a string instead"
    )


def check_number(value: int | float | Decimal, path: str = "") -> Decimal:
    """``value`` as the Decimal DynamoDB stores; InvalidInput if DynamoDB cannot hold it exactly."""
    if value and _plainly_storable(value):  # (zero is stored as Decimal(0), below)
        return as_decimal(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(
            f"{describe(path)} is {value}: NaN and infinity cannot be stored; use null or a finite number"
        )
    if isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
        _out_of_range(value, path)
    number = as_decimal(value)
    if not number.is_finite():
        raise InvalidInput(
            f"{describe(path)} is {value}: NaN and infinity cannot be stored; use null or a finite number"
        )
    if number.is_zero():
        return Decimal(0)
    normal = number.normalize(EXACT)
    digits = len(normal.as_tuple().digits)
    if digits > MAX_SIGNIFICANT_DIGITS:
        raise InvalidInput(
            f"{describe(path)} has {digits} significant digits; numbers are stored with at most "
            f"{MAX_SIGNIFICANT_DIGITS}: round it, or store it as a string"
        )
    if not MIN_ADJUSTED_EXPONENT <= normal.adjusted() <= MAX_ADJUSTED_EXPONENT:
        _out_of_range(value, path)
    return number


def check_storable(value: int | float | Decimal, path: str = "") -> None:
    """:func:`check_number` for a caller that needs no Decimal: a plainly storable number (most
    of them) is told by its type and magnitude alone."""
    if not _plainly_storable(value):
        check_number(value, path)


def same_value(a: Any, b: Any) -> bool:
    """Whether two JSON values are one value once stored: equal, or (at any depth) an integer and
    the float whose shortest form spells it exactly. DynamoDB's numbers do not say int or float,
    so 10**23 is read back as the float 1e23 (``storage.dynamodb.codec.number_from_wire``); a
    retried write compares its payload with the one read back by this rule."""
    if a == b:
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(v, b[k]) for k, v in a.items())
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is float and type(b) is int:
        a, b = b, a
    if type(a) is int and type(b) is float and math.isfinite(b):
        return Decimal(repr(b)) == a
    return False


def check_depth(depth: int, path: str) -> None:
    if depth >= MAX_NESTING_DEPTH:
        raise LimitExceeded(
            f"{describe(path)} is nested {MAX_NESTING_DEPTH} levels deep counting its attribute, over "
            f"DynamoDB's limit of {MAX_NESTING_DEPTH}: flatten the value"
        )


def check_attribute_name(name: object, *, key: bool = False) -> str:
    """A top-level attribute name: a non-empty string within DynamoDB's name length limits."""
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"attribute names must be non-empty strings, not {name!r}")
    limit = MAX_KEY_ATTRIBUTE_NAME_BYTES if key else MAX_ATTRIBUTE_NAME_BYTES
    if len(name.encode("utf-8", "surrogatepass")) > limit:
        raise LimitExceeded(f"attribute name {name[:40]!r}... is over the {limit}-byte name limit")
    return name


def plain_value(value: Any, depth: int) -> bool:
    """Whether ``value`` certainly passes :func:`check_value` at ``depth``: plain JSON types
    (tested by exact type), plainly storable numbers, string keys, within the nesting limit. Told
    in one walk without building the path of every member, which :func:`check_value` needs only to
    name what is wrong."""
    if depth >= MAX_NESTING_DEPTH:
        return False
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(-_PLAIN_INT < value < _PLAIN_INT)
    if kind is float:
        return bool(value == 0.0 or 1e-125 < abs(value) < 1e120)
    if kind is dict:
        for name, element in value.items():
            if type(name) is not str:
                return False
            kind = type(element)
            if kind is str or kind is bool or element is None:
                continue
            if not plain_value(element, depth + 1):
                return False
        return True
    if kind is list:
        for element in value:
            kind = type(element)
            if kind is str or kind is bool or element is None:
                continue
            if not plain_value(element, depth + 1):
                return False
        return True
    return False


def check_value(value: Any, path: str, depth: int = 0) -> None:
    """Validate one attribute value; ``depth`` is 0 for a top-level attribute's own value."""
    if plain_value(value, depth):
        return
    check_depth(depth, path)
    if value is None or isinstance(value, bool | str):
        return
    if _plainly_storable(value):
        return
    if isinstance(value, int | float | Decimal):
        check_number(value, path)
        return
    if isinstance(value, list | tuple):
        for i, element in enumerate(value):
            check_value(element, child_path(path, i), depth + 1)
        return
    if isinstance(value, Mapping):
        for name, element in value.items():
            if not isinstance(name, str):
                raise InvalidInput(
                    f"{describe(path)} has a non-string key {name!r}; map keys must be strings"
                )
            check_value(element, child_path(path, name), depth + 1)
        return
    raise InvalidInput(
        f"{describe(path)} has type {type(value).__name__}; "
        "only str, bool, int, float, None, list and dict can be stored"
    )


def check_key(value: object, name: str, max_bytes: int) -> str:
    """A key attribute as DynamoDB accepts it: a non-empty string within the key size limit."""
    if type(value) is str and value.isascii() and 0 < len(value) <= max_bytes:
        return value  # (ASCII: its length is its UTF-8 length, and it holds no surrogate)
    if not isinstance(value, str) or not value:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise InvalidInput(f"key attribute '{name}' must be a non-empty string, not {shown}")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"key attribute '{name}' is not valid Unicode (it has a lone surrogate)") from exc
    if size > max_bytes:
        raise LimitExceeded(
            f"key attribute '{name}' is {size} bytes, over the key size limit of {max_bytes} bytes"
        )
    return value


# --- sizes -----------------------------------------------------------------------------------------


def _plainly_storable(value: object) -> bool:
    """A number that DynamoDB certainly holds exactly, told without converting it to a Decimal
    (which made the checks a tenth of a write's CPU): an int of at most 38 digits, or a finite float
    well inside the exponent range (a float has at most 17 significant digits)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -_PLAIN_INT < value < _PLAIN_INT
    if isinstance(value, float):
        return value == 0.0 or 1e-125 < abs(value) < 1e120
    return False


_PLAIN_INT: int = 10**MAX_SIGNIFICANT_DIGITS


def _number_size(value: int | float | Decimal) -> int:
    # Sizes are also taken of values not validated yet; an invalid number is reported (with its
    # attribute's name) by check_number, not here.
    if type(value) is int and -_PLAIN_INT < value < _PLAIN_INT:
        # DynamoDB's size of a number: one byte per two significant digits, plus one. An int's
        # significant digits are its digits without the trailing zeros.
        return (len(str(value).lstrip("-").rstrip("0")) + 1) // 2 + 1 if value else 1
    if _plainly_storable(value):
        return (_significant_digits(value) + 1) // 2 + 1 if value else 1
    if isinstance(value, float) and not math.isfinite(value):
        return 1
    if isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
        return 21
    number = as_decimal(value)
    if not number.is_finite() or number.is_zero():
        return 1
    return math.ceil(len(number.normalize(EXACT).as_tuple().digits) / 2) + 1


def _significant_digits(value: object) -> int:
    """Significant digits of a non-zero int or float's shortest decimal form (``repr``)."""
    return len(repr(value).lstrip("-").partition("e")[0].replace(".", "").strip("0"))


def _text_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _members_size(pairs: Iterable[tuple[Any, Any]]) -> int:
    """Bytes of named values (a map's members, an item's attributes): each name and value, with
    the common leaves sized inline (most members of an item are short strings and integers)."""
    total = 0
    for name, member in pairs:
        total += len(name) if type(name) is str and name.isascii() else _text_size(str(name))
        kind = type(member)
        if kind is str:
            total += len(member) if member.isascii() else _text_size(member)
        elif member is None or kind is bool:
            total += 1
        elif kind is int and -_PLAIN_INT < member < _PLAIN_INT:
            total += (len(str(member).lstrip("-").rstrip("0")) + 1) // 2 + 1 if member else 1
        elif kind is float and 1e-125 < abs(member) < 1e120:
            total += (_significant_digits(member) + 1) // 2 + 1
        else:
            total += value_size(member)
    return total


def value_size(value: Any) -> int:
    """Bytes DynamoDB counts for one value (without its attribute name)."""
    kind = type(value)
    if kind is str:
        return len(value) if value.isascii() else _text_size(value)
    if kind is dict:
        return 3 + len(value) + _members_size(value.items())
    if kind is list:
        return 3 + sum(value_size(v) + 1 for v in value)
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, str):
        return _text_size(value)
    if isinstance(value, int | float | Decimal):
        return _number_size(value)
    if isinstance(value, Mapping):
        return 3 + sum(_text_size(str(k)) + value_size(v) + 1 for k, v in value.items())
    if isinstance(value, list | tuple):
        return 3 + sum(value_size(v) + 1 for v in value)
    if isinstance(value, bytes):
        return len(value)
    raise InvalidInput(f"a value of type {type(value).__name__} cannot be stored")


def item_size(item: Mapping[str, Any]) -> int:
    """An item's size as DynamoDB measures it against :data:`MAX_ITEM_BYTES`."""
    return _members_size(item.items())


def items_size(items: Iterable[Mapping[str, Any]]) -> int:
    """The sum of :func:`item_size` of ``items``, measuring a map or list that several of them
    hold (the same object, e.g. a signal copied into each target's inbox entry) once."""
    total = 0
    measured: dict[int, int] = {}
    for item in items:
        scalars = []
        for name, member in item.items():
            kind = type(member)
            if kind is dict or kind is list:
                size = measured.get(id(member))
                if size is None:
                    size = measured[id(member)] = value_size(member)
                total += size + (len(name) if type(name) is str and name.isascii() else _text_size(str(name)))
            else:
                scalars.append((name, member))
        total += _members_size(scalars)
    return total


_MAX_NUMBER_BYTES = 21
"""DynamoDB's size of any number it holds (38 significant digits: 19 bytes and one, rounded up)."""


def size_bound(value: Any) -> int:
    """At least :func:`value_size` of a value the rules accept (every number counted at its
    largest), told without measuring numbers: for sums that only need to stay under a limit."""
    kind = type(value)
    if kind is str:
        return len(value) if value.isascii() else _text_size(value)
    if kind is dict:
        total = 3 + len(value)
        for name, member in value.items():
            total += len(name) if type(name) is str and name.isascii() else size_bound(name)
            kind = type(member)
            if kind is str:
                total += len(member) if member.isascii() else _text_size(member)
            elif kind is int or kind is float:
                total += _MAX_NUMBER_BYTES
            elif member is None or kind is bool:
                total += 1
            else:
                total += size_bound(member)
        return total
    if kind is list or kind is tuple:
        return 3 + len(value) + sum(size_bound(v) for v in value)
    if value is None or kind is bool:
        return 1
    if kind is int or kind is float:
        return _MAX_NUMBER_BYTES
    return value_size(value)


def item_too_large(size: int, what: str = "item") -> LimitExceeded:
    return LimitExceeded(
        f"the {what} is {size} bytes, over the {MAX_ITEM_BYTES}-byte ({MAX_ITEM_BYTES // 1024} KB) item "
        "size limit: store less text in one record (split it, or keep large content elsewhere)"
    )


def check_item_size(item: Mapping[str, Any], what: str = "item") -> int:
    """``item_size(item)``, raising LimitExceeded if DynamoDB would refuse the item."""
    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        raise item_too_large(size, what)
    return size


def check_transaction(count: int, size: int | None = None) -> None:
    """Refuse a transaction over DynamoDB's operation count or byte limits."""
    if count > MAX_TRANSACTION_ITEMS:
        raise LimitExceeded(
            f"a transaction has {count} operations, over the limit of {MAX_TRANSACTION_ITEMS}: "
            "split it into several transactions"
        )
    if size is not None and size > MAX_TRANSACTION_BYTES:
        raise LimitExceeded(
            f"a transaction writes {size} bytes, over the transaction size limit of {MAX_TRANSACTION_BYTES} "
            "bytes (4 MB): split it into several transactions"
        )
