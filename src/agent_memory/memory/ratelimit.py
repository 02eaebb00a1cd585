"""Per-agent rate limits: a token bucket per agent, in the process that serves it.

Each server process keeps its own buckets (no storage request per call): behind a load balancer
with N instances an agent may reach N times its limit in the worst case. The limit protects the
server and the other agents from one runaway or hostile agent, not billing.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from agent_memory.errors import RateLimited

MAX_TRACKED_AGENTS = 10_000


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """``per_minute`` calls per agent on average, ``burst`` at once; 0 per minute disables it."""

    def __init__(self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def admit(self, agent_id: str) -> None:
        """Take one call from the agent's bucket, or raise :class:`RateLimited`."""
        if self.rate <= 0:
            return
        now = self.clock()
        bucket = self._buckets.pop(agent_id, None) or _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        self._buckets[agent_id] = bucket  # most recently used last
        while len(self._buckets) > MAX_TRACKED_AGENTS:
            self._buckets.popitem(last=False)  # a forgotten agent starts again with a full bucket
        if bucket.tokens < 1.0:
            wait = round((1.0 - bucket.tokens) / self.rate, 3)
            raise RateLimited(
                f"rate limit of {round(self.rate * 60)} calls per minute (bursts of {int(self.burst)}) "
                f"reached: retry after {wait} s",
                retry_after_s=wait,
            )
        bucket.tokens -= 1.0
