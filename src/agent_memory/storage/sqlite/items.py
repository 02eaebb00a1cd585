"""Items as the SQLite engine stores them: validation by DynamoDB's rules, rows, conditions, updates.

The rules themselves are in :mod:`agent_memory.item_rules`; this module applies them to rows,
so that data the embedded store accepts can always be moved to DynamoDB (and a record-layer bug
shows up on both backends alike). Data the rules refuse raises InvalidInput/LimitExceeded; a
malformed request (unknown table, an update of a key attribute, a condition without attribute...)
is a programming error of the record layer and raises ValueError/TypeError.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from agent_memory.errors import InvalidInput
from agent_memory.item_rules import (
    DYNAMODB_ARITHMETIC,
    MAX_ITEM_BYTES,
    MAX_PARTITION_KEY_BYTES,
    MAX_SORT_KEY_BYTES,
    MAX_TRANSACTION_BYTES,
    as_decimal,
    check_attribute_name,
    check_item_size,
    check_key,
    check_number,
    check_transaction,
    check_value,
    child_path,
    item_size,
)
from agent_memory.storage.engine import TABLES, TTL_ATTRIBUTE, Cond, Put, TableName, Update, WriteOp

__all__ = [
    "Row",
    "check_conditions",
    "check_table",
    "check_transaction_size",
    "check_update",
    "holds",
    "item_size",
    "load",
    "row",
    "target",
    "updated",
]


def _find_unencodable(value: Any, where: str) -> str | None:
    """Where the first string that is not valid Unicode (a lone surrogate) sits, for the message."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where
        return None
    children: Any = ()
    if isinstance(value, list | tuple):
        children = enumerate(value)
    elif isinstance(value, dict):
        children = value.items()
    for name, child in children:
        if isinstance(name, str):
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                return child_path(where, name)
        found = _find_unencodable(child, child_path(where, name))
        if found is not None:
            return found
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def same(a: Any, b: Any) -> bool:
    """DynamoDB's ``=``: equal type and value, numbers compared as decimals (so 3 == 3.0)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return as_decimal(a) == as_decimal(b)
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a is None and b is None


def _add(base: int | float, delta: int | float) -> int | float:
    if isinstance(base, int) and isinstance(delta, int):
        return base + delta
    return float(DYNAMODB_ARITHMETIC.add(as_decimal(base), as_decimal(delta)))


# --- items and rows --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """One item as stored: its JSON text plus the columns the indexes are built on."""

    table: TableName
    pk: str
    sk: str
    data: str
    size: int | None
    """DynamoDB's size of the item; None for a small item, not measured (see :func:`row`)."""
    ttl: int | float | None
    gsi: tuple[str | None, str | None, str | None, str | None, str | None, str | None]

    def params(self) -> tuple[Any, ...]:
        return (self.table, self.pk, self.sk, self.data, self.ttl, *self.gsi)


def check_table(table: Any) -> TableName:
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; the tables are {', '.join(TABLES)}")
    return cast(TableName, table)


def row(table: TableName, item: Any, *, values_checked: bool = False) -> Row:
    """The row for an item. ``values_checked``: every value was already validated (an update
    re-serialises the stored item with checked changes; re-checking every stored value made
    writes to large counter items, such as busy rollups, grow with their size)."""
    if not isinstance(item, dict):
        raise TypeError(f"an item must be a dict of attributes, not {type(item).__name__}")
    pk = check_key(item.get("pk"), "pk", MAX_PARTITION_KEY_BYTES)
    sk = check_key(item.get("sk"), "sk", MAX_SORT_KEY_BYTES)
    if not values_checked:
        for name, value in item.items():
            check_attribute_name(name)
            check_value(value, name)
    gsi: list[str | None] = [None] * 6
    for index in TABLES[table]:
        n = int(index[-1])
        pk_name, sk_name = f"gsi{n}pk", f"gsi{n}sk"
        # DynamoDB type-checks an index key attribute whenever it is present, even without its pair.
        gsi_pk = check_key(item[pk_name], pk_name, MAX_PARTITION_KEY_BYTES) if pk_name in item else None
        gsi_sk = check_key(item[sk_name], sk_name, MAX_SORT_KEY_BYTES) if sk_name in item else None
        if gsi_pk is not None and gsi_sk is not None:
            gsi[2 * n - 2], gsi[2 * n - 1] = gsi_pk, gsi_sk
    ttl = item.get(TTL_ATTRIBUTE)
    ttl_column: int | float | None = None
    if isinstance(ttl, float):
        ttl_column = ttl
    elif isinstance(ttl, int) and not isinstance(ttl, bool):
        # SQLite integers are 64-bit; a (nonsensical but legal) larger ttl is kept as a real.
        ttl_column = ttl if -(2**63) <= ttl < 2**63 else float(ttl)
    text = stored_json(item, gsi)
    # DynamoDB's measure of an item is under twice its compact JSON length (numbers, bools and
    # empty containers are the worst cases), so a small item cannot be over the limit: skip the
    # exact measure, which walks every value (it was a fifth of a write's CPU). A transaction's
    # total is measured exactly when the bounds add up to its limit (check_transaction_size).
    small = len(text) < MAX_ITEM_BYTES // 4
    size = None if small else check_item_size(item, f"item {pk!r}/{sk!r}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        where = _find_unencodable(item, "") or "?"
        raise InvalidInput(
            f"attribute '{where}' is not valid Unicode (it has a lone surrogate); send UTF-8 text"
        ) from exc
    return Row(table, pk, sk, text, size, ttl_column, (gsi[0], gsi[1], gsi[2], gsi[3], gsi[4], gsi[5]))


def load(data: str) -> Any:
    return json.loads(data)


# An item is stored as its key columns plus the JSON of its other attributes (rows written by
# earlier versions also repeat the keys in the JSON: reading merges both, so either layout loads).
KEY_COLUMNS = ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk")
ITEM_COLUMNS = "data, " + ", ".join(KEY_COLUMNS)


def stored_json(item: Mapping[str, Any], gsi: Sequence[str | None]) -> str:
    """The ``data`` column of an item: its attributes but those its key columns hold (``gsi``: the
    six index key columns as filled for the row)."""
    in_columns = {"pk", "sk", *(name for name, value in zip(KEY_COLUMNS[2:], gsi, strict=True) if value)}
    rest = {k: v for k, v in item.items() if k not in in_columns}
    return json.dumps(rest, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def load_row(found: Sequence[Any]) -> dict[str, Any]:
    """An item from a row selected as :data:`ITEM_COLUMNS`."""
    item: dict[str, Any] = json.loads(found[0])
    for name, value in zip(KEY_COLUMNS, found[1:9], strict=True):
        if value is not None:
            item[name] = value
    return item


# --- conditions and updates ------------------------------------------------------------------------

_ATTR_KINDS = ("attr_exists", "attr_not_exists", "eq", "at_most")
_KINDS = ("item_exists", "item_not_exists", *_ATTR_KINDS)


def check_conditions(conditions: Sequence[Cond]) -> None:
    for cond in conditions:
        if not isinstance(cond, Cond) or cond.kind not in _KINDS:
            raise ValueError(f"unknown condition {cond!r}")
        if cond.kind in _ATTR_KINDS and (not isinstance(cond.attr, str) or not cond.attr):
            raise ValueError(f"condition {cond.kind} needs an attribute name")
        if cond.kind == "eq":
            check_value(cond.value, f"{cond.attr} (condition value)")
        if cond.kind == "at_most" and (isinstance(cond.value, bool) or not isinstance(cond.value, int)):
            raise ValueError(f"condition at_most on {cond.attr} needs an integer, not {cond.value!r}")


def holds(cond: Cond, item: Mapping[str, Any] | None) -> bool:
    if cond.kind == "item_exists":
        return item is not None
    if cond.kind == "item_not_exists":
        return item is None
    attr = cast(str, cond.attr)
    if cond.kind == "attr_exists":
        return item is not None and attr in item
    if cond.kind == "attr_not_exists":
        return item is None or attr not in item
    if cond.kind == "at_most":
        current = item.get(attr, 0) if item is not None else 0
        return isinstance(current, int | float) and current <= cond.value
    return item is not None and attr in item and same(item[attr], cond.value)


def check_update(op: Update) -> None:
    seen: set[str] = set()
    for group in (op.set, op.add, op.remove):
        for name in group:
            if not isinstance(name, str) or not name:
                raise ValueError(f"attribute names must be non-empty strings, not {name!r}")
            if name in ("pk", "sk"):
                raise ValueError(f"cannot update key attribute '{name}'; write a new item instead")
            if name in seen:
                raise ValueError(f"attribute '{name}' appears in more than one of set, add and remove")
            seen.add(name)
    for name, value in op.set.items():
        check_attribute_name(name)
        check_value(value, name)
    for name, delta in op.add.items():
        if not _is_number(delta):
            raise TypeError(f"add needs a number for attribute '{name}', not {delta!r}")
        check_number(delta, name)


def updated(op: Update, current: Mapping[str, Any] | None) -> dict[str, Any]:
    item: dict[str, Any] = dict(current) if current is not None else {"pk": op.pk, "sk": op.sk}
    item.update(op.set)
    for name, delta in op.add.items():
        base = item.get(name, 0)
        if not _is_number(base):
            # The stored data, not the request, decides this: DynamoDB answers ValidationException.
            raise InvalidInput(
                f"cannot add to attribute '{name}': it holds a {type(base).__name__}, not a number"
            )
        item[name] = _add(base, delta)
        check_number(item[name], name)  # a sum can leave the storable range
    for name in op.remove:
        item.pop(name, None)
    return item


def target(op: WriteOp) -> tuple[TableName, str, str]:
    table = check_table(op.table)
    if isinstance(op, Put):
        if not isinstance(op.item, dict):
            raise TypeError(f"an item must be a dict of attributes, not {type(op.item).__name__}")
        return (
            table,
            check_key(op.item.get("pk"), "pk", MAX_PARTITION_KEY_BYTES),
            check_key(op.item.get("sk"), "sk", MAX_SORT_KEY_BYTES),
        )
    return (
        table,
        check_key(op.pk, "pk", MAX_PARTITION_KEY_BYTES),
        check_key(op.sk, "sk", MAX_SORT_KEY_BYTES),
    )


_KEYS_BOUND = 8 * (MAX_PARTITION_KEY_BYTES + 16)
"""More than the key attributes of an item (names and values) can take."""


def check_transaction_size(ops: Sequence[WriteOp], put_rows: Mapping[int, Row]) -> None:
    # Measured as the DynamoDB engine measures it (an update counts what it sends), so both
    # backends refuse the same transactions. The bounds of small rows are summed first; only a
    # total over the limit is measured exactly.
    if _total(ops, put_rows, exact=False) > MAX_TRANSACTION_BYTES:
        check_transaction(len(ops), _total(ops, put_rows, exact=True))


def _total(ops: Sequence[WriteOp], put_rows: Mapping[int, Row], *, exact: bool) -> int:
    total = 0
    for i, op in enumerate(ops):
        if isinstance(op, Put):
            size = put_rows[i].size
            if size is None and exact:
                size = item_size(op.item)
            # An unmeasured row's bound: twice its JSON, plus its keys (see row()).
            total += size if size is not None else 2 * len(put_rows[i].data) + _KEYS_BOUND
        elif isinstance(op, Update):
            total += item_size({"pk": op.pk, "sk": op.sk, **op.set, **op.add})
        else:
            total += item_size({"pk": op.pk, "sk": op.sk})
    return total
