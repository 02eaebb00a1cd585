"""Guards of the SQLite file: integrity check, full-disk recovery, read-only stores, and the
purge's clock.

All functions run on the engine's worker thread with its connection (autocommit mode).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

PURGE_SQL = "DELETE FROM items WHERE rowid IN (SELECT rowid FROM items WHERE ttl < ? LIMIT ?)"

MAX_CLOCK_JUMP_S = 3 * 24 * 3600.0
"""How far the wall clock may run ahead of the purge clock's last trusted reading and still be
believed. Beyond it (a clock jumped forward, or a store left unused for longer) the lazy purge keeps
its own clock: the last trusted reading plus the real (monotonic) time elapsed since."""

_PURGE_CLOCK_KEY = "purge_clock"


def quick_check(conn: sqlite3.Connection, seconds: float) -> str | None:
    """``PRAGMA quick_check`` bounded to ``seconds``: None if the file is sound or the check ran out
    of time (then it is inconclusive, and the first "malformed" error will tell), else the first
    problem SQLite reported."""
    if seconds <= 0:
        return None
    stop_at = time.monotonic() + seconds

    def over_time() -> int:
        return 1 if time.monotonic() > stop_at else 0

    # Called every 1000 virtual-machine instructions; a non-zero answer interrupts the statement.
    conn.set_progress_handler(over_time, 1000)
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_INTERRUPT:
            log.info("quick_check did not finish within %.1f s; the file is checked lazily", seconds)
            return None
        raise
    except sqlite3.DatabaseError as exc:  # SQLITE_CORRUPT / SQLITE_NOTADB while checking
        return str(exc)
    finally:
        conn.set_progress_handler(None, 0)
    results = [str(r[0]) for r in rows]
    return None if results == ["ok"] else "; ".join(results[:3])


def checkpoint_after_full(conn: sqlite3.Connection) -> None:
    """After SQLITE_FULL: copy the WAL into the database and truncate it, best effort.

    The failed transaction was rolled back, but the WAL keeps its size (and the frames of earlier
    commits) until a checkpoint resets it; truncating it returns that space, so once the operator
    frees some disk the next write finds room."""
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except sqlite3.Error as exc:  # busy readers, or the disk is still full: the next write retries
        log.warning("checkpoint after a full disk failed: %s", exc)


def read_only_reason(path: os.PathLike[str] | str) -> str | None:
    """Why an existing database file cannot be written (a read-only file system, file or
    directory), or None when it can. The engine then opens it read-only: reads work, and every
    write is refused as ``storage_read_only`` instead of failing somewhere inside SQLite."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return "read-only file system"
    except OSError:
        return None  # let SQLite's own error speak
    if not os.access(path, os.W_OK):
        return "read-only file"
    if not os.access(directory, os.W_OK | os.X_OK):
        return "read-only directory"  # SQLite creates its WAL and shared-memory files there
    return None


@dataclass
class PurgeClock:
    """The wall clock as far as the lazy purge believes it.

    A reading within :data:`MAX_CLOCK_JUMP_S` of the last trusted one is trusted; a reading beyond
    it is not, and the purge then runs on the last trusted reading advanced by the monotonic time
    elapsed since: a clock jumped forward by 100 days deletes nothing early, and an expired item is
    deleted at worst later, never sooner. Reads are unaffected (the record layer filters expired
    items on every read with its own clock). The trusted reading is kept in the file (table
    ``meta``), so it survives restarts.
    """

    wall_clock: Callable[[], float] = time.time
    max_jump: float = MAX_CLOCK_JUMP_S
    _trusted: float | None = None
    _at_monotonic: float = 0.0
    warned: bool = False

    def now(self, conn: sqlite3.Connection) -> float:
        """The purge's time (epoch seconds), inside the caller's write transaction."""
        wall, mono = self.wall_clock(), time.monotonic()
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (_PURGE_CLOCK_KEY,)).fetchone()
        trusted = float(row[0]) if row is not None else None
        if self._trusted is not None:
            # This process's own estimate runs on by its monotonic time since its last reading;
            # another process may have stored a later trusted reading meanwhile.
            own = self._trusted + (mono - self._at_monotonic)
            trusted = own if trusted is None else max(trusted, own)
        if trusted is None or wall <= trusted + self.max_jump:
            clock = wall
        else:
            clock = trusted
            if not self.warned:
                self.warned = True
                log.warning(
                    "the wall clock (%s) is %.1f days ahead of the purge clock's last trusted reading: "
                    "expired items are purged on the purge clock, which runs on from that reading at "
                    "real speed (nothing is deleted early; some may be deleted late)",
                    time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(wall)),
                    (wall - trusted) / 86400,
                )
        self._trusted, self._at_monotonic = clock, mono
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (_PURGE_CLOCK_KEY, clock))
        return clock
