""":class:`MemoryClient`: one typed method per tool, and whole records read as resources."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from agent_memory.api import requests as rq
from agent_memory.api import results as rs
from agent_memory.api.analytics import AnalyticsReport
from agent_memory.api.requests import new_id
from agent_memory.client.session import Session
from agent_memory.models import Decision, Pattern, PatternCondition, Severity, Signal


class MemoryClient(Session):
    """Typed methods over one MCP client session acting as one agent.

    Every method calls the tool of the same name with the same parameters (the tools' request
    models in :mod:`agent_memory.api.requests`) and returns the tool's result model; arguments
    left as ``None`` are not sent, so the server's defaults apply. Construct it with
    :meth:`stdio` or :meth:`from_client` (``timeout_s`` and ``retries`` as for
    :class:`~agent_memory.client.session.Session`).
    """

    # ------------------------------------------------------------------------------------------

    # ------------------------------------------------------------------------------------------
    # whole records (resources)
    # ------------------------------------------------------------------------------------------

    async def get_decision(self, decision_id: str) -> Decision:
        """The whole decision (``memory://decisions/{id}``); tool results carry summaries."""
        return Decision.model_validate(await self._resource(f"memory://decisions/{decision_id}"))

    async def get_signal(self, signal_id: str, from_agent: str | None = None) -> Signal:
        """The whole signal (``memory://signals/{id}``; ``from_agent``: the one that agent
        published, ``memory://agents/{from_agent}/signals/{id}``: ids are per source)."""
        if from_agent is not None:
            return Signal.model_validate(
                await self._resource(f"memory://agents/{from_agent}/signals/{signal_id}")
            )
        return Signal.model_validate(await self._resource(f"memory://signals/{signal_id}"))

    async def pattern_records(
        self, context: Mapping[str, Any] | None = None, *, decision_type: str | None = None
    ) -> list[Pattern]:
        """Whole active patterns visible to you (yours and shared), highest confidence first; with
        ``context``, only those that hold in it (as ``recall_patterns`` selects them)."""
        me = self.agent_id or (await self.get_state()).agent_id
        found = [Pattern.model_validate(p) for p in await self._resource(f"memory://agents/{me}/patterns")]
        ctx = dict(context) if context is not None else None
        return [
            p
            for p in found
            if (decision_type is None or p.decision_type in (None, decision_type))
            and (ctx is None or p.matches(ctx))
        ]

    # ------------------------------------------------------------------------------------------
    # decisions and short-term memory
    # ------------------------------------------------------------------------------------------

    async def log_decision(
        self,
        decision_type: str,
        *,
        context: Mapping[str, Any] | None = None,
        reasoning: Mapping[str, Any] | None = None,
        outcome: rq.OutcomeArg | Mapping[str, Any] | None = None,
        decision_id: str | None = None,
        parent_decision_id: str | None = None,
        parent_agent_id: str | None = None,
        patterns_applied: Sequence[str] | None = None,
        memory_influenced: bool | None = None,
    ) -> rs.LogDecisionResult:
        """Log a decision; keep ``result.decision_id`` for :meth:`record_outcome`. Without a
        ``decision_id`` the client makes one, so retrying this call never logs twice."""
        return await self._call(
            rs.LogDecisionResult,
            "log_decision",
            decision_type=decision_type,
            context=context,
            reasoning=reasoning,
            outcome=outcome.model_dump(exclude_none=True) if isinstance(outcome, BaseModel) else outcome,
            decision_id=decision_id or new_id("dec"),
            parent_decision_id=parent_decision_id,
            parent_agent_id=parent_agent_id,
            patterns_applied=list(patterns_applied) if patterns_applied else None,
            memory_influenced=memory_influenced,
        )

    async def record_outcome(
        self,
        decision_id: str,
        success: bool,
        *,
        quality_score: float | None = None,
        latency_ms: float | None = None,
        signals_generated: int | None = None,
        errors: Sequence[str] | None = None,
    ) -> rs.OutcomeResult:
        return await self._call(
            rs.OutcomeResult,
            "record_outcome",
            decision_id=decision_id,
            success=success,
            quality_score=quality_score,
            latency_ms=latency_ms,
            signals_generated=signals_generated,
            errors=list(errors) if errors else None,
        )

    async def recall_stm(
        self, decision_type: str | None = None, *, limit: int | None = None, cursor: str | None = None
    ) -> rs.ShortTermResult:
        return await self._call(
            rs.ShortTermResult, "recall_stm", decision_type=decision_type, limit=limit, cursor=cursor
        )

    async def store_stm(self, key: str, value: Any, *, ttl_minutes: int | None = None) -> rs.NoteResult:
        return await self._call(rs.NoteResult, "store_stm", key=key, value=value, ttl_minutes=ttl_minutes)

    async def search_decisions(
        self,
        *,
        decision_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        success: bool | None = None,
        agent_id: str | None = None,
        all_agents: bool | None = None,
        oldest_first: bool | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> rs.DecisionPage:
        return await self._call(
            rs.DecisionPage,
            "search_decisions",
            decision_type=decision_type,
            since=since,
            until=until,
            success=success,
            agent_id=agent_id,
            all_agents=all_agents,
            oldest_first=oldest_first,
            limit=limit,
            cursor=cursor,
        )

    # ------------------------------------------------------------------------------------------
    # patterns (long-term memory)
    # ------------------------------------------------------------------------------------------

    async def store_pattern(
        self,
        description: str,
        conditions: Sequence[PatternCondition | Mapping[str, Any]],
        *,
        outcomes: Mapping[str, Any],
        confidence: float,
        success_rate: float,
        sample_size: int,
        pattern_id: str | None = None,
        domain: str | None = None,
        decision_type: str | None = None,
        shared_with: Sequence[str] | None = None,
        expected_version: int | None = None,
    ) -> rs.PatternResult:
        return await self._call(
            rs.PatternResult,
            "store_pattern",
            description=description,
            conditions=[c.model_dump() if isinstance(c, BaseModel) else dict(c) for c in conditions],
            outcomes=outcomes,
            confidence=confidence,
            success_rate=success_rate,
            sample_size=sample_size,
            pattern_id=pattern_id,
            domain=domain,
            decision_type=decision_type,
            shared_with=list(shared_with) if shared_with is not None else None,
            expected_version=expected_version,
        )

    async def recall_patterns(
        self,
        context: Mapping[str, Any] | None = None,
        *,
        domain: str | None = None,
        decision_type: str | None = None,
        min_confidence: float | None = None,
        include_shared: bool | None = None,
        limit: int | None = None,
    ) -> rs.PatternList:
        """Active patterns (highest confidence first); with ``context``, only those that hold."""
        return await self._call(
            rs.PatternList,
            "recall_patterns",
            context=context,
            domain=domain,
            decision_type=decision_type,
            min_confidence=min_confidence,
            include_shared=include_shared,
            limit=limit,
        )

    async def share_pattern(self, pattern_id: str, shared_with: Sequence[str]) -> rs.PatternResult:
        # An empty list is meaningful here (make private), so it is always sent.
        return await self._call(
            rs.PatternResult, "share_pattern", pattern_id=pattern_id, shared_with=list(shared_with)
        )

    async def pattern_history(self, pattern_id: str, *, limit: int | None = None) -> rs.PatternList:
        return await self._call(rs.PatternList, "pattern_history", pattern_id=pattern_id, limit=limit)

    async def learn_patterns(
        self, *, decision_type: str | None = None, window: str | None = None, min_samples: int | None = None
    ) -> rs.LearnResult:
        return await self._call(
            rs.LearnResult,
            "learn_patterns",
            decision_type=decision_type,
            window=window,
            min_samples=min_samples,
        )

    # ------------------------------------------------------------------------------------------
    # signals
    # ------------------------------------------------------------------------------------------

    async def publish_signal(
        self,
        signal_type: str,
        data: Mapping[str, Any],
        target_agents: Sequence[str],
        confidence: float,
        *,
        severity: Severity | None = None,
        recommended_action: str | None = None,
        context: Mapping[str, Any] | None = None,
        ttl_hours: float | None = None,
        signal_id: str | None = None,
    ) -> rs.PublishResult:
        """Publish a signal. Without a ``signal_id`` the client makes one, so retrying this call
        never publishes twice."""
        return await self._call(
            rs.PublishResult,
            "publish_signal",
            signal_type=signal_type,
            data=data,
            target_agents=list(target_agents),
            confidence=confidence,
            severity=severity,
            recommended_action=recommended_action,
            context=context,
            ttl_hours=ttl_hours,
            signal_id=signal_id or new_id("sig"),
        )

    async def read_inbox(
        self,
        *,
        status: Literal["pending", "processed", "rejected"] | None = None,
        signal_type: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> rs.InboxPage:
        return await self._call(
            rs.InboxPage, "read_inbox", status=status, signal_type=signal_type, limit=limit, cursor=cursor
        )

    async def ack_signal(
        self,
        signal_id: str,
        status: Literal["processed", "rejected"],
        *,
        decision_id: str | None = None,
        from_agent: str | None = None,
    ) -> rs.AckResult:
        return await self._call(
            rs.AckResult,
            "ack_signal",
            signal_id=signal_id,
            status=status,
            decision_id=decision_id,
            from_agent=from_agent,
        )

    # ------------------------------------------------------------------------------------------
    # state and analytics
    # ------------------------------------------------------------------------------------------

    async def consume_budget(self, key: str, limit: int, window: str, *, cost: int = 1) -> rs.BudgetStatus:
        """Check and take ``cost`` units of a rate-limit budget (``cost=0`` only checks)."""
        return await self._call(
            rs.BudgetStatus, "consume_budget", key=key, limit=limit, window=window, cost=cost
        )

    async def get_state(
        self,
        *,
        section: Literal["current", "configuration", "source_metrics", "context_performance"] | None = None,
    ) -> rs.StateResult:
        return await self._call(rs.StateResult, "get_state", section=section)

    async def update_state(
        self,
        patch: Mapping[str, Any],
        expected_version: int,
        *,
        checkpoint: str | None = None,
        request_id: str | None = None,
    ) -> rs.StateWritten:
        """Raises ``VersionConflict`` (``current`` = the state as it is now) when
        ``expected_version`` is stale. Without a ``request_id`` the client makes one, so this
        call sent again after its answer was lost gets the first answer, not a conflict; pass
        your own to retry it yourself later (the same id with another patch is a conflict)."""
        return await self._call(
            rs.StateWritten,
            "update_state",
            patch=patch,
            expected_version=expected_version,
            checkpoint=checkpoint,
            request_id=request_id or new_id("upd"),
        )

    async def get_analytics(
        self,
        *,
        window: str | None = None,
        decision_type: str | None = None,
        agent_id: str | None = None,
        all_agents: bool | None = None,
        include_series: bool | None = None,
    ) -> AnalyticsReport:
        data = await self.call(
            "get_analytics",
            window=window,
            decision_type=decision_type,
            agent_id=agent_id,
            all_agents=all_agents,
            include_series=include_series,
        )
        # The tool leaves out what would repeat the totals and the series unless asked for.
        data.setdefault("series", [])
        data.setdefault("series_by_agent", [])
        data.setdefault("series_by_type", [])
        data.setdefault("by_agent", [])
        return AnalyticsReport.model_validate(data)
