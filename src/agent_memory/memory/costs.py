"""What each tool costs: per-tool usage counters and on-demand price estimates.

Every tool call runs inside :func:`agent_memory.storage.usage.metered`, which counts the storage
requests and capacity units it sent. The server hands each call's :class:`Usage` to a
:class:`UsageLedger` (in memory, no storage request per call) and flushes the ledger periodically
and at shutdown: one counter update per tool per flush, added to the day's ``usage#{day}`` items.
A crash loses at most one flush interval of these metrics (never any memory data).

:func:`cost_rows` turns the summed counters into per-tool rows: calls, requests per call, read and
write units per call, and the estimated USD per 1,000 calls at DynamoDB on-demand prices
(``price_read_per_million`` / ``price_write_per_million``). The embedded SQLite store reports
requests with zero units, so its rows estimate nothing: costs are meaningful on DynamoDB.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from agent_memory.api.analytics import CostRow, CostSection
from agent_memory.config import Settings
from agent_memory.storage import keys
from agent_memory.storage.store import MemoryStore
from agent_memory.storage.usage import Usage, note_error

__all__ = ["CostRow", "CostSection", "UsageLedger", "cost_rows", "cost_section", "note_error"]

CALLS = "calls"
REQUESTS = "requests"
READ_UNITS = "read_units"
WRITE_UNITS = "write_units"


@dataclass
class _ToolTotals:
    calls: int = 0
    requests: int = 0
    read_units: float = 0.0
    write_units: float = 0.0

    def add(self, other: _ToolTotals) -> None:
        self.calls += other.calls
        self.requests += other.requests
        self.read_units += other.read_units
        self.write_units += other.write_units

    def delta(self) -> dict[str, int | float]:
        return {
            CALLS: self.calls,
            REQUESTS: self.requests,
            READ_UNITS: self.read_units,
            WRITE_UNITS: self.write_units,
        }


class UsageLedger:
    """In-process accumulator of per-tool usage, flushed to the store in one update per tool.

    ``record`` is synchronous and cheap (called after every tool call); ``flush`` swaps the
    accumulated deltas out before writing, so calls recorded during a flush go to the next one.
    A delta whose write fails is put back and retried by the next flush.
    """

    def __init__(self) -> None:
        self._totals: dict[str, _ToolTotals] = {}

    def record(self, tool: str, usage: Usage) -> None:
        totals = self._totals.setdefault(tool, _ToolTotals())
        totals.calls += 1
        totals.requests += usage.requests
        totals.read_units += usage.read_units
        totals.write_units += usage.write_units

    def pending(self) -> dict[str, dict[str, int | float]]:
        """The deltas the next flush would write (a copy)."""
        return {tool: totals.delta() for tool, totals in self._totals.items()}

    def __len__(self) -> int:
        return len(self._totals)

    async def flush(self, store: MemoryStore, day: str | datetime) -> int:
        """Add the accumulated deltas to ``day``'s counters and reset; returns the tools written.

        ``day`` is a UTC day ("YYYY-MM-DD") or a time in it: usage is attributed to the day of the
        flush. Requests: one update per tool with calls since the last flush.
        """
        day_key = keys.bucket(day, "day") if isinstance(day, datetime) else day
        batch, self._totals = self._totals, {}
        if not batch:
            return 0
        tools = list(batch)
        results = await asyncio.gather(
            *(store.add_tool_usage(day_key, tool, batch[tool].delta()) for tool in tools),
            return_exceptions=True,
        )
        failure: BaseException | None = None
        for tool, result in zip(tools, results, strict=True):
            if isinstance(result, BaseException):
                # Not written: keep it for the next flush (added to what accumulated meanwhile).
                self._totals.setdefault(tool, _ToolTotals()).add(batch[tool])
                failure = failure or result
        if failure is not None:
            raise failure
        return len(tools)


def _usd(read_units: float, write_units: float, settings: Settings) -> float:
    return (
        read_units * settings.price_read_per_million + write_units * settings.price_write_per_million
    ) / 1_000_000


def cost_rows(usage: Mapping[str, Mapping[str, float]], settings: Settings) -> list[CostRow]:
    """Per-tool rows from :meth:`MemoryStore.query_tool_usage` counters, most called first."""
    rows: list[CostRow] = []
    for tool, counters in usage.items():
        calls = int(counters.get(CALLS, 0))
        requests = int(counters.get(REQUESTS, 0))
        reads = float(counters.get(READ_UNITS, 0.0))
        writes = float(counters.get(WRITE_UNITS, 0.0))
        per = 1 / calls if calls else 0.0
        rows.append(
            CostRow(
                tool=tool,
                calls=calls,
                requests=requests,
                requests_per_call=requests * per,
                read_units_per_call=reads * per,
                write_units_per_call=writes * per,
                usd_per_1000_calls=_usd(reads * per, writes * per, settings) * 1000,
                usd_total=_usd(reads, writes, settings),
            )
        )
    rows.sort(key=lambda r: (-r.calls, r.tool))
    return rows


async def cost_section(store: MemoryStore, settings: Settings, days: Sequence[str]) -> CostSection:
    """The cost rows of ``days`` (UTC "YYYY-MM-DD"). Requests: one query per day, concurrent."""
    per_day = await asyncio.gather(*(store.query_tool_usage([day]) for day in days))
    totals: dict[str, dict[str, float]] = {}
    for usage in per_day:
        for tool, counters in usage.items():
            into = totals.setdefault(tool, {})
            for name, value in counters.items():
                into[name] = into.get(name, 0) + value
    rows = cost_rows(totals, settings)
    return CostSection(
        days=list(days),
        price_read_per_million=settings.price_read_per_million,
        price_write_per_million=settings.price_write_per_million,
        rows=rows,
        total_calls=sum(r.calls for r in rows),
        total_usd=sum(r.usd_total for r in rows),
        note=(
            "Estimated at DynamoDB on-demand prices from the capacity units the engine metered; "
            "the embedded SQLite store meters requests only (0 units, so $0). Usage counters are "
            "flushed periodically: a crash loses at most one flush interval."
        ),
    )
