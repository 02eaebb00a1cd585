"""Bounded in-process memos: values remembered under the exact content that decides them (a row's
bytes, a float, a query's parts), so that none can go stale, and forgotten all at once when full
(the hot paths read them with a plain ``dict.get``; an LRU's bookkeeping on every hit cost more
than the rare refill after a clear)."""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Memo(dict[K, V]):
    """A dict of at most ``kept`` entries: read it as a dict, add to it with :meth:`keep`."""

    __slots__ = ("kept",)

    def __init__(self, kept: int) -> None:
        super().__init__()
        self.kept = kept

    def keep(self, key: K, value: V) -> V:
        """Remember ``value`` under ``key`` (forgetting every entry first when full); returns it."""
        if len(self) >= self.kept:
            self.clear()
        self[key] = value
        return value
