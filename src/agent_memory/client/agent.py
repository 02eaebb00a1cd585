""":class:`MemoryAwareAgent`: the cycle the server's instructions ask of an agent, over a
:class:`~agent_memory.client.memory.MemoryClient`; subclasses write only ``decide``."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agent_memory.api import results as rs
from agent_memory.client.memory import MemoryClient
from agent_memory.models import Delivery, InboxEntry, Pattern


@dataclass
class DecisionPlan:
    """What :meth:`MemoryAwareAgent.decide` chose: the decision to log and how to treat signals."""

    decision_type: str
    context: dict[str, Any] = field(default_factory=dict)
    reasoning: dict[str, Any] = field(default_factory=dict)
    patterns_applied: list[str] = field(default_factory=list)
    """pattern_ids of the recalled patterns that shaped the decision (their feedback is tracked)."""
    parent_decision_id: str | None = None
    parent_agent_id: str | None = None
    """Author of the parent decision when it is another agent's (ids are per author)."""
    signals_used: list[str] | None = None
    """signal_ids acted on (acknowledged ``processed``); the other signals read this cycle are
    acknowledged ``rejected``. ``None``: every signal read counts as acted on."""


@dataclass
class CycleResult:
    """What one :meth:`MemoryAwareAgent.run_cycle` saw and did."""

    short_term: rs.ShortTermResult | None
    """What :meth:`MemoryAwareAgent.begin_cycle` recalled (None if it was not called)."""
    signals: list[InboxEntry]
    patterns: list[Pattern]
    plan: DecisionPlan | None
    decision: rs.LogDecisionResult | None
    acks: list[rs.AckResult]

    @property
    def decision_id(self) -> str | None:
        return self.decision.decision_id if self.decision else None


class MemoryAwareAgent(abc.ABC):
    """Base class of an agent that consults its memory before each decision.

    One :meth:`run_cycle` does what the server's instructions ask of an agent:

    1. ``recall_stm``: recent decisions, notes, pending signal count (kept in ``self.short_term``);
    2. ``read_inbox``: pending signals from other agents;
    3. ``recall_patterns(context)``: the patterns that hold in the current context;
    4. :meth:`decide` (yours): a :class:`DecisionPlan`, or ``None`` to decide nothing;
    5. ``log_decision`` with the plan's ``patterns_applied``;
    6. ``ack_signal`` for each signal read, linked to the logged decision (see :meth:`ack_status`).

    ``run_cycle`` is :meth:`begin_cycle` (steps 1-2) then :meth:`act` (steps 3-6); an agent that
    makes several decisions a cycle calls ``begin_cycle`` once and ``act`` per decision. Outcomes
    come later (the world has to answer first): call ``self.memory.record_outcome``.
    """

    decision_type: str | None = None
    """If set, recall_stm and recall_patterns are narrowed to this decision type."""

    def __init__(self, memory: MemoryClient) -> None:
        self.memory = memory
        self.short_term: rs.ShortTermResult | None = None

    @abc.abstractmethod
    async def decide(
        self, context: dict[str, Any], patterns: list[Pattern], signals: list[InboxEntry]
    ) -> DecisionPlan | None:
        """Decide from the current context, the patterns that hold in it, and pending signals."""

    def ack_status(self, entry: InboxEntry, plan: DecisionPlan | None) -> Literal["processed", "rejected"]:
        """How to acknowledge a signal read this cycle: ``processed`` if the plan acted on it,
        else ``rejected`` (ignored). Override for signals handled without a decision."""
        if plan is not None and (plan.signals_used is None or entry.signal.signal_id in plan.signals_used):
            return "processed"
        return "rejected"

    async def begin_cycle(self, *, inbox_limit: int = 10) -> list[InboxEntry]:
        """Recall short-term memory (into ``self.short_term``) and return the pending signals,
        whole (the inbox lists summaries; each signal is then read in full)."""
        self.short_term = await self.memory.recall_stm(self.decision_type)
        summaries = (await self.memory.read_inbox(limit=inbox_limit)).entries
        if summaries and self.memory.agent_id is None:
            self.memory.agent_id = (await self.memory.get_state()).agent_id
        me = self.memory.agent_id or ""
        entries = []
        for summary in summaries:
            signal = await self.memory.get_signal(summary.signal_id, summary.source_agent)
            entries.append(InboxEntry(agent_id=me, signal=signal, delivery=Delivery()))
        return entries

    async def act(self, context: Mapping[str, Any], signals: Sequence[InboxEntry] = ()) -> CycleResult:
        """Recall the patterns for ``context``, decide, log the decision, acknowledge ``signals``."""
        ctx = dict(context)
        patterns = await self.memory.pattern_records(ctx, decision_type=self.decision_type)
        plan = await self.decide(ctx, patterns, list(signals))
        logged = None
        if plan is not None:
            logged = await self.memory.log_decision(
                plan.decision_type,
                context=plan.context or ctx,
                reasoning=plan.reasoning,
                parent_decision_id=plan.parent_decision_id,
                parent_agent_id=plan.parent_agent_id,
                patterns_applied=plan.patterns_applied,
            )
        acks = []
        for entry in signals:
            status = self.ack_status(entry, plan)
            linked = logged.decision_id if logged is not None and status == "processed" else None
            acks.append(
                await self.memory.ack_signal(
                    entry.signal.signal_id, status, decision_id=linked, from_agent=entry.signal.source_agent
                )
            )
        return CycleResult(self.short_term, list(signals), patterns, plan, logged, acks)

    async def run_cycle(self, context: Mapping[str, Any], *, inbox_limit: int = 10) -> CycleResult:
        """One full cycle: :meth:`begin_cycle` then :meth:`act` on every signal read."""
        signals = await self.begin_cycle(inbox_limit=inbox_limit)
        return await self.act(context, signals)
