"""One overall deadline per call, across storage retries and backends.

A tool call opens one :func:`deadline` scope (``AGENT_MEMORY_CALL_TIMEOUT_SECONDS``, default 30 s)
around everything it does; every storage call inside it is bounded by what is left of it, whatever
its own retries would do. A storage call outside any scope gets a budget of its own. Past the
deadline the call fails as ``storage_unreachable`` (retryable).
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager

from agent_memory.errors import StorageUnreachable

DEFAULT_CALL_TIMEOUT_S = 30.0

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "agent_memory_deadline", default=None
)


def remaining() -> float | None:
    """Seconds left before the current call's deadline, or None outside any deadline scope."""
    at = _deadline.get()
    return None if at is None else at - time.monotonic()


class _Deadline:
    """The block of :func:`deadline` (a class: a generator's context manager cost twice as much,
    and every tool call opens one; issue #14)."""

    __slots__ = ("_seconds", "_token")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds

    def __enter__(self) -> float:
        at = time.monotonic() + self._seconds
        outer = _deadline.get()
        if outer is not None and outer < at:
            at = outer
        self._token = _deadline.set(at)
        return at

    def __exit__(self, *exc: object) -> None:
        _deadline.reset(self._token)


def deadline(seconds: float) -> AbstractContextManager[float]:
    """Run the block under a deadline ``seconds`` from now (or the enclosing one, if sooner)."""
    return _Deadline(seconds)


def deadline_passed(what: str, where: str, budget: float) -> StorageUnreachable:
    return StorageUnreachable(
        f"{what} did not complete within the call's deadline of {budget:g} s: {where} did not answer "
        "in time; if it was a write, it may or may not have been applied: retrying the same call is safe",
        retry_after_s=1.0,
    )


@asynccontextmanager
async def bounded(call_timeout: float, what: str, where: str) -> AsyncIterator[None]:
    """Bound the block by the current deadline (or a new one of ``call_timeout`` seconds);
    past it, raise :class:`StorageUnreachable`."""
    with deadline(call_timeout) as at:
        budget = at - time.monotonic()
        try:
            async with asyncio.timeout_at(asyncio.get_running_loop().time() + max(budget, 0.0)):
                yield
        except TimeoutError as exc:
            raise deadline_passed(what, where, call_timeout) from exc
