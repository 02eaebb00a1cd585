"""Analytics over the rollups: what an agent (or the whole team) decided and how it went.

A report reads only:

* decision rollups (:mod:`agent_memory.rollups`): one item per agent, decision type and hour (for
  windows up to 48 h) or day (beyond);
* hourly signal rollups of each agent, from the window's first hour to the end of the longest
  signal lifetime ahead (pending deliveries are counted in the hour their signal expires);
* the agents' patterns (their effectiveness counters);
* the per-tool usage counters of the window's days (the cost section).

It never reads decisions, so its storage requests grow with the window, the number of agents and
the number of patterns, never with the number of decisions. See docs/ANALYTICS.md for what every
figure means and how it is computed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from pydantic import TypeAdapter, ValidationError

from agent_memory.api.analytics import (
    ADJECTIVE,
    AgentBreakdown,
    AnalyticsReport,
    DecisionFigures,
    Interval,
    MemoryUplift,
    PatternEffectiveness,
    Series,
    SeriesPoint,
    SignalFigures,
    TypeBreakdown,
)
from agent_memory.config import Settings
from agent_memory.errors import AccessDenied, InvalidInput
from agent_memory.histogram import quantiles
from agent_memory.limits import MAX_SIGNAL_TTL_HOURS, MAX_WINDOW_DAYS
from agent_memory.memory.analytics_figures import HOURLY_WINDOW_LIMIT, AgentData, Span, build_report
from agent_memory.memory.costs import cost_section
from agent_memory.memory.identity import Caller
from agent_memory.models import AgentId, Pattern, TypeName
from agent_memory.storage import keys
from agent_memory.storage.store import MemoryStore

__all__ = [
    "ADJECTIVE",
    "HOURLY_WINDOW_LIMIT",
    "MAX_WINDOW",
    "SIGNAL_HORIZON",
    "AgentBreakdown",
    "Analytics",
    "AnalyticsReport",
    "DecisionFigures",
    "Interval",
    "MemoryUplift",
    "PatternEffectiveness",
    "Series",
    "SeriesPoint",
    "SignalFigures",
    "Span",
    "TypeBreakdown",
    "quantiles",
]

MAX_WINDOW = timedelta(days=MAX_WINDOW_DAYS)
SIGNAL_HORIZON = timedelta(hours=MAX_SIGNAL_TTL_HOURS + 1)
"""Longest signal lifetime plus the hour it starts in: how far ahead deliveries fall due."""
FETCH_CONCURRENCY = 16
"""Agents read at once by an ``all_agents`` report (three queries each): bounds the burst."""

_agent_ids: TypeAdapter[str] = TypeAdapter(AgentId)
_type_names: TypeAdapter[str] = TypeAdapter(TypeName)


# --------------------------------------------------------------------------------------------------
# The service
# --------------------------------------------------------------------------------------------------


class Analytics:
    """Reports over rollups, patterns and usage counters; access rules applied here."""

    def __init__(self, store: MemoryStore, settings: Settings, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock

    async def report(
        self,
        caller: Caller,
        *,
        window: timedelta,
        decision_type: str | None = None,
        agent_id: str | None = None,
        all_agents: bool = False,
        include_costs: bool | None = None,
    ) -> AnalyticsReport:
        """The report of the caller's own decisions (default), of ``agent_id``, or of every
        registered agent (``all_agents``); the last two need the observer role.

        ``include_costs`` (default: for observers only) adds the cost section: per-tool usage of
        the whole server, an operator's figure rather than an agent's.

        Requests: per agent one query of decision rollups, one or two of signal rollups and one
        per 1,000 patterns; the registry pages when ``all_agents``; one query per day of the
        window for the cost section. None of it depends on the number of decisions.
        """
        if not timedelta(0) < window <= MAX_WINDOW:
            raise InvalidInput(f"window must be longer than 0 and at most {MAX_WINDOW.days} days")
        if decision_type is not None:
            decision_type = _valid(_type_names, decision_type, "decision_type")
        if all_agents:
            if not caller.is_observer:
                raise AccessDenied(
                    "analytics across all agents need the observer role; omit all_agents to see "
                    f"your own (you are {caller.agent_id!r})"
                )
            if agent_id is not None:
                raise InvalidInput("pass either agent_id or all_agents, not both")
            agents = await self._registered_agents()
        else:
            target = _valid(_agent_ids, agent_id, "agent_id") if agent_id else caller.agent_id
            if not caller.may_read_agent(target):
                raise AccessDenied(
                    f"analytics of agent {target!r} are private to it; only the observer role reads "
                    f"another agent's analytics. Omit agent_id to see your own (you are {caller.agent_id!r})."
                )
            agents = [target]

        now = self.clock()
        span = Span.of(now, window)
        gate = asyncio.Semaphore(FETCH_CONCURRENCY)

        async def fetch(agent: str) -> AgentData:
            async with gate:
                return await self._fetch(agent, span, now, decision_type)

        fetched = asyncio.gather(*(fetch(agent) for agent in agents))
        if caller.is_observer if include_costs is None else include_costs:
            data, costs = await asyncio.gather(fetched, cost_section(self.store, self.settings, span.days))
        else:
            data, costs = await fetched, None
        return build_report(
            data,
            span=span,
            now=now,
            window=window,
            decision_type=decision_type,
            all_agents=all_agents,
            costs=costs,
        )

    async def _registered_agents(self) -> list[str]:
        return sorted({p.agent_id for p in await self.store.all_agents()})

    async def _patterns(self, agent: str) -> list[Pattern]:
        out: list[Pattern] = []
        cursor: str | None = None
        while True:
            page = await self.store.list_patterns(agent, limit=1000, cursor=cursor)
            out.extend(page.items)
            if page.next_cursor is None:
                return out
            cursor = page.next_cursor

    async def _fetch(self, agent: str, span: Span, now: datetime, decision_type: str | None) -> AgentData:
        rows, signal_rows, patterns = await asyncio.gather(
            self.store.query_rollups(agent, span.grain, span.buckets[0], span.buckets[-1], decision_type),
            self.store.query_signal_rollups(
                agent, keys.bucket(span.start, "hour"), keys.bucket(now + SIGNAL_HORIZON, "hour")
            ),
            self._patterns(agent),
        )
        return AgentData(agent, rows, signal_rows, patterns)


def _valid(adapter: TypeAdapter[str], value: str, what: str) -> str:
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        raise InvalidInput(f"{what}: {exc.errors()[0]['msg']}") from exc
