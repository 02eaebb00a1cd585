"""Rate-limit budgets (the plan's short-term counters): one item per agent, budget key and window.

A budget is consumed by compare-and-swap on its ``used`` counter: read the item (strongly
consistent), and write ``used + cost`` on condition that ``used`` is still what was read (or that
the item does not exist yet). A lost race returns the item as it now is, so the next attempt needs
no extra read. Every instance of an agent, on any machine, shares the item, so exactly ``limit``
units are granted per window however many race for them.

Item: table ``state``, pk ``agent:{agent}#budget``, sk ``{key}#{window start}``, attributes ``key``,
``used``, ``window_start``, ``window_end`` and ``ttl`` (the window's end: the item is useless
after it, and expiry is filtered on read as everywhere).

Requests per consume: 1 consistent get + 1 conditional put, +1 put per race lost (a check with
``cost=0`` is the get alone).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import UTC, datetime

from agent_memory.errors import Conflict
from agent_memory.storage import keys
from agent_memory.storage.engine import Cond, ConditionFailed, Item, Put
from agent_memory.storage.records.quotas import Charge, Counted, QuotaRecords

MAX_ATTEMPTS = 64
"""Races one consume may lose before it gives up with a retryable Conflict. Each round of a race
has a winner, so only a budget hammered by more than this many concurrent callers can see it."""


@dataclass(frozen=True)
class BudgetUse:
    allowed: bool
    used: int
    """Units consumed in the window after this call."""


def _used(item: Item | None, now_s: float) -> tuple[int, bool]:
    """(used, exists) of a budget item as read; an expired item counts as absent but still exists
    for the write condition."""
    if item is None:
        return 0, False
    ttl = item.get("ttl")
    if ttl is not None and ttl <= now_s:
        return 0, True
    return int(item.get("used", 0)), True


class BudgetRecords(QuotaRecords):
    async def consume_budget(
        self,
        agent: str,
        key: str,
        *,
        window_start: int,
        window_end: int,
        limit: int,
        cost: int,
        now_s: float,
        charge: Charge | None = None,
    ) -> BudgetUse:
        """Take ``cost`` units of ``limit`` in the window starting at ``window_start`` (epoch
        seconds), all or nothing. ``cost=0`` only reads. Raises Conflict (retryable) after
        :data:`MAX_ATTEMPTS` lost races."""
        pk, sk = keys.budget_pk(agent), keys.budget_sk(key, window_start)
        item = await self.engine.get("state", pk, sk)
        for attempt in range(MAX_ATTEMPTS):
            used, exists = _used(item, now_s)
            if cost == 0 or used + cost > limit:
                return BudgetUse(allowed=cost == 0 or used + cost <= limit, used=used)
            new: Item = {
                "pk": pk,
                "sk": sk,
                "key": key,
                "used": used + cost,
                "window_start": window_start,
                "window_end": window_end,
                "ttl": window_end,
            }
            expected = Cond.eq("used", item["used"]) if exists and item is not None else Cond.not_exists()
            try:
                if exists:
                    await self.engine.write([Put("state", new, (expected,))])
                else:  # a new budget item: counted against the byte quota (memory/quotas.py)
                    expires = datetime.fromtimestamp(window_end, UTC)
                    await self.counted_write(
                        [Put("state", new, (expected,))], charge, Counted(1, [new], expires)
                    )
                return BudgetUse(allowed=True, used=used + cost)
            except ConditionFailed as exc:
                item = exc.item
                if attempt >= 4:
                    # Past a few immediate retries, spread the racers out a little.
                    await asyncio.sleep(random.uniform(0, 0.002 * attempt))
        raise Conflict(f"budget {key!r} is being consumed by too many callers at once; retry in a moment")
