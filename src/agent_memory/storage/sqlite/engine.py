"""The embedded backend: the item engine on one SQLite file shared by many processes.

It must be indistinguishable from the DynamoDB engine to the record layer, so it validates what
DynamoDB validates (the rules of :mod:`agent_memory.item_rules`, applied in
:mod:`~agent_memory.storage.sqlite.items`) and orders and pages exactly as DynamoDB does
(:mod:`~agent_memory.storage.sqlite.query`).

Concurrency model: each engine owns two connections. Short, bounded calls (a get, a query page of
at most :data:`INLINE_MAX_ROWS` rows, a write; each reading and writing at most
:data:`INLINE_MAX_BYTES` of stored JSON) run on the event loop's thread, on the *inline*
connection, whose busy timeout is zero: such a call never blocks the loop waiting for a lock. It
finishes within a fraction of a millisecond (the bench measures how long each holds the loop, see
docs/BENCHMARKS.md); finding the file locked by another process, it yields to the loop and tries
again, the calls of one process waiting in line behind one that polls (:class:`_LockQueue`,
:class:`_LockWait`); finding its data over the budget, it is handed whole to the second
connection, used only from one dedicated worker thread. Handing every call to the thread and back
cost more CPU than the SQL itself, and waiting for locks there made the write lock stay held for
milliseconds (issue #14). Long calls (scans, purges, checkpoints, larger pages) always run on the
thread, which waits for locks with SQLite's busy timeout, then a jittered retry; the inline
connection never checkpoints (the thread does, after every :data:`CHECKPOINT_EVERY` inline
writes, and restarts the WAL past :data:`WAL_RESTART_FRAMES`). A write reads its target rows,
evaluates the conditions in Python and applies everything or nothing inside a ``BEGIN IMMEDIATE``
transaction, without returning to the event loop while it holds the write lock. The writes of a
process that arrive in the same turn of the event loop share one transaction (group commit,
:meth:`SqliteEngine._commit_group`): each under its own savepoint, so that a failed condition
rolls back that write alone, and each caller answered only once the one COMMIT is done; with tens
of calls in flight this saves a commit and the rewrite of the pages they share (the rollup and
quota items, the B-tree pages) per write, and with several processes on one file, the page cache
each transaction of another process makes SQLite drop. Other processes are kept out by SQLite's
file locks (WAL mode: readers never wait for writers); only a lock held past the call's deadline
reaches the caller, as ``storage_busy``.

Guards (see docs/RELIABILITY.md): the file and its WAL are created 0600; a file of a newer schema
is refused before anything in it changes; the WAL is truncated to :data:`JOURNAL_SIZE_LIMIT` after
checkpoints, and checkpointed after a full-disk error so that freed space brings writes back; a
bounded ``quick_check`` at start-up, or the first "malformed" result code, puts the engine in a
state where writes are refused as ``storage_corrupt``; the lazy purge runs on a clock that a wall
clock jump cannot move forward (:mod:`~agent_memory.storage.sqlite.health`).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import math
import os
import random
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, cast

from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_random_exponential

from agent_memory.deadline import DEFAULT_CALL_TIMEOUT_S, deadline, deadline_passed, remaining
from agent_memory.errors import (
    ConfigurationError,
    StorageBusy,
    StorageCorrupt,
    StorageReadOnly,
)
from agent_memory.item_rules import (
    MAX_PARTITION_KEY_BYTES,
    MAX_SORT_KEY_BYTES,
    check_key,
    check_transaction,
)
from agent_memory.storage import usage
from agent_memory.storage.engine import (
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
from agent_memory.storage.faults import SQLITE_FAULTS, sqlite_error, sqlite_result_code
from agent_memory.storage.sqlite import health
from agent_memory.storage.sqlite.items import (
    ITEM_COLUMNS,
    Row,
    check_conditions,
    check_table,
    check_transaction_size,
    check_update,
    holds,
    item_size,
    json_length,
    load_row,
    row,
    target,
    updated,
)
from agent_memory.storage.sqlite.query import build_query_sql, prefix_upper_bound
from agent_memory.storage.sqlite.schema import (
    PATH_SETTING,
    SCHEMA_VERSION,
    migrate,
    refuse_newer,
    schema_version,
)

__all__ = ["JOURNAL_SIZE_LIMIT", "SqliteEngine", "build_query_sql", "item_size", "prefix_upper_bound"]

log = logging.getLogger(__name__)

T = TypeVar("T")

JOURNAL_SIZE_LIMIT = 1024 * 1024
"""Bytes the WAL is truncated to after a checkpoint (SQLite leaves it at its largest otherwise)."""

PAGE_CACHE_KIB = 64 * 1024
"""SQLite page cache per connection (SQLite's default is 2 MiB): a store of a million decisions
keeps the interior pages of its B-trees in memory, so a point get does not re-read them. (With
several processes writing, SQLite drops the whole cache of a connection at its first transaction
after another connection's commit, so there it keeps little, and dropping a cache that once held
many pages costs more than a small one: a trade-off for large shared stores, see
docs/BENCHMARKS.md "HTTP".)"""
MMAP_BYTES = 0
"""How much of the file each connection reads through a memory map instead of a read call per
page: none. When another connection (another process) has committed, SQLite drops the whole
page cache of this one at its next transaction and unmaps the file, so with several processes
writing, every write and read mapped it again and faulted its pages in (issue #14: two server
processes logging decisions spent about 8 % more CPU per call with a 256 MiB map than with
none). A single process gained nothing from the map either: random gets on an 834 MB file took
the same CPU with it as without (the OS page cache holds the file either way)."""

INLINE_MAX_ROWS = 400
"""Query pages of up to this many rows start on the event loop's thread (larger ones on the worker)."""
INLINE_MAX_BYTES = 64 * 1024
"""Bytes of stored JSON a call on the event loop's thread may read or write: a call that meets more
(a large item, a page of large items) is handed, whole, to the worker thread."""
INLINE_RETRY_DELAYS = (0.0002, 0.0005, 0.001, 0.001, 0.002, 0.002, 0.004, 0.004, 0.008)
"""Seconds an inline call that found the file locked yields before its first tries again (SQLite's
own busy handler sleeps 1, 2, 5, 10... ms between polls; writers of other processes hold the lock
for a fraction of a millisecond, so it polls sooner). See :class:`_LockWait`."""
INLINE_RETRY_MAX_DELAY = 0.02
"""Seconds (at most, jittered) between the later tries of an inline call waiting for the lock."""
CHECKPOINT_EVERY = 100
"""Inline writes between two checkpoints (passive, on the worker thread)."""
WAL_RESTART_FRAMES = 1024
"""Pages in the WAL (4 MiB of 4 KiB pages) past which a checkpoint also makes the next writer start
the WAL over. A passive checkpoint copies the WAL into the database but never restarts it, and
under a steady write load (from the loop's connection while the worker checkpoints, or from other
processes) it never finds the WAL fully copied at the moment a write begins, the only moment
SQLite restarts it: the WAL then grew without end (260 MB after 6,600 log_decision calls by two
processes, issue #14). The restart waits up to :data:`RESTART_WAIT_MS` for the write lock and for
readers still using the WAL, holding the write lock meanwhile, and copies the last pages (the
passive pass just before it leaves few); past that wait it is a passive checkpoint again."""
RESTART_WAIT_MS = 50
"""Milliseconds a restarting checkpoint waits for locks (SQLite's busy timeout): writers of every
process wait at most about this long for it, even while a reader holds a long transaction."""

_GET_SQL = f"SELECT {ITEM_COLUMNS} FROM items WHERE tbl = ? AND pk = ? AND sk = ?"
_PUT_SQL = (
    "INSERT OR REPLACE INTO items (tbl, pk, sk, data, ttl, gsi1pk, gsi1sk, gsi2pk, gsi2sk, gsi3pk, gsi3sk) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_SQL = _PUT_SQL.replace("INSERT OR REPLACE", "INSERT", 1)
"""A put whose only condition is that its item does not exist: the key's unique index decides it
(see _write_sync)."""
_DELETE_SQL = "DELETE FROM items WHERE tbl = ? AND pk = ? AND sk = ?"
# A write reads the rowid and ttl of the items it reads too: an item it changes in place is
# rewritten by rowid, and only in the columns that change (see _write_sync).
_READ_ONE_SQL = f"SELECT {{}}, rowid, ttl, {ITEM_COLUMNS} FROM items WHERE tbl = ? AND pk = ? AND sk = ?"
_DELETE_ROWID_SQL = "DELETE FROM items WHERE rowid = ?"
_SET_COLUMNS = ("ttl", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk")
"""The columns besides ``data`` that a rewrite in place may change (in a row's params order)."""
_SCAN_FIRST_SQL = f"SELECT {ITEM_COLUMNS} FROM items WHERE tbl = ? ORDER BY pk, sk LIMIT ?"
_SCAN_NEXT_SQL = (
    f"SELECT {ITEM_COLUMNS} FROM items WHERE tbl = ? AND (pk, sk) > (?, ?) ORDER BY pk, sk LIMIT ?"
)
# DELETE ... LIMIT needs a compile-time option, hence the keyed subquery (it seeks the ttl index).
_PURGE_SQL = health.PURGE_SQL
# Kept under these names for the bench's bulk loader, which writes rows exactly as the engine does.
_row = row
_updated = updated


def _tune(conn: sqlite3.Connection) -> None:
    """Per-connection read settings (not stored in the file): :data:`PAGE_CACHE_KIB`,
    :data:`MMAP_BYTES`."""
    conn.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
    conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")


@functools.lru_cache(maxsize=32)
def _read_sql(n: int) -> str:
    """One statement reading ``n`` items by key, each row tagged with its position (0..n-1).

    A compound of keyed SELECTs: each is one seek on the key index (``(tbl, pk, sk) IN (VALUES
    ...)`` scans the table instead), and one statement costs one round through the sqlite3 module
    instead of ``n`` (a transaction reads the items its conditions and updates need in one go)."""
    return " UNION ALL ".join(_READ_ONE_SQL.format(i) for i in range(n))


@functools.lru_cache(maxsize=64)
def _set_sql(changed: tuple[int, ...]) -> str:
    """The UPDATE of a row's data and of the columns ``changed`` (positions in :data:`_SET_COLUMNS`),
    by rowid. SQLite rewrites the index entries of every column an UPDATE sets, even to the
    value it holds, so only the columns that change are set."""
    columns = ["data = ?", *(f"{_SET_COLUMNS[k]} = ?" for k in changed)]
    return f"UPDATE items SET {', '.join(columns)} WHERE rowid = ?"


def _changed(new: tuple[Any, ...], old: tuple[Any, ...]) -> tuple[int, ...]:
    """Positions in :data:`_SET_COLUMNS` of the columns whose values (or types) differ between
    ``new``, ttl and index keys as a row's params hold them, and ``old``, as the read selects them."""
    if new == old and type(new[0]) is type(old[0]):  # (the others are strings or None)
        return ()
    return tuple(k for k, (a, b) in enumerate(zip(new, old, strict=True)) if a != b or type(a) is not type(b))


_WRITE_OPS = frozenset((Put, Update, Delete, Check))
"""The operation classes, told by exact type before the slower isinstance (subclasses pass too)."""

_PRESENCE = frozenset(("item_exists", "item_not_exists"))
_CREATE = (Cond.not_exists(),)
"""The conditions of a put that creates its item (Cond is a frozen dataclass: compared by value)."""
"""Condition kinds decided by whether the item exists."""
_PRESENT: Item = {}
"""Stands for an item that exists, for conditions of :data:`_PRESENCE` kinds."""


def _is_busy(exc: BaseException) -> bool:
    return sqlite_result_code(exc) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


_INDEX_KEY_NAMES: dict[str, tuple[str, str]] = {f"gsi{n}": (f"gsi{n}pk", f"gsi{n}sk") for n in (1, 2, 3)}
"""The key attributes of each index, by name (a page's last key holds them)."""


_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _poll_delay(tries: int) -> float:
    """Seconds to wait before polling a held lock again, after ``tries`` polls."""
    if tries < len(INLINE_RETRY_DELAYS):
        return INLINE_RETRY_DELAYS[tries]
    return random.uniform(0.5, 1.0) * INLINE_RETRY_MAX_DELAY


class _LockWait:
    """The waits of an inline call that found the file locked by another process: it yields to
    the event loop between attempts (:data:`INLINE_RETRY_DELAYS`, then jittered waits of up to
    :data:`INLINE_RETRY_MAX_DELAY`) until the lock timeout or the call's deadline, whichever
    is sooner, and is never handed to the worker thread for it.

    Waiting on the worker thread (SQLite's busy timeout) cost more than it saved, with several
    processes writing (issue #14, docs/BENCHMARKS.md "HTTP"): once the worker's transaction got
    the lock, each of its statements waited for the GIL, which the busy event loop holds for up to
    Python's switch interval (5 ms), so the write lock stayed held for milliseconds instead of a
    fraction of one; the other processes' writes then found it locked more often and went to
    their worker threads too. A poll from the loop costs tens of microseconds, and the single
    worker thread stays free for the large calls it is there for."""

    __slots__ = ("_tries", "_until", "budget", "call_deadline")

    def __init__(self, lock_timeout: float) -> None:
        outer = remaining()
        self.budget = lock_timeout if outer is None else max(0.0, min(lock_timeout, outer))
        self.call_deadline = self.budget < lock_timeout
        """Whether the call's deadline, not the lock timeout, ends the wait."""
        self._until = time.monotonic() + self.budget
        self._tries = 0

    def expired(self) -> bool:
        return time.monotonic() >= self._until

    def left(self) -> float:
        return max(0.0, self._until - time.monotonic())

    def next_delay(self) -> float:
        delay = _poll_delay(self._tries)
        self._tries += 1
        return max(0.0, min(delay, self._until - time.monotonic()))


class _LockQueue:
    """The inline calls of this process that found the file locked, in line: only the first
    polls the lock (:meth:`_LockWait.next_delay`), the others wait for their turn, so a lock held
    by another process costs one failed attempt per waiting call instead of one per poll of each.
    A call that leaves (done, failed, out of time or cancelled) hands the turn to the next.
    Calls that have not found the file locked yet do not queue: they try at once."""

    __slots__ = ("_first", "_line")

    def __init__(self) -> None:
        self._first: _LockWait | None = None
        self._line: collections.deque[tuple[_LockWait, asyncio.Future[None]]] = collections.deque()

    async def wait(self, wait: _LockWait) -> None:
        """Wait before ``wait``'s call tries again: a poll's delay if it is first in line, else
        until its turn comes or its time runs out (its next attempt then fails for good)."""
        if self._first is None or self._first is wait:
            self._first = wait
            await asyncio.sleep(wait.next_delay())
            return
        turn = asyncio.get_running_loop().create_future()
        self._line.append((wait, turn))
        try:
            async with asyncio.timeout(wait.left()):
                await turn
        except TimeoutError:
            pass

    def leave(self, wait: _LockWait) -> None:
        if self._first is not wait:
            return  # (one that waited in line and left before its turn: its future is done)
        self._first = None
        while self._line:
            following, turn = self._line.popleft()
            if not turn.done():
                self._first = following
                turn.set_result(None)
                return


_ALONE = object()
"""What a grouped write's caller is told when the group could not take its write: run it alone."""


class _Locked:
    """What a grouped write's caller is told when the group found the file locked by another
    process (``error``): it joins the group's next attempt, or fails if its time is up."""

    __slots__ = ("error",)

    def __init__(self, error: sqlite3.Error) -> None:
        self.error = error


class _OverBudget(Exception):
    """An inline call met more than :data:`INLINE_MAX_BYTES`: it is redone on the worker thread."""


class InlineStats:
    """How many calls ran on the event loop's thread, and, while :attr:`timing` is on (the bench
    turns it on), how long each held it: seconds of the thread's CPU time (wall time would also
    count the moments the OS ran other processes, which hold up the loop whatever it runs). Off,
    a call reads no clock: reading the thread's CPU time is a system call, two per call."""

    def __init__(self, keep: int = 100_000) -> None:
        self.calls = 0
        self.to_worker = 0
        self.timing = False
        self.durations: collections.deque[float] = collections.deque(maxlen=keep)

    def add(self, seconds: float) -> None:
        self.calls += 1
        self.durations.append(seconds)


class SqliteEngine:
    """:class:`~agent_memory.storage.engine.ItemEngine` on one SQLite file. Create with :meth:`open`.

    Tunables (keyword arguments of :meth:`open`):
    ``busy_timeout`` seconds SQLite itself waits for a lock per attempt; ``lock_timeout`` seconds of
    retrying (at most: the call's deadline may be sooner) before a held lock becomes
    ``storage_busy``; expired items are purged (at most ``purge_batch`` of them) on the first
    write, then on every ``purge_every``-th write or the first write after ``purge_interval``
    seconds; ``scan_page`` rows are read per scan step; ``quick_check_seconds`` bounds the integrity
    check at start-up (0: none).
    """

    group_writes = True
    """Whether the writes of this process that arrive in the same turn of the event loop are
    committed together (:meth:`_commit_group`). It costs a write a turn of the loop: a server
    with one caller, whose writes come one at a time (stdio), turns it off."""

    reads_on_loop = True
    """Reads run on the event loop's thread (or on the one worker thread): awaiting several in turn
    costs no time, gathering them in tasks costs CPU (``RecordBase.together``)."""

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
        quick_check_seconds: float,
        wall_clock: Callable[[], float],
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
        self.quick_check_seconds = quick_check_seconds
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agent-memory-sqlite")
        # Touched only on the worker thread.
        self._conn: sqlite3.Connection | None = None
        # Touched only on the event loop's thread (created on the worker before the loop uses it).
        self._inline: sqlite3.Connection | None = None
        self._inline_writes = 0
        self._lock_queue = _LockQueue()
        self._group: list[tuple[Callable[[sqlite3.Connection], Item | None], asyncio.Future[Any]]] = []
        """Writes waiting for :meth:`_commit_group` (touched only on the event loop's thread)."""
        self._group_polling = False
        """Whether the group waits for another process's lock (a poll is scheduled)."""
        self._group_polls = 0
        """The group's polls of a held lock so far (their delays: :func:`_poll_delay`)."""
        self.inline_stats = InlineStats()
        # The purge schedule is kept on the event loop's thread: a write that is due to purge goes
        # to the worker thread.
        self._writes_since_purge = 0
        self._last_purge = -math.inf
        self._purge_clock = health.PurgeClock(wall_clock)
        self._closed = False
        self.corruption: str | None = None
        """What the integrity check (or a "malformed" result code) found; writes are refused then."""
        self.read_only: str | None = None
        """Why the file cannot be written (found when opening); it is read, and writes are refused."""

    @classmethod
    async def open(
        cls,
        path: str | PathLike[str],
        *,
        busy_timeout: float = 1.0,
        lock_timeout: float = DEFAULT_CALL_TIMEOUT_S,
        purge_every: int = 200,
        purge_interval: float = 600.0,
        purge_batch: int = 300,
        scan_page: int = 500,
        quick_check_seconds: float = 2.0,
        wall_clock: Callable[[], float] = time.time,
        keep_expired: tuple[TableName, ...] = (),
    ) -> SqliteEngine:
        """Open (creating file, directory and schema if needed) the database at ``path``.

        ``wall_clock`` is the clock the lazy purge reads (tests move it). ``keep_expired`` tables are
        left out of the lazy purge (their expired items are archived, then deleted, by
        :mod:`agent_memory.storage.archive`)."""
        engine = cls(
            Path(path),
            busy_timeout=busy_timeout,
            lock_timeout=lock_timeout,
            purge_every=purge_every,
            purge_interval=purge_interval,
            purge_batch=purge_batch,
            scan_page=scan_page,
            quick_check_seconds=quick_check_seconds,
            wall_clock=wall_clock,
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
            check_table(table),
            check_key(pk, "pk", MAX_PARTITION_KEY_BYTES),
            check_key(sk, "sk", MAX_SORT_KEY_BYTES),
        )
        return await self._run(functools.partial(self._get_sync, *key), inline=True)

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
        items, more = await self._run(
            functools.partial(self._query_sync, *built, limit), inline=limit <= INLINE_MAX_ROWS
        )
        if not more:
            return QueryPage(items=items, last_key=None)
        # The extra row only proves the range goes on; the page ends at the one before it.
        last = items[-1]
        if index is None:
            return QueryPage(items=items, last_key={"pk": last["pk"], "sk": last["sk"]})
        ipk, isk = _INDEX_KEY_NAMES[index]
        return QueryPage(
            items=items, last_key={"pk": last["pk"], "sk": last["sk"], ipk: last[ipk], isk: last[isk]}
        )

    async def write(self, ops: Sequence[WriteOp]) -> None:
        usage.record("sqlite.write")
        targets = self._check_ops(ops)
        if ops:
            await self._write(list(ops), targets, returning=False)

    async def update(self, op: Update) -> Item:
        usage.record("sqlite.update")
        if not isinstance(op, Update):
            raise TypeError(f"update() takes an Update, not {op!r}")
        targets = self._check_ops([op])
        return cast(Item, await self._write([op], targets, returning=True))

    async def scan(self, table: TableName) -> AsyncIterator[Item]:
        usage.record("sqlite.scan")
        table = check_table(table)
        after: tuple[str, str] | None = None
        while True:
            rows = await self._retrying(functools.partial(self._scan_sync, self._db, table, after))
            for _, _, item in rows:
                yield item
            if len(rows) < self.scan_page:
                return
            after = (rows[-1][0], rows[-1][1])

    # --- administration ------------------------------------------------------------------------

    async def purge_expired(self, *, now: float | None = None, limit: int | None = None) -> int:
        """Delete up to ``limit`` (default ``purge_batch``) items whose ttl is before ``now``
        (default: the purge clock, which a wall-clock jump does not move; see
        :class:`~agent_memory.storage.sqlite.health.PurgeClock`).

        Writes do this by themselves from time to time; this is for jobs and tests. Returns the
        number of items deleted.
        """
        usage.record("sqlite.purge")
        batch = self.purge_batch if limit is None else limit
        return await self._retrying(functools.partial(self._purge_sync, now, batch))

    # --- plumbing ------------------------------------------------------------------------------

    @staticmethod
    def _check_ops(ops: Sequence[WriteOp]) -> list[tuple[TableName, str, str]]:
        """Checks that need no data, so a bad request fails before any lock is taken. Returns
        the key of each operation's item."""
        check_transaction(len(ops))
        targets: list[tuple[TableName, str, str]] = []
        for op in ops:
            if type(op) not in _WRITE_OPS and not isinstance(op, Put | Update | Delete | Check):
                raise TypeError(f"not a write operation: {op!r}")
            key = target(op)
            if key in targets:  # (a list: transactions are short, and most are one operation)
                raise ValueError(
                    f"a transaction touches item {key[1]!r}/{key[2]!r} of {key[0]!r} twice; "
                    "combine those operations into one"
                )
            targets.append(key)
            if op.conditions:
                check_conditions(op.conditions)
            if isinstance(op, Update):
                check_update(op)
        return targets

    async def _call(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise RuntimeError(f"the SQLite engine on {self.path} is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _write(
        self, ops: list[WriteOp], targets: list[tuple[TableName, str, str]], *, returning: bool
    ) -> Item | None:
        # Serialising Puts before any lock keeps the locked section to SQL and comparisons.
        checked: set[int] = set()
        put_rows = {
            i: row(op.table, op.item, key=targets[i], checked=checked)
            for i, op in enumerate(ops)
            if isinstance(op, Put)
        }
        if len(ops) > 1:
            check_transaction_size(ops, put_rows)
        purge = self._purge_due()
        apply = self._write_apply(ops, targets, put_rows, purge, returning)
        size = sum(len(r.data) for r in put_rows.values())
        write = functools.partial(self._write_sync, apply, size)
        if purge or size > INLINE_MAX_BYTES or self._inline is None or not self.group_writes:
            result = await self._run(write, inline=not purge)
        else:
            result = await self._grouped(apply, write)
        if self._inline_writes >= CHECKPOINT_EVERY:
            self._inline_writes = 0
            self._checkpoint_soon()
        return result

    async def _run(self, fn: Callable[[sqlite3.Connection], T], *, inline: bool) -> T:
        """``fn`` with a connection: on the event loop's thread if ``inline`` (it then never blocks
        the loop waiting for a lock: while another process holds it, the call yields to the loop
        and tries again, in line with the other waiting calls, until the lock timeout or the
        call's deadline, see :class:`_LockWait`), else, or when the data is over the budget or the
        disk is full, on the worker thread with its retries."""
        if inline and self._inline is not None:
            wait: _LockWait | None = None
            stats = self.inline_stats
            try:
                while not self._closed:
                    started = time.thread_time() if stats.timing else 0.0
                    try:
                        return fn(self._inline)
                    except _OverBudget:
                        break
                    except sqlite3.Error as exc:
                        code = sqlite_result_code(exc)
                        if code == sqlite3.SQLITE_FULL:
                            break
                        if code not in _BUSY:
                            raise self._translate(exc, 0.0, deadline_first=False) from exc
                        wait = wait or _LockWait(self.lock_timeout)
                        if wait.expired():
                            budget, first = wait.budget, wait.call_deadline
                            raise self._translate(exc, budget, deadline_first=first) from exc
                    finally:
                        if stats.timing:
                            stats.add(time.thread_time() - started)
                        else:
                            stats.calls += 1
                    await self._lock_queue.wait(wait)
            finally:
                if wait is not None:
                    self._lock_queue.leave(wait)
            stats.to_worker += 1
        return await self._retrying(lambda: fn(self._db))

    async def _grouped(
        self, apply: Callable[[sqlite3.Connection], Item | None], write: Callable[[sqlite3.Connection], T]
    ) -> Item | T | None:
        """A write on the event loop's thread, committed with the other writes of this process
        that arrive before the loop runs its next callbacks (:meth:`_commit_group`). The caller is
        answered only once that transaction is committed. While another process holds the lock
        the group waits for it as one (its polls are those of :class:`_LockWait`), each write
        until its own lock timeout or deadline; a write the group cannot take (a storage fault,
        its data over the budget) runs alone (``write``, through :meth:`_run`), as if it had not
        been grouped."""
        loop = asyncio.get_running_loop()
        wait: _LockWait | None = None
        while True:
            future: asyncio.Future[Any] = loop.create_future()
            self._group.append((apply, future))
            if len(self._group) == 1 and not self._group_polling:
                loop.call_soon(self._commit_group)
            outcome = await future
            if type(outcome) is _Locked:
                wait = wait or _LockWait(self.lock_timeout)
                if wait.expired():
                    error = outcome.error
                    raise self._translate(error, wait.budget, deadline_first=wait.call_deadline) from error
                continue
            if outcome is _ALONE:
                return await self._run(write, inline=True)
            return cast("Item | None", outcome)

    def _poll_group(self) -> None:
        self._group_polling = False
        self._commit_group()

    def _commit_group(self) -> None:
        """Apply the waiting writes in one IMMEDIATE transaction, each under its own savepoint:
        a write whose condition fails (or that raises) is rolled back to its savepoint alone and
        its caller gets its error; one COMMIT makes all the others durable at once (one commit,
        one WAL append of the pages they share: the rollup and quota items, the B-tree pages),
        and only then are their callers answered. Nothing the group cannot decide is reported
        from here: when the transaction cannot start or commit (a lock held by another process, a
        full disk, any SQLite error), or a write's data is over the inline budget, that write
        (or, for the transaction, every write) is rolled back and runs alone."""
        group = [(apply, future) for apply, future in self._group if not future.done()]
        self._group = []
        conn = self._inline
        if not group:
            return
        if conn is None or self._closed or self.corruption is not None or self.read_only is not None:
            for _, future in group:
                future.set_result(_ALONE)
            return
        alone = len(group) == 1  # its own transaction: no savepoint needed
        stats = self.inline_stats
        started = time.thread_time() if stats.timing else 0.0
        outcomes: list[tuple[asyncio.Future[Any], bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for apply, future in group:
                    if not alone:
                        conn.execute("SAVEPOINT w")
                    try:
                        outcomes.append((future, True, apply(conn)))
                    except sqlite3.Error:
                        raise
                    except Exception as exc:  # this write's own failure: a condition, a bad update
                        conn.execute("ROLLBACK" if alone else "ROLLBACK TO w")
                        over = isinstance(exc, _OverBudget)
                        outcomes.append((future, over, _ALONE if over else exc))
                    if not alone:
                        conn.execute("RELEASE w")
                if conn.in_transaction:
                    conn.execute("COMMIT")
            except BaseException:
                self._rollback(conn)
                raise
        except BaseException as exc:
            if isinstance(exc, sqlite3.Error) and sqlite_result_code(exc) in _BUSY:
                # Another process holds the lock: the group tries again after a poll's delay
                # (the writes that arrive meanwhile join it), each write until its own time runs
                # out (see _grouped).
                self._group_polling = True
                asyncio.get_running_loop().call_later(_poll_delay(self._group_polls), self._poll_group)
                self._group_polls += 1
                locked = _Locked(exc.with_traceback(None))  # (its traceback: a cycle through this frame)
                for _, future in group:
                    future.set_result(locked)
                return
            if isinstance(exc, sqlite3.DatabaseError):
                self._damaged(exc)
            for _, future in group:
                if not future.done():
                    future.set_result(_ALONE)
            if not isinstance(exc, sqlite3.Error):
                raise
            return
        finally:  # (one call on the loop's thread; once committed, one per write)
            if stats.timing:
                stats.add(time.thread_time() - started)
            else:
                stats.calls += 1
        stats.calls += len(group) - 1
        self._inline_writes += len(group)
        self._group_polls = 0
        for future, ok, value in outcomes:
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def _checkpoint_soon(self) -> None:
        """A passive checkpoint on the worker thread, not awaited: it copies what the inline
        connection wrote into the database file without waiting for, or blocking, anyone."""
        if self._closed:
            return
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._checkpoint_sync)
        future.add_done_callback(self._checkpoint_done)

    def _checkpoint_done(self, future: asyncio.Future[None]) -> None:
        if not future.cancelled() and future.exception() is not None:
            log.warning("checkpoint of %s failed: %s", self.path, future.exception())

    def _checkpoint_sync(self) -> None:
        if self._conn is None:
            return
        _, frames, _ = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames > WAL_RESTART_FRAMES:
            self._conn.execute(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
            try:
                self._conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
            finally:
                self._conn.execute(f"PRAGMA busy_timeout={round(self.busy_timeout * 1000)}")

    def _purge_due(self) -> bool:
        self._writes_since_purge += 1
        now = time.monotonic()
        if self._writes_since_purge < self.purge_every and now - self._last_purge < self.purge_interval:
            return False
        self._writes_since_purge = 0
        self._last_purge = now
        return True

    async def _retrying(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the worker thread, retrying while another process holds the lock, within
        the call's deadline; SQLite failures become the errors of the fault table."""
        outer = remaining()
        budget = self.lock_timeout if outer is None else max(0.0, min(self.lock_timeout, outer))
        with deadline(budget):
            try:
                # First attempt outside tenacity: setting up its retry loop cost as much CPU as the
                # hop to the worker thread, on every call, for the rare case of a held lock.
                try:
                    return await self._call(fn)
                except sqlite3.Error as exc:
                    if not _is_busy(exc):
                        raise
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception(_is_busy),
                    wait=wait_random_exponential(multiplier=0.005, max=0.25),
                    stop=stop_after_delay(budget),
                    reraise=True,
                ):
                    with attempt:
                        return await self._call(fn)
            except sqlite3.Error as exc:
                raise self._translate(exc, budget, deadline_first=budget < self.lock_timeout) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _translate(self, exc: sqlite3.Error, budget: float, *, deadline_first: bool) -> Exception:
        error = sqlite_error(exc, self.path)
        if error is None:
            return exc  # a programming error: a bug, not a storage fault
        if isinstance(error, StorageBusy) and deadline_first:
            # The call's deadline, not the lock timeout, ran out.
            return deadline_passed("the SQLite call", f"the database {self.path} (locked)", budget)
        if isinstance(error, StorageBusy):
            error = StorageBusy(
                f"The SQLite database {self.path} stayed locked by another process for more than "
                f"{self.lock_timeout:g} s. Another agent-memory process or tool is holding a long "
                "write transaction; retry later, or stop that process.",
                retry_after_s=1.0,
            )
        return error

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"the SQLite engine on {self.path} is not open")
        return self._conn

    def _config_error(self, problem: str) -> ConfigurationError:
        return ConfigurationError(
            f"Cannot use the SQLite database {self.path}: {problem}. "
            f"Set {PATH_SETTING} to a writable file path."
        )

    def _connect_sync(self) -> None:
        self.path = self.path.expanduser()
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Memories are private: create the file owner-only before SQLite opens it (SQLite
            # gives the WAL and shared-memory files the database file's permissions).
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
        except OSError as exc:
            raise self._config_error(f"cannot create it ({exc.strerror or exc})") from exc
        self.read_only = health.read_only_reason(self.path)
        target: str | Path = self.path
        if self.read_only is not None:
            # Read-only: no journal or WAL can be written. On a read-only file system nothing can
            # change the file either, which is what `immutable` tells SQLite (no -shm needed).
            immutable = "&immutable=1" if self.read_only == "read-only file system" else ""
            target = f"{self.path.resolve().as_uri()}?mode=ro{immutable}"
            log.warning("SQLite database %s: %s; reads only, writes are refused", self.path, self.read_only)
        try:
            # Autocommit mode: the engine issues BEGIN IMMEDIATE / COMMIT itself, so the module never
            # opens a deferred transaction that could fail to upgrade to a write lock.
            self._conn = sqlite3.connect(
                target, timeout=self.busy_timeout, isolation_level=None, uri=self.read_only is not None
            )
        except sqlite3.Error as exc:
            raise self._config_error(str(exc)) from exc

    def _setup_sync(self) -> None:
        conn = self._db
        try:
            _tune(conn)
            # Before anything in the file changes (even its journal mode): a newer file is refused.
            refuse_newer(schema_version(conn), str(self.path))
            if self.read_only is not None:
                self._setup_read_only(conn)
                return
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
            conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
            problem = health.quick_check(conn, self.quick_check_seconds)
            if problem is not None:
                self._corrupt(problem)
                return
            migrate(conn, str(self.path))
            if self._inline is None:
                self._inline = self._inline_connection()
        except sqlite3.Error as exc:
            if _is_busy(exc):
                raise
            if self.read_only is not None:
                raise self._read_only_error(f"it cannot be opened for reading either ({exc})") from exc
            if sqlite_result_code(exc) == sqlite3.SQLITE_CORRUPT:
                self._corrupt(str(exc))
                return
            raise self._config_error(str(exc)) from exc

    def _inline_connection(self) -> sqlite3.Connection:
        """The event loop's connection: it never waits for a lock (busy timeout 0) and never
        checkpoints (the worker does, see :meth:`_checkpoint_soon`). Created here, used only on
        the event loop's thread."""
        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
        _tune(conn)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    def _setup_read_only(self, conn: sqlite3.Connection) -> None:
        problem = health.quick_check(conn, self.quick_check_seconds)
        if problem is not None:
            self._corrupt(problem)
        if schema_version(conn) != SCHEMA_VERSION:  # an upgrade would have to be written
            raise self._read_only_error("its schema needs an upgrade, which cannot be written")

    def _read_only_error(self, consequence: str) -> StorageReadOnly:
        action = SQLITE_FAULTS[sqlite3.SQLITE_READONLY].action
        return StorageReadOnly(
            f"the SQLite database {self.path} cannot be written ({self.read_only}): {consequence}; "
            f"{action}, then restart it"
        )

    def _corrupt(self, problem: str) -> None:
        if self.corruption is None:
            log.error("SQLite database %s is damaged: %s; writes are refused", self.path, problem)
        self.corruption = problem

    def _refuse_if_corrupt(self) -> None:
        if self.corruption is not None:
            raise StorageCorrupt(
                f"the SQLite database {self.path} is damaged ({self.corruption}), so writes are refused "
                "to keep from losing more; the memory must be restored: stop the servers, move the "
                "file aside, and import the last export (agent-memory import) into a new file"
            )

    def _close_sync(self) -> None:
        # The loop is awaiting this job, so it is not using the inline connection meanwhile.
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _guarded(self, fn: Callable[[], T]) -> T:
        """Run ``fn``; a "malformed" result code marks the file damaged for every later write."""
        try:
            return fn()
        except sqlite3.DatabaseError as exc:
            self._damaged(exc)
            raise

    def _damaged(self, exc: sqlite3.DatabaseError) -> None:
        """Mark the file damaged for every later write when ``exc`` says it is malformed."""
        if sqlite_result_code(exc) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            self._corrupt(str(exc))

    def _budget(self, conn: sqlite3.Connection, found: Sequence[Any]) -> int:
        """Bytes of the rows ``found``; raises :class:`_OverBudget` past the inline budget."""
        size = 0
        for r in found:
            data = r[0]
            size += len(data) if type(data) is str else json_length(data)
        if size > INLINE_MAX_BYTES and conn is self._inline:
            raise _OverBudget
        return size

    def _fetch(self, conn: sqlite3.Connection, table: str, pk: str, sk: str) -> Item | None:
        found = conn.execute(_GET_SQL, (table, pk, sk)).fetchone()
        if found is None:
            return None
        self._budget(conn, (found,))
        return load_row(found)

    def _get_sync(self, table: str, pk: str, sk: str, conn: sqlite3.Connection) -> Item | None:
        try:
            return self._fetch(conn, table, pk, sk)
        except sqlite3.DatabaseError as exc:
            self._damaged(exc)
            raise

    def _query_sync(
        self, sql: str, params: list[Any], limit: int, conn: sqlite3.Connection
    ) -> tuple[list[Item], bool]:
        """The first ``limit`` items the query finds, and whether it found more (``sql`` asks for
        one row more than ``limit``: that row only proves the range goes on, and is not decoded)."""
        try:
            rows = conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            self._damaged(exc)
            raise
        self._budget(conn, rows)
        if len(rows) > limit:
            return [load_row(r) for r in rows[:limit]], True
        return [load_row(r) for r in rows], False

    def _scan_sync(
        self, conn: sqlite3.Connection, table: str, after: tuple[str, str] | None
    ) -> list[tuple[str, str, Item]]:
        def fetch() -> list[Any]:
            if after is None:
                return conn.execute(_SCAN_FIRST_SQL, (table, self.scan_page)).fetchall()
            return conn.execute(_SCAN_NEXT_SQL, (table, *after, self.scan_page)).fetchall()

        return [(r[1], r[2], load_row(r)) for r in self._guarded(fetch)]

    def _transaction(self, conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], T]) -> T:
        """``body`` inside one ``BEGIN IMMEDIATE`` transaction, refused on a damaged or read-only
        file."""
        self._refuse_if_corrupt()
        if self.read_only is not None:
            raise self._read_only_error("writes are refused and nothing was written (reads still work)")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = body(conn)
                conn.execute("COMMIT")
            except BaseException:
                self._rollback(conn)
                raise
        except sqlite3.DatabaseError as exc:
            self._damaged(exc)
            if sqlite_result_code(exc) == sqlite3.SQLITE_FULL and conn is self._conn:
                health.checkpoint_after_full(conn)
            raise
        return result

    def _rollback(self, conn: sqlite3.Connection) -> None:
        """Roll back ``conn``'s open transaction after a failure; a rollback that fails too is
        logged (the original failure is the one to report)."""
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error as exc:
                log.warning("rollback failed on %s: %s", self.path, exc)

    def _purge_sync(self, now: float | None, limit: int) -> int:
        def purge(conn: sqlite3.Connection) -> int:
            cutoff = self._purge_clock.now(conn) if now is None else now
            return int(conn.execute(self._purge_sql, (cutoff, *self.keep_expired, limit)).rowcount)

        return self._transaction(self._db, purge)

    def _write_sync(
        self, apply: Callable[[sqlite3.Connection], Item | None], size: int, conn: sqlite3.Connection
    ) -> Item | None:
        """One attempt at a write (``apply``, of :meth:`_write_apply`, writing ``size`` bytes of
        rows) in its own IMMEDIATE transaction."""
        if conn is self._inline and size > INLINE_MAX_BYTES:
            raise _OverBudget
        result = self._transaction(conn, apply)
        if conn is self._inline:
            self._inline_writes += 1
        return result

    def _write_apply(
        self,
        ops: list[WriteOp],
        targets: list[tuple[TableName, str, str]],
        put_rows: dict[int, Row],
        purge: bool,
        returning: bool,
    ) -> Callable[[sqlite3.Connection], Item | None]:
        """A write's read-check-apply cycle, to run inside a transaction (its own, or a group's
        under a savepoint: :meth:`_commit_group`).

        Only the items a condition or an update needs are read (an unconditioned put or delete
        does not look at what it replaces), in one statement; the rows are then written with one
        call per kind of statement. ``returning``: the item an update leaves (engine.update)."""
        # A put whose one condition is that its item does not exist is not read: it is inserted,
        # and the key's unique index refuses it if the item exists (one key fewer to read per
        # such put: a decision and its id item, a signal and its inbox entries). Only then, or
        # when a later operation's condition fails, are such items read, to report the first
        # failing operation in order with its item, as a read would have.
        creates = [i for i, op in enumerate(ops) if isinstance(op, Put) and op.conditions == _CREATE]
        created = frozenset(creates)
        reads = [
            i for i, op in enumerate(ops) if (op.conditions or isinstance(op, Update)) and i not in created
        ]
        params: list[str] = []
        for i in reads:
            params += targets[i]

        def existing_create(conn: sqlite3.Connection, before: int) -> None:
            """Raise ConditionFailed for the first create before operation ``before`` whose item
            exists."""
            for i in creates:
                if i >= before:
                    return
                found = self._fetch(conn, *targets[i])
                if found is not None:
                    raise ConditionFailed(i, found)

        def apply(conn: sqlite3.Connection) -> Item | None:
            stored: dict[int, Sequence[Any]] = {}
            decoded: dict[int, Item] = {}

            def current(i: int) -> Item | None:
                """The item operation ``i`` targets as it is (decoded once, when needed)."""
                if i not in stored:
                    return None
                item = decoded.get(i)
                if item is None:
                    item = decoded[i] = load_row(stored[i][3:])
                return item

            if reads:
                found = conn.execute(_read_sql(len(reads)), params).fetchall()
                # Over the inline budget, reading the current items raises (before anything changed).
                self._budget(conn, [r[3:] for r in found])
                for r in found:
                    stored[reads[r[0]]] = r
            for i in reads:  # in the order of the operations: the first that fails is reported
                conditions = ops[i].conditions
                if not conditions:
                    continue
                if all(cond.kind in _PRESENCE for cond in conditions):
                    # Decided by the item's presence: its data is decoded only to report it.
                    if not all(holds(cond, _PRESENT if i in stored else None) for cond in conditions):
                        existing_create(conn, i)
                        raise ConditionFailed(i, current(i))
                    continue
                item = current(i)
                for cond in conditions:
                    if not holds(cond, item):
                        existing_create(conn, i)
                        raise ConditionFailed(i, item)
            if creates:
                changes = conn.total_changes
                try:
                    conn.executemany(_INSERT_SQL, [put_rows[i].params() for i in creates])
                except sqlite3.IntegrityError:
                    # The creates before the refused one were inserted (a row each; the refused
                    # statement is undone): it is the first whose item exists.
                    done = conn.total_changes - changes
                    if done < len(creates):
                        i = creates[done]
                        raise ConditionFailed(i, self._fetch(conn, *targets[i])) from None
                    raise
            # An item that exists (it was read) is rewritten in place, by rowid, in the columns
            # that change: INSERT OR REPLACE would delete it and insert it anew at the end of the
            # table, rewriting every index entry and two table pages (most updates are counters
            # whose only change is their data: a record_outcome left 11 pages in the WAL, now 5).
            # The keys are distinct (checked before), so the order of the statements does not
            # matter.
            inserts: list[tuple[Any, ...]] = []
            in_place: dict[tuple[int, ...], list[tuple[Any, ...]]] = {}
            deletes: list[tuple[TableName, str, str]] = []
            deletes_by_rowid: list[tuple[int]] = []
            result: Item | None = None
            for i, op in enumerate(ops):
                if isinstance(op, Check):
                    continue
                if isinstance(op, Delete):
                    if i in stored:
                        deletes_by_rowid.append((stored[i][1],))
                    elif not ops[i].conditions:  # (not read; read and absent: nothing to delete)
                        deletes.append(targets[i])
                    continue
                if isinstance(op, Put):
                    if i in created:
                        continue  # (inserted above)
                    new = put_rows[i]
                else:
                    new = row(
                        targets[i][0],
                        updated(op, current(i)),
                        values_checked=True,
                        key=targets[i],
                        compress=not op.add,  # counters stay plain JSON (see items.row)
                    )
                    if returning:
                        result = load_row((new.data, new.pk, new.sk, *new.gsi))
                old = stored.get(i)
                if old is None:
                    inserts.append(new.params())
                    continue
                columns = (new.ttl, *new.gsi)
                changed = _changed(columns, (old[2], *old[6:12]))
                in_place.setdefault(changed, []).append((new.stored, *(columns[k] for k in changed), old[1]))
            for sql, batch in (
                (_PUT_SQL, inserts),
                *((_set_sql(changed), rows) for changed, rows in in_place.items()),
                (_DELETE_SQL, deletes),
                (_DELETE_ROWID_SQL, deletes_by_rowid),
            ):
                if len(batch) == 1:
                    conn.execute(sql, batch[0])
                elif batch:
                    conn.executemany(sql, batch)
            if purge:
                self._purge(conn)
            return result

        return apply

    def _purge(self, conn: sqlite3.Connection) -> None:
        # Inside the caller's transaction: it already holds the write lock, so purging costs no extra
        # lock round, and a failed write purges nothing.
        deleted = conn.execute(
            self._purge_sql, (self._purge_clock.now(conn), *self.keep_expired, self.purge_batch)
        ).rowcount
        if deleted:
            log.debug("purged %d expired items from %s", deleted, self.path)
