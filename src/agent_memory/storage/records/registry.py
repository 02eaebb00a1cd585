"""The agent registry and per-tool usage counters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agent_memory.models import AgentProfile, Page
from agent_memory.storage import keys
from agent_memory.storage.engine import Cond, ConditionFailed, Put, Update
from agent_memory.storage.records.base import RecordBase, dump, stored, strip_keys


class RegistryRecords(RecordBase):
    async def get_agent(self, agent: str) -> AgentProfile | None:
        item = await self.engine.get("state", keys.REGISTRY_PK, keys.registry_sk(agent))
        return stored(AgentProfile, strip_keys(item)) if item else None

    async def register_agent(self, profile: AgentProfile) -> AgentProfile:
        """Create the registry entry, or refresh ``last_seen`` (and version/role) of an existing one.
        Requests: 1 get + 1 write."""
        pk, sk = keys.REGISTRY_PK, keys.registry_sk(profile.agent_id)
        existing = await self.get_agent(profile.agent_id)
        if existing is None:
            try:
                await self.engine.write(
                    [Put("state", {**dump(profile), "pk": pk, "sk": sk}, (Cond.not_exists(),))]
                )
                return profile
            except ConditionFailed:
                pass  # registered concurrently by another connection of the same agent
        changes: dict[str, Any] = {"last_seen": keys.iso(profile.last_seen), "role": profile.role}
        if profile.agent_version:
            changes["agent_version"] = profile.agent_version
        item = await self.engine.update(Update("state", pk, sk, set=changes, conditions=(Cond.exists(),)))
        return stored(AgentProfile, strip_keys(item))

    async def list_agents(self, *, limit: int, cursor: str | None) -> Page[AgentProfile]:
        """The registry by agent id: one partition, queried (no Scan)."""
        return await self._page(
            "state",
            keys.REGISTRY_PK,
            lambda item: stored(AgentProfile, strip_keys(item)),
            limit=limit,
            cursor=cursor,
            digest_parts=(),
        )

    async def all_agents(self) -> list[AgentProfile]:
        """Every registered agent, by agent id (the registry is one small partition).
        Requests: 1 consistent query per 500 agents."""
        agents: list[AgentProfile] = []
        cursor: str | None = None
        while True:
            page = await self.list_agents(limit=500, cursor=cursor)
            agents.extend(page.items)
            if page.next_cursor is None:
                return agents
            cursor = page.next_cursor

    async def add_tool_usage(self, day: str, tool: str, delta: Mapping[str, int | float]) -> None:
        """Add a process's accumulated per-tool usage (calls, requests, units) to the day's
        counters. Requests: 1 update (flushed periodically, not per call)."""
        await self.engine.write(
            [Update("state", keys.usage_pk(day), tool, set={"tool": tool}, add=dict(delta))]
        )

    async def query_tool_usage(self, days: Sequence[str]) -> dict[str, dict[str, float]]:
        """Per-tool usage counters summed over ``days``. Requests: 1 query per day."""
        totals: dict[str, dict[str, float]] = {}
        for day in days:
            page = await self.engine.query("state", keys.usage_pk(day), limit=1000)
            for item in page.items:
                bucket = totals.setdefault(item["sk"], {})
                for name, value in strip_keys(item, "tool").items():
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        bucket[name] = bucket.get(name, 0) + value
        return totals
