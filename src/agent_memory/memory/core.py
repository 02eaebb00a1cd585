"""What every family of the domain services shares: the store, the settings, the clock, and the
per-process registry knowledge; plus :func:`off_loop` for building large records off the event loop.

The families (:mod:`.decisions`, :mod:`.patterns`, :mod:`.signals`, :mod:`.state`, :mod:`.registry`)
each add their methods to :class:`ServiceBase`; :class:`agent_memory.memory.service.Memory` joins them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from agent_memory.config import Settings
from agent_memory.memory.quotas import Quotas
from agent_memory.memory.ratelimit import RateLimiter
from agent_memory.storage.sizes import INLINE_BUILD_BYTES, fits
from agent_memory.storage.store import MemoryStore

T = TypeVar("T")


async def off_loop(build: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Build (validate, normalise) a record in a worker thread when it is large: a record carrying
    up to 64 KiB per free-form field costs milliseconds of CPU, and other agents' calls must be
    answered meanwhile (issue #12: large payloads stalled another agent's get_state for seconds).
    A small one is built at once: the hop to the thread cost more than the build (issue #14)."""
    if fits((args, kwargs), INLINE_BUILD_BYTES):
        return build(*args, **kwargs)
    return await asyncio.to_thread(build, *args, **kwargs)


class ServiceBase:
    """The state the families share. Not used alone: see :class:`agent_memory.memory.service.Memory`."""

    def __init__(self, store: MemoryStore, settings: Settings, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self._seen: dict[str, datetime] = {}
        self._known_agents: set[str] = set()
        """Agent ids seen in the registry (see :meth:`_unregistered`)."""
        self._limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
        self.quotas = Quotas(settings)
        """Per-agent storage quotas: each store write that adds records carries its charge."""
