"""Rate-limit budgets for outside APIs, shared by every instance of an agent.

An agent calling a metered API (an exchange, a data vendor, an LLM) asks before each call: "may I
spend ``cost`` of my ``limit`` units per ``window`` on ``key``?" The answer is atomic on every
backend (see :mod:`agent_memory.storage.records.budgets`), so ten instances of one agent never exceed the
limit together.

Windows are fixed and aligned to the epoch in UTC (a 1 h window runs from hh:00 to hh+1:00): every
instance computes the same window without talking to the others, and ``reset_at`` says exactly
when units return. A burst of ``limit`` at the end of one window and another at the start of the
next is possible (documented in docs/SCALING.md#budgets); pick the window to match the outside
API's own rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from agent_memory.api.results import BudgetStatus
from agent_memory.errors import AccessDenied, InvalidInput
from agent_memory.memory.identity import Caller
from agent_memory.memory.quotas import Quotas
from agent_memory.storage.store import MemoryStore

_WINDOW = re.compile(r"^([1-9][0-9]{0,6})(s|m|h|d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_WINDOW_SECONDS = 31 * 86400
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")


def parse_budget_window(text: str) -> int:
    """'30s', '15m', '1h', '1d' -> seconds (1 s to 31 d)."""
    match = _WINDOW.match(text)
    if not match:
        raise InvalidInput(f"invalid window {text!r}: use a number and a unit s, m, h or d, e.g. '60s', '1h'")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds > MAX_WINDOW_SECONDS:
        raise InvalidInput(f"window {text!r} is too long: at most 31d")
    return seconds


class Budgets:
    """The budget service. ``clock`` gives aware UTC datetimes (tests pass a fake)."""

    def __init__(
        self,
        store: MemoryStore,
        clock: Callable[[], datetime],
        *,
        read_only: bool = False,
        quotas: Quotas | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.read_only = read_only
        self.quotas = quotas
        """The budget items an agent creates (one per key and window) count against its byte quota."""

    async def consume(self, caller: Caller, key: str, limit: int, window: str, cost: int = 1) -> BudgetStatus:
        if not _KEY.match(key):
            raise InvalidInput(
                f"invalid budget key {key!r}: 1-128 letters, digits and _.:/- starting with a letter or digit"
            )
        if limit < 1:
            raise InvalidInput("limit must be at least 1")
        if cost < 0 or cost > limit:
            raise InvalidInput(f"cost must be between 0 and the limit ({limit})")
        if cost and self.read_only:
            raise AccessDenied(
                "this memory server is read-only: budgets can be checked (cost=0) but not consumed"
            )
        seconds = parse_budget_window(window)
        now = self.clock()
        now_s = now.timestamp()
        start = int(now_s // seconds) * seconds
        end = start + seconds
        charge = self.quotas.charge(caller.agent_id, "budgets") if self.quotas else None
        use = await self.store.consume_budget(
            caller.agent_id, key, window_start=start, window_end=end, limit=limit, cost=cost, now_s=now_s,
            charge=charge,
        )  # fmt: skip
        reset_at = datetime.fromtimestamp(end, UTC)
        return BudgetStatus(
            allowed=use.allowed,
            key=key,
            limit=limit,
            cost=cost,
            used=use.used,
            remaining=max(0, limit - use.used),
            window=window,
            reset_at=reset_at,
            retry_after_s=None if use.allowed else round(end - now_s, 3),
        )
