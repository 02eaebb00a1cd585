"""The agent registry: who has called, and the per-caller rate limit taken on every call."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from agent_memory.errors import StorageReadOnly
from agent_memory.memory.core import ServiceBase
from agent_memory.memory.identity import Caller
from agent_memory.models import AgentProfile, Page

_REFRESH = timedelta(minutes=1)
"""A caller's ``last_seen`` is written again once this has passed since (per process)."""


class RegistryService(ServiceBase):
    """Registration, the agent list, and which targets of a signal are registered."""

    async def register(self, caller: Caller, agent_version: str | None = None) -> None:
        """Register a caller first seen, and refresh ``last_seen`` at most once a minute per
        process (the registry is informative; this keeps it off every call's cost).

        Every tool call passes here first, so this is also where the caller's rate limit is taken.
        """
        self._limiter.admit(caller.agent_id)
        if self.settings.read_only:
            return  # a read-only server writes nothing, not even the registry
        now = self.clock()
        last = self._seen.get(caller.agent_id)
        if last is not None and now - last < _REFRESH:
            return
        profile = AgentProfile(
            agent_id=caller.agent_id,
            role=caller.role,
            agent_version=agent_version or self.settings.agent_version,
            first_seen=now,
            last_seen=now,
        )
        try:
            await self.store.register_agent(profile)
        except StorageReadOnly:  # a store opened read-only still serves reads; writes say why not
            return
        self._seen[caller.agent_id] = now
        self._known_agents.add(caller.agent_id)

    async def list_agents(self, limit: int = 100, cursor: str | None = None) -> Page[AgentProfile]:
        return await self.store.list_agents(limit=limit, cursor=cursor)

    async def _registered_ids(self) -> set[str]:
        ids = {p.agent_id for p in await self.store.all_agents()}
        self._known_agents |= ids
        return ids

    async def _unregistered(self, targets: list[str]) -> list[str]:
        """The targets not in the registry. An agent, once registered, stays registered, so the
        ids seen registered are remembered per process and only the others are looked up (one
        consistent get each, in parallel): a team publishing to its usual peers reads nothing."""
        unknown = [t for t in targets if t not in self._known_agents]
        found = await asyncio.gather(*(self.store.get_agent(t) for t in unknown))
        self._known_agents.update(p.agent_id for p in found if p is not None)
        return [t for t, p in zip(unknown, found, strict=True) if p is None]
