"""The embedded backend: the item engine on one SQLite file shared by many processes.

It must be indistinguishable from the DynamoDB engine to the record layer, so it validates what
DynamoDB validates (key types, number range, item size, transaction size) and orders and pages
exactly as DynamoDB does.

Concurrency model: each engine owns one connection, used only from one dedicated worker thread, so
the event loop never blocks and every engine call runs as one job on that thread. A write is one
``BEGIN IMMEDIATE`` transaction that reads its target rows, evaluates the conditions in Python and
applies everything or nothing, without returning to the event loop while it holds the write lock.
Other processes are kept out by SQLite's file locks (WAL mode: readers never wait for writers);
"database is locked" is absorbed by SQLite's busy timeout and then by a jittered retry, and only a
lock held for :attr:`SqliteEngine.lock_timeout` seconds reaches the caller, as StorageUnavailable.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Context, Decimal
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn, TypeVar, cast

from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_random_exponential

from agent_memory.errors import ConfigurationError, InvalidInput, LimitExceeded, StorageUnavailable
from agent_memory.storage import usage
from agent_memory.storage.engine import (
    MAX_ITEM_BYTES,
    MAX_TRANSACTION_ITEMS,
    TABLES,
    TTL_ATTRIBUTE,
    Check,
    Cond,
    ConditionFailed,
    Delete,
    IndexName,
    Item,
    Key,
    Put,
    QueryPage,
    TableName,
    Update,
    WriteOp,
)
from agent_memory.storage.sqlite.schema import PATH_SETTING, migrate

__all__ = ["SqliteEngine", "build_query_sql", "prefix_upper_bound"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# DynamoDB's limits, enforced here too so that data the embedded store accepts can always be
# migrated to DynamoDB (and a record-layer bug shows up on both backends alike).
MAX_PARTITION_KEY_BYTES = 2048
MAX_SORT_KEY_BYTES = 1024
MAX_NUMBER_DIGITS = 38
MAX_NESTING_DEPTH = 32
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
# Adjusted exponents (of the leading digit) DynamoDB accepts: 1E-130 .. 9.99...9E+125.
_MIN_ADJUSTED_EXPONENT = -130
_MAX_ADJUSTED_EXPONENT = 125
# 2**419 > 10**126: an int with more bits is out of range whatever its digits.
_MAX_INT_BITS = 419
# Exact for every number the checks accept (normalising must never round).
_EXACT = Context(prec=400)
# DynamoDB adds numbers in decimal with 38 digits, so 0.1 + 0.2 is 0.3 there and must be here.
_DECIMAL = Context(prec=MAX_NUMBER_DIGITS)
_MAX_CODE_POINT = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)
# SQLITE_BUSY and SQLITE_LOCKED (primary result codes, the low byte of the extended code).
_BUSY_CODES = (5, 6)

_GET_SQL = "SELECT data FROM items WHERE tbl = ? AND pk = ? AND sk = ?"
_PUT_SQL = (
    "INSERT OR REPLACE INTO items (tbl, pk, sk, data, ttl, gsi1pk, gsi1sk, gsi2pk, gsi2sk, gsi3pk, gsi3sk) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_DELETE_SQL = "DELETE FROM items WHERE tbl = ? AND pk = ? AND sk = ?"
_SCAN_FIRST_SQL = "SELECT pk, sk, data FROM items WHERE tbl = ? ORDER BY pk, sk LIMIT ?"
_SCAN_NEXT_SQL = "SELECT pk, sk, data FROM items WHERE tbl = ? AND (pk, sk) > (?, ?) ORDER BY pk, sk LIMIT ?"
# DELETE ... LIMIT needs a compile-time option, hence the keyed subquery (it seeks the ttl index).
_PURGE_SQL = "DELETE FROM items WHERE rowid IN (SELECT rowid FROM items WHERE ttl < ? LIMIT ?)"


# --- values ----------------------------------------------------------------------------------------


def _path(parent: str, child: str | int) -> str:
    if isinstance(child, int):
        return f"{parent}[{child}]"
    return f"{parent}.{child}" if parent else child


def _check_number(value: int | float, where: str) -> None:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(
                f"attribute '{where}' is {value!r}: NaN and Infinity cannot be stored. "
                "Send a finite number, or null."
            )
    elif value.bit_length() > _MAX_INT_BITS:
        # Checked first: Decimal() of a huge int is slow, and certainly out of range anyway.
        _out_of_range(value, where)
    number = _number(value)
    if not number:
        return
    # DynamoDB counts significant digits without trailing zeros: 10**40 is one digit (1E+40).
    normal = number.normalize(_EXACT)
    if len(normal.as_tuple().digits) > MAX_NUMBER_DIGITS:
        raise InvalidInput(
            f"attribute '{where}' has more than {MAX_NUMBER_DIGITS} significant digits, more than the "
            "storage backends can hold exactly. Round it, or store it as a string."
        )
    if not _MIN_ADJUSTED_EXPONENT <= normal.adjusted() <= _MAX_ADJUSTED_EXPONENT:
        _out_of_range(value, where)


def _out_of_range(value: int | float, where: str) -> NoReturn:
    shown = repr(value) if isinstance(value, float) else f"an integer of {value.bit_length()} bits"
    raise InvalidInput(
        f"attribute '{where}' is {shown}, outside the range the storage backends can store "
        "(0, or a magnitude from 1E-130 to 9.99E+125). Store it as a string instead."
    )


def _check_value(value: Any, where: str, depth: int = 0) -> None:
    """Validate one attribute value; ``depth`` is 0 for a top-level attribute's value."""
    if depth > MAX_NESTING_DEPTH:
        raise LimitExceeded(
            f"attribute '{where}' is nested more than {MAX_NESTING_DEPTH} levels deep, over DynamoDB's "
            "limit. Flatten the value."
        )
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, (int, float)):
        _check_number(value, where)
        return
    if isinstance(value, (list, tuple)):
        for i, element in enumerate(value):
            _check_value(element, _path(where, i), depth + 1)
        return
    if isinstance(value, dict):
        for name, element in value.items():
            if not isinstance(name, str):
                raise InvalidInput(
                    f"attribute '{where}' has a non-string key {name!r}; object keys must be strings."
                )
            _check_value(element, _path(where, name), depth + 1)
        return
    raise InvalidInput(
        f"attribute '{where}' is a {type(value).__name__}, which cannot be stored. "
        "Use str, int, float, bool, null, list or object values."
    )


def _value_size(value: Any) -> int:
    """Bytes DynamoDB counts for a value, by its published rules (names count separately)."""
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, (int, float)):
        number = _number(value)
        if not number:
            return 1
        return math.ceil(len(number.normalize(_EXACT).as_tuple().digits) / 2) + 1
    if isinstance(value, dict):
        return 3 + sum(len(k.encode("utf-8", "surrogatepass")) + _value_size(v) + 1 for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return 3 + sum(_value_size(v) + 1 for v in value)
    return 0


def item_size(item: Mapping[str, Any]) -> int:
    """An item's size as DynamoDB measures it against :data:`MAX_ITEM_BYTES`.

    The same measure as the DynamoDB engine's, so an item is refused by both backends or by
    neither, and everything stored here can be moved to DynamoDB.
    """
    return sum(len(k.encode("utf-8", "surrogatepass")) + _value_size(v) for k, v in item.items())


def _find_unencodable(value: Any, where: str) -> str | None:
    """Where the first string that is not valid Unicode (a lone surrogate) sits, for the message."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where
        return None
    children: Any = ()
    if isinstance(value, (list, tuple)):
        children = enumerate(value)
    elif isinstance(value, dict):
        children = value.items()
    for name, child in children:
        if isinstance(name, str):
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                return _path(where, name)
        found = _find_unencodable(child, _path(where, name))
        if found is not None:
            return found
    return None


def _key_string(value: Any, name: str, max_bytes: int) -> str:
    """A key attribute as DynamoDB accepts it: a non-empty string within the key size limit."""
    if not isinstance(value, str) or not value:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise InvalidInput(f"key attribute '{name}' must be a non-empty string, not {shown}.")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"key attribute '{name}' is not valid Unicode (it has a lone surrogate).") from exc
    if size > max_bytes:
        raise LimitExceeded(
            f"key attribute '{name}' is {size} bytes, over the key size limit of {max_bytes} bytes."
        )
    return value


def _number(value: int | float) -> Decimal:
    # repr() is the shortest string that round-trips, the same digits the DynamoDB engine sends.
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    """DynamoDB's ``=``: equal type and value, numbers compared as decimals (so 3 == 3.0)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return _number(a) == _number(b)
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a is None and b is None


def _add(base: int | float, delta: int | float) -> int | float:
    if isinstance(base, int) and isinstance(delta, int):
        return base + delta
    return float(_DECIMAL.add(_number(base), _number(delta)))


# --- items and rows --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Row:
    """One item as stored: its JSON text plus the columns the indexes are built on."""

    table: TableName
    pk: str
    sk: str
    data: str
    size: int
    ttl: int | float | None
    gsi: tuple[str | None, str | None, str | None, str | None, str | None, str | None]

    def params(self) -> tuple[Any, ...]:
        return (self.table, self.pk, self.sk, self.data, self.ttl, *self.gsi)


def _check_table(table: Any) -> TableName:
    if table not in TABLES:
        raise InvalidInput(f"unknown table {table!r}; the tables are {', '.join(TABLES)}.")
    return cast(TableName, table)


def _row(table: TableName, item: Any, *, values_checked: bool = False) -> _Row:
    """The row for an item. ``values_checked``: every value was already validated (an update
    re-serialises the stored item with checked changes; re-checking every stored value made
    writes to large counter items, such as busy rollups, grow with their size)."""
    if not isinstance(item, dict):
        raise InvalidInput(f"an item must be an object of attributes, not {type(item).__name__}.")
    pk = _key_string(item.get("pk"), "pk", MAX_PARTITION_KEY_BYTES)
    sk = _key_string(item.get("sk"), "sk", MAX_SORT_KEY_BYTES)
    if not values_checked:
        for name, value in item.items():
            if not isinstance(name, str) or not name:
                raise InvalidInput(f"attribute names must be non-empty strings, not {name!r}.")
            _check_value(value, name)
    gsi: list[str | None] = [None] * 6
    for index in TABLES[table]:
        n = int(index[-1])
        pk_name, sk_name = f"gsi{n}pk", f"gsi{n}sk"
        # DynamoDB type-checks an index key attribute whenever it is present, even without its pair.
        gsi_pk = _key_string(item[pk_name], pk_name, MAX_PARTITION_KEY_BYTES) if pk_name in item else None
        gsi_sk = _key_string(item[sk_name], sk_name, MAX_SORT_KEY_BYTES) if sk_name in item else None
        if gsi_pk is not None and gsi_sk is not None:
            gsi[2 * n - 2], gsi[2 * n - 1] = gsi_pk, gsi_sk
    ttl = item.get(TTL_ATTRIBUTE)
    ttl_column: int | float | None = None
    if isinstance(ttl, float):
        ttl_column = ttl
    elif isinstance(ttl, int) and not isinstance(ttl, bool):
        # SQLite integers are 64-bit; a (nonsensical but legal) larger ttl is kept as a real.
        ttl_column = ttl if -(2**63) <= ttl < 2**63 else float(ttl)
    text = json.dumps(item, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    # DynamoDB's measure of an item is under twice its compact JSON length (numbers, bools and
    # empty containers are the worst cases), so a small updated item cannot be over the limit:
    # skip the exact measure, which walks every value. (An update's size is not used for the
    # transaction limit: that counts what an update sends.)
    small_update = values_checked and len(text) < MAX_ITEM_BYTES // 4
    size = len(text) if small_update else _check_size(item, pk, sk)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        where = _find_unencodable(item, "") or "?"
        raise InvalidInput(
            f"attribute '{where}' is not valid Unicode (it has a lone surrogate); send UTF-8 text."
        ) from exc
    return _Row(table, pk, sk, text, size, ttl_column, (gsi[0], gsi[1], gsi[2], gsi[3], gsi[4], gsi[5]))


def _check_size(item: Mapping[str, Any], pk: str, sk: str) -> int:
    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        raise LimitExceeded(
            f"item {pk!r}/{sk!r} is {size} bytes, over the item size limit of {MAX_ITEM_BYTES} bytes "
            f"(MAX_ITEM_BYTES, {MAX_ITEM_BYTES // 1024} KB). Store less in one record."
        )
    return size


def _load(data: str) -> Item:
    return cast(Item, json.loads(data))


# --- conditions and updates ------------------------------------------------------------------------

_ATTR_KINDS = ("attr_exists", "attr_not_exists", "eq")
_KINDS = ("item_exists", "item_not_exists", *_ATTR_KINDS)


def _check_conditions(conditions: Sequence[Cond]) -> None:
    for cond in conditions:
        if not isinstance(cond, Cond) or cond.kind not in _KINDS:
            raise InvalidInput(f"unknown condition {cond!r}.")
        if cond.kind in _ATTR_KINDS and (not isinstance(cond.attr, str) or not cond.attr):
            raise InvalidInput(f"condition {cond.kind} needs an attribute name.")
        if cond.kind == "eq":
            _check_value(cond.value, f"{cond.attr} (condition value)")


def _holds(cond: Cond, item: Item | None) -> bool:
    if cond.kind == "item_exists":
        return item is not None
    if cond.kind == "item_not_exists":
        return item is None
    attr = cast(str, cond.attr)
    if cond.kind == "attr_exists":
        return item is not None and attr in item
    if cond.kind == "attr_not_exists":
        return item is None or attr not in item
    return item is not None and attr in item and _same(item[attr], cond.value)


def _check_update(op: Update) -> None:
    seen: set[str] = set()
    for group in (op.set, op.add, op.remove):
        for name in group:
            if not isinstance(name, str) or not name:
                raise InvalidInput(f"attribute names must be non-empty strings, not {name!r}.")
            if name in ("pk", "sk"):
                raise InvalidInput(f"cannot update key attribute '{name}'; write a new item instead.")
            if name in seen:
                raise InvalidInput(f"attribute '{name}' appears in more than one of set, add and remove.")
            seen.add(name)
    for name, value in op.set.items():
        _check_value(value, name)
    for name, delta in op.add.items():
        if not _is_number(delta):
            raise InvalidInput(f"add needs a number for attribute '{name}', not {delta!r}.")
        _check_number(delta, name)


def _updated(op: Update, current: Item | None) -> Item:
    item: Item = dict(current) if current is not None else {"pk": op.pk, "sk": op.sk}
    item.update(op.set)
    for name, delta in op.add.items():
        base = item.get(name, 0)
        if not _is_number(base):
            raise InvalidInput(
                f"cannot add to attribute '{name}': it holds a {type(base).__name__}, not a number."
            )
        item[name] = _add(base, delta)
        _check_number(item[name], name)  # a sum can leave the storable range
    for name in op.remove:
        item.pop(name, None)
    return item


def _target(op: WriteOp) -> tuple[TableName, str, str]:
    table = _check_table(op.table)
    if isinstance(op, Put):
        if not isinstance(op.item, dict):
            raise InvalidInput(f"an item must be an object of attributes, not {type(op.item).__name__}.")
        return (
            table,
            _key_string(op.item.get("pk"), "pk", MAX_PARTITION_KEY_BYTES),
            _key_string(op.item.get("sk"), "sk", MAX_SORT_KEY_BYTES),
        )
    return (
        table,
        _key_string(op.pk, "pk", MAX_PARTITION_KEY_BYTES),
        _key_string(op.sk, "sk", MAX_SORT_KEY_BYTES),
    )


def _check_transaction_size(ops: Sequence[WriteOp], put_rows: Mapping[int, _Row]) -> None:
    # Measured as the DynamoDB engine measures it (an update counts what it sends), so both
    # backends refuse the same transactions.
    total = 0
    for i, op in enumerate(ops):
        if isinstance(op, Put):
            total += put_rows[i].size
        elif isinstance(op, Update):
            total += item_size({"pk": op.pk, "sk": op.sk, **op.set, **op.add})
        else:
            total += item_size({"pk": op.pk, "sk": op.sk})
    if total > MAX_TRANSACTION_BYTES:
        raise LimitExceeded(
            f"a transaction writes {total} bytes, over the transaction size limit of "
            f"{MAX_TRANSACTION_BYTES} bytes (4 MB). Split it into several transactions."
        )


# --- queries ---------------------------------------------------------------------------------------


def prefix_upper_bound(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix`` (None: no such string).

    Code-point order is UTF-8 byte order, so bumping the last code point gives an exact exclusive
    bound; appending U+FFFF (the usual trick) would miss keys continuing with supplementary-plane
    characters, whose UTF-8 sorts above it.
    """
    chars = list(prefix)
    while chars:
        last = ord(chars.pop()) + 1
        if last in _SURROGATES:
            last = _SURROGATES.stop
        if last <= _MAX_CODE_POINT:
            return "".join(chars) + chr(last)
    return None


def _bound(value: str | None, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string, not {value!r}.")
    return value


def build_query_sql(
    table: TableName,
    pk: str,
    *,
    index: IndexName | None = None,
    sk_gte: str | None = None,
    sk_lte: str | None = None,
    sk_prefix: str | None = None,
    forward: bool = True,
    limit: int = 100,
    start: Key | None = None,
) -> tuple[str, list[Any]] | None:
    """The SQL and parameters of one query page, validated as :meth:`SqliteEngine.query` does;
    None when the range is empty whatever the data.

    The SQL selects ``data`` and the key columns of the continuation, and asks for ``limit + 1``
    rows: the extra row tells whether the range goes on. Each page is a single seek on the primary
    key or on the index's partial index: at most one lower and one upper bound reach SQLite, because
    given two competing lower bounds (``sk >= ?`` and the continuation) the planner seeks on one and
    filters with the other, which would turn late pages into scans of everything before them.
    """
    table = _check_table(table)
    _key_string(pk, "pk" if index is None else f"{index}pk", MAX_PARTITION_KEY_BYTES)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidInput(f"limit must be a positive integer, not {limit!r}.")
    sk_gte, sk_lte = _bound(sk_gte, "sk_gte"), _bound(sk_lte, "sk_lte")
    sk_prefix = _bound(sk_prefix, "sk_prefix")
    if sk_prefix is not None and (sk_gte is not None or sk_lte is not None):
        raise InvalidInput("sk_prefix cannot be combined with sk_gte or sk_lte.")
    if index is None:
        pk_col, sk_col = "pk", "sk"
        order: tuple[str, ...] = ("sk",)
    else:
        if index not in TABLES[table]:
            has = ", ".join(TABLES[table]) or "none"
            raise InvalidInput(f"table {table!r} has no index {index!r} (its indexes: {has}).")
        pk_col, sk_col = f"{index}pk", f"{index}sk"
        order = (sk_col, "pk", "sk")

    # Sort keys are never empty, so "" as a lower bound or prefix bounds nothing, and "" as an upper
    # bound (or bounds that cross) select nothing; the DynamoDB engine reads them the same way.
    if sk_lte == "" or (sk_gte is not None and sk_lte is not None and sk_gte > sk_lte):
        return None
    # (operator, value) of the scalar sort-key bounds.
    lower: tuple[str, str] | None = None
    upper: tuple[str, str] | None = None
    if sk_prefix:
        lower = (">=", sk_prefix)
        end = prefix_upper_bound(sk_prefix)
        upper = ("<", end) if end is not None else None
    else:
        if sk_gte:
            lower = (">=", sk_gte)
        if sk_lte is not None:
            upper = ("<=", sk_lte)

    where = ["tbl = ?", f"{pk_col} = ?"]
    params: list[Any] = [table, pk]
    continuation: tuple[str, list[str]] | None = None
    if start is not None:
        names = ("pk", "sk") if index is None else ("pk", "sk", pk_col, sk_col)
        if not isinstance(start, Mapping) or any(not isinstance(start.get(n), str) for n in names):
            raise InvalidInput(f"start must be the last_key of a previous page (with {', '.join(names)}).")
        if start[pk_col] != pk:
            raise InvalidInput("start is the last_key of a query on another partition.")
        values = [start[c] for c in order]
        first = values[0]
        if len(order) == 1:
            continuation = (f"{order[0]} {'>' if forward else '<'} ?", values)
        else:
            cols, marks = ", ".join(order), ", ".join("?" * len(order))
            continuation = (f"({cols}) {'>' if forward else '<'} ({marks})", values)
        # The continuation replaces the scalar bound on its side, unless it lies outside the range
        # (then the scalar bound is the tighter one and the continuation is moot).
        if forward and (lower is None or first >= lower[1]):
            lower = None
        elif not forward and (upper is None or (first <= upper[1] if upper[0] == "<=" else first < upper[1])):
            upper = None
        else:
            continuation = None
    for bound in (lower, upper):
        if bound is not None:
            where.append(f"{sk_col} {bound[0]} ?")
            params.append(bound[1])
    if continuation is not None:
        where.append(continuation[0])
        params.extend(continuation[1])
    direction = "" if forward else " DESC"
    key_cols = "pk, sk" if index is None else f"pk, sk, {pk_col}, {sk_col}"
    sql = (
        f"SELECT data, {key_cols} FROM items WHERE {' AND '.join(where)} "
        f"ORDER BY {', '.join(c + direction for c in order)} LIMIT ?"
    )
    params.append(limit + 1)
    return sql, params


# --- the engine ------------------------------------------------------------------------------------


def _is_busy(exc: BaseException) -> bool:
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _BUSY_CODES
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class SqliteEngine:
    """:class:`~agent_memory.storage.engine.ItemEngine` on one SQLite file. Create with :meth:`open`.

    Tunables (keyword arguments of :meth:`open`):
    ``busy_timeout`` seconds SQLite itself waits for a lock per attempt; ``lock_timeout`` seconds of
    retrying before a held lock becomes StorageUnavailable; expired items are purged (at most
    ``purge_batch`` of them) on the first write, then on every ``purge_every``-th write or the first
    write after ``purge_interval`` seconds; ``scan_page`` rows are read per scan step.
    """

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout: float,
        lock_timeout: float,
        purge_every: int,
        purge_interval: float,
        purge_batch: int,
        scan_page: int,
        keep_expired: tuple[TableName, ...] = (),
    ) -> None:
        self.path = path
        # Tables whose expired items wait for `agent-memory archive` instead of the lazy purge.
        self.keep_expired = keep_expired
        self._purge_sql = _PURGE_SQL
        if keep_expired:
            kept = ", ".join("?" for _ in keep_expired)
            self._purge_sql = _PURGE_SQL.replace("WHERE ttl < ?", f"WHERE ttl < ? AND tbl NOT IN ({kept})")
        self.busy_timeout = busy_timeout
        self.lock_timeout = lock_timeout
        self.purge_every = purge_every
        self.purge_interval = purge_interval
        self.purge_batch = purge_batch
        self.scan_page = scan_page
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agent-memory-sqlite")
        # Touched only on the worker thread.
        self._conn: sqlite3.Connection | None = None
        self._writes_since_purge = 0
        self._last_purge = -math.inf
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: str | PathLike[str],
        *,
        busy_timeout: float = 1.0,
        lock_timeout: float = 30.0,
        purge_every: int = 200,
        purge_interval: float = 600.0,
        purge_batch: int = 300,
        scan_page: int = 500,
        keep_expired: tuple[TableName, ...] = (),
    ) -> SqliteEngine:
        """Open (creating file, directory and schema if needed) the database at ``path``.
        ``keep_expired`` tables are left out of the lazy purge (their expired items are archived,
        then deleted, by :mod:`agent_memory.storage.archive`)."""
        engine = cls(
            Path(path),
            busy_timeout=busy_timeout,
            lock_timeout=lock_timeout,
            purge_every=purge_every,
            purge_interval=purge_interval,
            purge_batch=purge_batch,
            scan_page=scan_page,
            keep_expired=keep_expired,
        )
        try:
            await engine._call(engine._connect_sync)
            await engine._retrying(engine._setup_sync)
        except BaseException:
            await engine.close()
            raise
        return engine

    async def __aenter__(self) -> SqliteEngine:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Queued behind any job still running, so an in-flight write finishes (whole) first.
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close_sync)
        self._executor.shutdown(wait=False)

    # --- ItemEngine ----------------------------------------------------------------------------

    async def get(self, table: TableName, pk: str, sk: str, *, consistent: bool = True) -> Item | None:
        usage.record("sqlite.get")
        key = (
            _check_table(table),
            _key_string(pk, "pk", MAX_PARTITION_KEY_BYTES),
            _key_string(sk, "sk", MAX_SORT_KEY_BYTES),
        )
        return await self._retrying(functools.partial(self._get_sync, *key))

    async def query(
        self,
        table: TableName,
        pk: str,
        *,
        index: IndexName | None = None,
        sk_gte: str | None = None,
        sk_lte: str | None = None,
        sk_prefix: str | None = None,
        forward: bool = True,
        limit: int = 100,
        start: Key | None = None,
        consistent: bool = True,
    ) -> QueryPage:
        usage.record("sqlite.query")
        built = build_query_sql(
            table,
            pk,
            index=index,
            sk_gte=sk_gte,
            sk_lte=sk_lte,
            sk_prefix=sk_prefix,
            forward=forward,
            limit=limit,
            start=start,
        )
        if built is None:
            return QueryPage(items=[], last_key=None)
        key_names = ("pk", "sk") if index is None else ("pk", "sk", f"{index}pk", f"{index}sk")
        rows = await self._retrying(functools.partial(self._query_sync, *built, key_names))
        if len(rows) <= limit:
            return QueryPage(items=[item for item, _ in rows], last_key=None)
        # The extra row only proves the range goes on; the page ends at the one before it.
        return QueryPage(items=[item for item, _ in rows[:limit]], last_key=rows[limit - 1][1])

    async def write(self, ops: Sequence[WriteOp]) -> None:
        usage.record("sqlite.write")
        self._check_ops(ops)
        if ops:
            await self._retrying(functools.partial(self._write_sync, list(ops)))

    async def update(self, op: Update) -> Item:
        usage.record("sqlite.update")
        if not isinstance(op, Update):
            raise InvalidInput(f"update() takes an Update, not {op!r}.")
        self._check_ops([op])
        result = await self._retrying(functools.partial(self._write_sync, [op]))
        return cast(Item, result)

    async def scan(self, table: TableName) -> AsyncIterator[Item]:
        usage.record("sqlite.scan")
        table = _check_table(table)
        after: tuple[str, str] | None = None
        while True:
            rows = await self._retrying(functools.partial(self._scan_sync, table, after))
            for _, _, item in rows:
                yield item
            if len(rows) < self.scan_page:
                return
            after = (rows[-1][0], rows[-1][1])

    # --- administration ------------------------------------------------------------------------

    async def purge_expired(self, *, now: float | None = None, limit: int | None = None) -> int:
        """Delete up to ``limit`` (default ``purge_batch``) items whose ttl is before ``now``.

        Writes do this by themselves from time to time; this is for jobs and tests. Returns the
        number of items deleted.
        """
        usage.record("sqlite.purge")
        cutoff = time.time() if now is None else now
        batch = self.purge_batch if limit is None else limit
        return await self._retrying(functools.partial(self._purge_sync, cutoff, batch))

    # --- plumbing ------------------------------------------------------------------------------

    @staticmethod
    def _check_ops(ops: Sequence[WriteOp]) -> None:
        """Checks that need no data, so a bad request fails before any lock is taken."""
        if len(ops) > MAX_TRANSACTION_ITEMS:
            raise LimitExceeded(
                f"a transaction has {len(ops)} operations, over the limit of {MAX_TRANSACTION_ITEMS} "
                "(MAX_TRANSACTION_ITEMS). Split it into several transactions."
            )
        seen: set[tuple[str, str, str]] = set()
        for op in ops:
            if not isinstance(op, (Put, Update, Delete, Check)):
                raise InvalidInput(f"not a write operation: {op!r}.")
            target = _target(op)
            if target in seen:
                raise InvalidInput(
                    f"a transaction touches item {target[1]!r}/{target[2]!r} of {target[0]!r} twice; "
                    "combine those operations into one."
                )
            seen.add(target)
            _check_conditions(op.conditions)
            if isinstance(op, Update):
                _check_update(op)

    async def _call(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise StorageUnavailable(f"the SQLite engine on {self.path} is closed.")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _retrying(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the worker thread, retrying while another process holds the lock."""
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(_is_busy),
                wait=wait_random_exponential(multiplier=0.005, max=0.25),
                stop=stop_after_delay(self.lock_timeout),
                reraise=True,
            ):
                with attempt:
                    return await self._call(fn)
        except sqlite3.Error as exc:
            if _is_busy(exc):
                raise StorageUnavailable(
                    f"The SQLite database {self.path} stayed locked by another process for more than "
                    f"{self.lock_timeout:g} s. Another agent-memory process or tool is holding a long "
                    "write transaction; retry later, or stop that process."
                ) from exc
            raise StorageUnavailable(
                f"The SQLite database {self.path} failed: {exc}. Check that the disk is not full and "
                "that the file is readable and writable."
            ) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StorageUnavailable(f"the SQLite engine on {self.path} is not open.")
        return self._conn

    def _config_error(self, problem: str) -> ConfigurationError:
        return ConfigurationError(
            f"Cannot use the SQLite database {self.path}: {problem}. "
            f"Set {PATH_SETTING} to a writable file path."
        )

    def _connect_sync(self) -> None:
        self.path = self.path.expanduser()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._config_error(f"cannot create its directory ({exc.strerror or exc})") from exc
        try:
            # Autocommit mode: the engine issues BEGIN IMMEDIATE / COMMIT itself, so the module never
            # opens a deferred transaction that could fail to upgrade to a write lock.
            self._conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._config_error(str(exc)) from exc

    def _setup_sync(self) -> None:
        conn = self._db
        try:
            mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0])
            if mode.lower() != "wal":
                # Persistent in the file: only the first opener of a fresh file switches it.
                mode = str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
                if mode.lower() != "wal":
                    log.warning(
                        "SQLite database %s cannot use WAL mode (journal mode %s); writers will block "
                        "readers. Put it on a local file system.",
                        self.path,
                        mode,
                    )
            # With WAL, NORMAL is still crash-safe (no corruption); only the last commits before a
            # power loss may be lost.
            conn.execute("PRAGMA synchronous=NORMAL")
            migrate(conn, str(self.path))
        except sqlite3.Error as exc:
            if _is_busy(exc):
                raise
            raise self._config_error(str(exc)) from exc

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _fetch(self, table: str, pk: str, sk: str) -> Item | None:
        row = self._db.execute(_GET_SQL, (table, pk, sk)).fetchone()
        return None if row is None else _load(row[0])

    def _get_sync(self, table: str, pk: str, sk: str) -> Item | None:
        return self._fetch(table, pk, sk)

    def _query_sync(self, sql: str, params: list[Any], key_names: tuple[str, ...]) -> list[tuple[Item, Key]]:
        rows = self._db.execute(sql, params).fetchall()
        return [(_load(r[0]), dict(zip(key_names, r[1:], strict=True))) for r in rows]

    def _scan_sync(self, table: str, after: tuple[str, str] | None) -> list[tuple[str, str, Item]]:
        if after is None:
            cursor = self._db.execute(_SCAN_FIRST_SQL, (table, self.scan_page))
        else:
            cursor = self._db.execute(_SCAN_NEXT_SQL, (table, *after, self.scan_page))
        return [(r[0], r[1], _load(r[2])) for r in cursor.fetchall()]

    def _purge_sync(self, cutoff: float, limit: int) -> int:
        conn = self._db
        conn.execute("BEGIN IMMEDIATE")
        try:
            deleted = conn.execute(self._purge_sql, (cutoff, *self.keep_expired, limit)).rowcount
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return deleted

    def _write_sync(self, ops: list[WriteOp]) -> Item | None:
        """One attempt at a write: the whole read-check-apply cycle in one IMMEDIATE transaction."""
        targets = [_target(op) for op in ops]
        # Serialising Puts before taking the lock keeps the locked section to SQL and comparisons.
        put_rows = {i: _row(op.table, op.item) for i, op in enumerate(ops) if isinstance(op, Put)}
        if len(ops) > 1:
            _check_transaction_size(ops, put_rows)
        conn = self._db
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = [self._fetch(*target) for target in targets]
            for i, op in enumerate(ops):
                if not all(_holds(cond, current[i]) for cond in op.conditions):
                    raise ConditionFailed(i, current[i])
            result: Item | None = None
            for i, op in enumerate(ops):
                if isinstance(op, Put):
                    conn.execute(_PUT_SQL, put_rows[i].params())
                elif isinstance(op, Update):
                    row = _row(targets[i][0], _updated(op, current[i]), values_checked=True)
                    conn.execute(_PUT_SQL, row.params())
                    result = _load(row.data)
                elif isinstance(op, Delete):
                    conn.execute(_DELETE_SQL, targets[i])
            self._maybe_purge(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    def _maybe_purge(self, conn: sqlite3.Connection) -> None:
        # Inside the caller's transaction: it already holds the write lock, so purging costs no extra
        # lock round, and a failed write purges nothing.
        self._writes_since_purge += 1
        now = time.monotonic()
        if self._writes_since_purge < self.purge_every and now - self._last_purge < self.purge_interval:
            return
        self._writes_since_purge = 0
        self._last_purge = now
        deleted = conn.execute(self._purge_sql, (time.time(), *self.keep_expired, self.purge_batch)).rowcount
        if deleted:
            log.debug("purged %d expired items from %s", deleted, self.path)
