"""Queries of the SQLite engine: DynamoDB's key conditions and paging as single index seeks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent_memory.item_rules import MAX_PARTITION_KEY_BYTES, check_key
from agent_memory.storage.engine import TABLES, IndexName, Key, TableName
from agent_memory.storage.sqlite.items import check_table, item_columns

__all__ = ["build_query_sql", "index_sort_key", "prefix_upper_bound"]

_MAX_CODE_POINT = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


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


def index_sort_key(n: int) -> str:
    """The SQL of index ``gsi{n}``'s sort key: NULL in a row where it is the item's sort key
    (:func:`agent_memory.storage.sqlite.items.index_columns`). The index is built on this very
    expression, so queries must spell it the same way for SQLite to seek on it."""
    return f"COALESCE(gsi{n}sk, sk)"


def _bound(value: str | None, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a string, not {value!r}")
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
    table = check_table(table)
    check_key(pk, "pk" if index is None else f"{index}pk", MAX_PARTITION_KEY_BYTES)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer, not {limit!r}")
    sk_gte, sk_lte = _bound(sk_gte, "sk_gte"), _bound(sk_lte, "sk_lte")
    sk_prefix = _bound(sk_prefix, "sk_prefix")
    if sk_prefix is not None and (sk_gte is not None or sk_lte is not None):
        raise ValueError("sk_prefix cannot be combined with sk_gte or sk_lte")
    if index is not None and index not in TABLES[table]:
        has = ", ".join(TABLES[table]) or "none"
        raise ValueError(f"table {table!r} has no index {index!r} (its indexes: {has})")

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

    params: list[Any] = [table, pk]
    continuation: list[str] | None = None
    if start is not None:
        names = ("pk", "sk") if index is None else ("pk", "sk", f"{index}pk", f"{index}sk")
        if not isinstance(start, Mapping) or any(not isinstance(start.get(n), str) for n in names):
            raise ValueError(f"start must be the last_key of a previous page (with {', '.join(names)})")
        if start[names[-2]] != pk:
            raise ValueError("start is the last_key of a query on another partition")
        first = start[names[-1]]
        continuation = [first] if index is None else [first, first, start["pk"], start["sk"]]
        # The continuation replaces the scalar bound on its side, unless it lies outside the range
        # (then the scalar bound is the tighter one and the continuation is moot).
        if forward and (lower is None or first >= lower[1]):
            lower = None
        elif not forward and (upper is None or (first <= upper[1] if upper[0] == "<=" else first < upper[1])):
            upper = None
        else:
            continuation = None
    if lower is not None:
        params.append(lower[1])
    if upper is not None:
        params.append(upper[1])
    if continuation is not None:
        params.extend(continuation)
    params.append(limit + 1)
    shape = (table, index, lower and lower[0], upper and upper[0], continuation is not None, forward)
    sql = _SQL.get(shape)
    if sql is None:
        sql = _SQL[shape] = _query_sql(*shape)
    return sql, params


_SQL: dict[tuple[Any, ...], str] = {}
"""The SQL of each shape of query (table, index, bound operators, continuation, direction): a few
dozen at most, built once each (the values are parameters)."""


def _query_sql(
    table: TableName,
    index: IndexName | None,
    lower: str | None,
    upper: str | None,
    continued: bool,
    forward: bool,
) -> str:
    """The SQL :func:`build_query_sql` gives a query of this shape; its parameters, in order: the
    table, the partition key, the lower and upper bounds' values (those present), the
    continuation's values (when ``continued``), and the row limit."""
    if index is None:
        pk_col, sk_col = "pk", "sk"
        order: tuple[str, ...] = ("sk",)
    else:
        pk_col, sk_col = f"{index}pk", index_sort_key(int(index[-1]))
        order = (sk_col, "pk", "sk")
    where = ["tbl = ?", f"{pk_col} = ?"]
    for op in (lower, upper):
        if op is not None:
            where.append(f"{sk_col} {op} ?")
    if continued:
        if index is None:
            where.append(f"sk {'>' if forward else '<'} ?")
        else:
            # SQLite seeks on a row value only over plain columns, not over the index's expression:
            # the seek is on the sort key alone, and the rows of its run of ties up to the start
            # (in (pk, sk) order) are filtered out (one run, one row long in practice).
            seek, ties = (">=", "<=") if forward else ("<=", ">=")
            where.append(f"{sk_col} {seek} ? AND NOT ({sk_col} = ? AND (pk, sk) {ties} (?, ?))")
    direction = "" if forward else " DESC"
    return (
        f"SELECT {item_columns(table)} FROM items WHERE {' AND '.join(where)} "
        f"ORDER BY {', '.join(c + direction for c in order)} LIMIT ?"
    )
