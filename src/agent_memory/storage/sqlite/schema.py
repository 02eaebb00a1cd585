"""DDL of the embedded store and its ordered migrations.

One physical table holds the items of all four logical tables. The GSI key columns are copies of the
item attributes of the same name, filled only for the indexes the logical table has and only when
both halves of the index key are present, so the partial indexes stay as sparse as DynamoDB's.

The schema version lives in ``PRAGMA user_version``. Migrations are applied in order, inside one
``BEGIN IMMEDIATE`` transaction, so two processes opening a fresh file at the same moment serialise
on the write lock and the second one finds nothing left to do.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from agent_memory.errors import ConfigurationError
from agent_memory.storage import layout
from agent_memory.storage.engine import TableName
from agent_memory.storage.sqlite import items as rows
from agent_memory.storage.sqlite.query import index_sort_key

PATH_SETTING = "AGENT_MEMORY_SQLITE_PATH"


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]
    rewrite: Callable[[sqlite3.Connection], None] | None = None
    """Runs after the statements, in the same transaction (rewrites items in Python)."""


def _gsi_index(n: int) -> str:
    # Schemas 1-4: pk and sk are part of the index key so the index order is exactly the query
    # order (gsiNsk, pk, sk). Schema 5 drops them (see _slim_gsi_index).
    return f"CREATE INDEX items_gsi{n} ON items (tbl, gsi{n}pk, gsi{n}sk, pk, sk) WHERE gsi{n}pk IS NOT NULL"


def _slim_gsi_index(n: int) -> str:
    # The index key is the index's own key (its sort key NULL in the row when it is the item's sort
    # key, see items.index_columns); an entry ends with the rowid. The base key the query
    # orders ties by (gsiNsk, pk, sk, as DynamoDB's LastEvaluatedKey of an index does) is read from
    # the row: SQLite sorts only each run of equal gsiNsk ("TEMP B-TREE FOR RIGHT PART OF ORDER
    # BY") and stops at the page's limit. Every index sort key the record layer writes ends with a
    # record id, so such runs are one row long in practice; the (pk, sk) copy was the larger part
    # of every index entry (issue #14, docs/BENCHMARKS.md "Footprint").
    on = f"items (tbl, gsi{n}pk, {index_sort_key(n)})"
    return f"CREATE INDEX items_gsi{n} ON {on} WHERE gsi{n}pk IS NOT NULL"


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "items table, one partial index per GSI, ttl index",
        (
            """
            CREATE TABLE items (
                tbl    TEXT NOT NULL,
                pk     TEXT NOT NULL,
                sk     TEXT NOT NULL,
                data   TEXT NOT NULL,
                ttl    INTEGER,
                gsi1pk TEXT,
                gsi1sk TEXT,
                gsi2pk TEXT,
                gsi2sk TEXT,
                gsi3pk TEXT,
                gsi3sk TEXT,
                PRIMARY KEY (tbl, pk, sk)
            ) WITHOUT ROWID
            """,
            _gsi_index(1),
            _gsi_index(2),
            _gsi_index(3),
            "CREATE INDEX items_ttl ON items (ttl) WHERE ttl IS NOT NULL",
        ),
    ),
    Migration(
        2,
        "items as a rowid table with a unique key index: rows stay on their page",
        # A WITHOUT ROWID table keeps at most ~1 KB of a row on its B-tree page (4 KB pages); a
        # decision with its outcome is larger, so each spilled into an overflow page of its own,
        # mostly empty (about 6 KB on disk per decision). A rowid table keeps rows up to ~4 KB
        # inline; the key moves to a unique index.
        (
            """
            CREATE TABLE items_v2 (
                tbl    TEXT NOT NULL,
                pk     TEXT NOT NULL,
                sk     TEXT NOT NULL,
                data   TEXT NOT NULL,
                ttl    INTEGER,
                gsi1pk TEXT,
                gsi1sk TEXT,
                gsi2pk TEXT,
                gsi2sk TEXT,
                gsi3pk TEXT,
                gsi3sk TEXT
            )
            """,
            "INSERT INTO items_v2 SELECT tbl, pk, sk, data, ttl, gsi1pk, gsi1sk, gsi2pk, gsi2sk, "
            "gsi3pk, gsi3sk FROM items",
            "DROP TABLE items",
            "ALTER TABLE items_v2 RENAME TO items",
            "CREATE UNIQUE INDEX items_key ON items (tbl, pk, sk)",
            _gsi_index(1),
            _gsi_index(2),
            _gsi_index(3),
            "CREATE INDEX items_ttl ON items (ttl) WHERE ttl IS NOT NULL",
        ),
    ),
)

MIGRATIONS += (
    Migration(
        3,
        "meta table: the clock high-water mark that guards the lazy purge against clock jumps",
        ("CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID",),
    ),
)

_PUT = (
    "INSERT OR REPLACE INTO items (tbl, pk, sk, data, ttl, gsi1pk, gsi1sk, gsi2pk, gsi2sk, gsi3pk, gsi3sk) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Every item storage.layout.is_earlier may select (LIKE: '#' and letters are literal, no '_').
_EARLIER = (
    f"SELECT tbl, {rows.ITEM_COLUMNS} FROM items WHERE (tbl = 'decisions' AND pk LIKE 'decision#%') "
    "OR (tbl = 'ltm' AND pk LIKE 'pattern#%') "
    "OR (tbl = 'signals' AND (pk LIKE 'signal#%' OR pk LIKE 'inbox#%'))"
)


def _per_author_ids(conn: sqlite3.Connection) -> None:
    """Rewrite the items of the global-id layout (see :mod:`agent_memory.storage.layout`). The
    schema version is the record that it ran: no marker item (that is DynamoDB's)."""
    for found in conn.execute(_EARLIER).fetchall():
        table: TableName = found[0]
        item = rows.load_row(found[1:])
        new = layout.upgrade(table, item)
        if new is None:
            continue
        for replacement in new:
            conn.execute(_PUT, rows.row(table, replacement, values_checked=True).params())
        conn.execute("DELETE FROM items WHERE tbl = ? AND pk = ? AND sk = ?", (table, item["pk"], item["sk"]))


MIGRATIONS += (
    Migration(
        4,
        "per-author ids: id items in their author's partitions, signal refs, inbox keys with the source",
        (),
        _per_author_ids,
    ),
)

MIGRATIONS += (
    Migration(
        5,
        "index entries without the base key, index sort keys equal to sk not repeated in the row, "
        "item JSON compressed in the data column",
        # Rows keep the data they have (the reader takes both forms) and are compressed when next
        # written: rewriting every row here would hold the write lock for minutes on a large store.
        (
            "DROP INDEX items_gsi1",
            "DROP INDEX items_gsi2",
            "DROP INDEX items_gsi3",
            _slim_gsi_index(1),
            _slim_gsi_index(2),
            _slim_gsi_index(3),
        ),
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def refuse_newer(version: int, path: str) -> None:
    """ConfigurationError for a file written by a newer agent-memory (checked before anything,
    even the journal mode, is changed in the file)."""
    if version > SCHEMA_VERSION:
        raise ConfigurationError(
            f"The SQLite database {path} has schema version {version}, but this version of agent-memory "
            f"only knows versions up to {SCHEMA_VERSION}: it was written by a newer agent-memory. "
            f"Upgrade agent-memory, or point {PATH_SETTING} at another file."
        )


def migrate(conn: sqlite3.Connection, path: str) -> int:
    """Bring the schema of ``conn`` (in autocommit mode) up to :data:`SCHEMA_VERSION`.

    Returns the version found before migrating. Safe to call concurrently from several processes.
    """
    found = schema_version(conn)
    refuse_newer(found, path)
    if found == SCHEMA_VERSION:
        # The common case takes no write lock, so opening an up-to-date file never waits on writers.
        return found
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the lock: another process may have migrated since the first look.
        current = schema_version(conn)
        refuse_newer(current, path)
        for migration in MIGRATIONS[current:]:
            for statement in migration.statements:
                conn.execute(statement)
            if migration.rewrite is not None:
                migration.rewrite(conn)
            # PRAGMA takes no bound parameters; the value is an int from our own table.
            conn.execute(f"PRAGMA user_version = {migration.version}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return found
