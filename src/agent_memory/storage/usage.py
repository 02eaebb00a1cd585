"""Per-call accounting of storage requests and capacity units.

A tool call (or a benchmark operation) opens a :func:`metered` block; engines report every request
they send with :func:`record`. The DynamoDB engine computes capacity units from item sizes by
DynamoDB's published rules (moto's ConsumedCapacity is not faithful); the SQLite engine reports
requests with zero units.
"""

from __future__ import annotations

import contextvars
import math
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

_current: contextvars.ContextVar[Usage | None] = contextvars.ContextVar("agent_memory_usage", default=None)


@dataclass
class Usage:
    requests: int = 0
    read_units: float = 0.0
    write_units: float = 0.0
    by_operation: dict[str, int] = field(default_factory=dict)
    error_code: str | None = None
    """The error the call answered with, if any (the per-call metrics count errors by tool)."""

    def add(self, operation: str, read_units: float = 0.0, write_units: float = 0.0) -> None:
        self.requests += 1
        self.read_units += read_units
        self.write_units += write_units
        self.by_operation[operation] = self.by_operation.get(operation, 0) + 1


def record(operation: str, read_units: float = 0.0, write_units: float = 0.0) -> None:
    """Report one request to the innermost open :func:`metered` block (a no-op outside one)."""
    usage = _current.get()
    if usage is not None:
        usage.add(operation, read_units, write_units)


def note_error(code: str) -> None:
    """Mark the call of the innermost open :func:`metered` block as answered with an error."""
    usage = _current.get()
    if usage is not None:
        usage.error_code = code


class _Metered:
    """The block of :func:`metered` (a class: a generator's context manager cost twice as much,
    and every tool call opens one; issue #14)."""

    __slots__ = ("_token", "_usage")

    def __enter__(self) -> Usage:
        self._usage = usage = Usage()
        self._token = _current.set(usage)
        return usage

    def __exit__(self, *exc: object) -> None:
        _current.reset(self._token)


def metered() -> AbstractContextManager[Usage]:
    """A block whose storage requests are counted (:func:`record`) in the :class:`Usage` it gives."""
    return _Metered()


def read_units(total_bytes: int, *, consistent: bool, transactional: bool = False) -> float:
    """Read request units: 1 per 4 KB (rounded up) strongly consistent, half that eventually
    consistent, double in a transaction. An empty result still costs 0.5/1 unit."""
    blocks = max(1, math.ceil(total_bytes / 4096))
    units = float(blocks) if consistent else blocks / 2
    return units * 2 if transactional else units


def write_units(item_bytes: int, *, transactional: bool = False) -> float:
    """Write request units: 1 per 1 KB (rounded up), double in a transaction."""
    units = float(max(1, math.ceil(item_bytes / 1024)))
    return units * 2 if transactional else units
