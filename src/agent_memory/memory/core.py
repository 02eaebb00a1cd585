"""What every family of the domain services shares: the store, the settings, the clock, and the
per-process registry knowledge; plus :func:`off_loop` for building large records off the event loop.

The families (:mod:`.decisions`, :mod:`.patterns`, :mod:`.signals`, :mod:`.state`, :mod:`.registry`)
each add their methods to :class:`ServiceBase`; :class:`agent_memory.memory.service.Memory` joins them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from agent_memory.config import Settings
from agent_memory.errors import InvalidInput
from agent_memory.memory.identity import Caller
from agent_memory.memory.quotas import Quotas
from agent_memory.memory.ratelimit import RateLimiter
from agent_memory.models import Pattern
from agent_memory.storage.records.trusted import stored
from agent_memory.storage.sizes import INLINE_BUILD_BYTES, fits
from agent_memory.storage.store import MemoryStore

T = TypeVar("T")
R = TypeVar("R", bound=BaseModel)


async def off_loop(build: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Build (validate, normalise) a record in a worker thread when it is large: a record carrying
    up to 64 KiB per free-form field costs milliseconds of CPU, and other agents' calls must be
    answered meanwhile (issue #12: large payloads stalled another agent's get_state for seconds).
    A small one is built at once: the hop to the thread cost more than the build (issue #14)."""
    if fits((args, kwargs), INLINE_BUILD_BYTES):
        return build(*args, **kwargs)
    return await asyncio.to_thread(build, *args, **kwargs)


def checked_record(cls: type[R], fields: dict[str, Any]) -> R:
    """The record ``cls`` of ``fields`` that were validated already, with the record's own field
    types (a tool's request model did: :mod:`agent_memory.api.requests`), built without
    validating them again (issue #14: the second validation was a tenth of a write's CPU). A
    value of a shape the builder does not take is validated as a record read back would be."""
    return stored(cls, fields)


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

    async def _visible_pattern(
        self, caller: Caller, pattern_id: str, *, counted: bool = True
    ) -> Pattern | None:
        """The pattern ``pattern_id`` names for ``caller``: its own, else the one visible to it
        (shared with it; any, for an observer). Ids are per author (issue #12), so this looks only
        at patterns the caller may see: the answer never tells whether another agent uses the id.
        ``counted=False``: without reading its application counters (to resolve a citation)."""
        own = await self.store.get_own_pattern(caller.agent_id, pattern_id, counted=counted)
        if own is not None:
            return own
        authors = [a for a in await self.store.pattern_authors(pattern_id) if a != caller.agent_id]
        if caller.is_observer:
            found = await asyncio.gather(
                *(self.store.get_own_pattern(a, pattern_id, counted=counted) for a in authors)
            )
            visible = [p for p in found if p is not None]
        else:
            # Through the caller's own sharing index, never the authors' partitions: an agent's
            # IAM policy allows it (docs/SCALING.md#least-privilege-and-sharing).
            visible = await self.store.shared_with_reader(
                caller.agent_id, authors, pattern_id, counted=counted
            )
        if len(visible) > 1:
            raise InvalidInput(
                f"pattern_id {pattern_id!r} names patterns of several agents visible to you "
                f"({', '.join(sorted(p.agent_id for p in visible))}); pattern ids are per author: "
                "ask one of them to store theirs under another id"
            )
        return visible[0] if visible else None

    async def _in_every_space(self, get: Callable[[str, str], Awaitable[T]], record_id: str) -> list[T]:
        """``get(agent, record_id)`` for every registered agent (an observer naming an id alone)."""
        agents = sorted(p.agent_id for p in await self.store.all_agents())
        return list(await asyncio.gather(*(get(a, record_id) for a in agents)))
