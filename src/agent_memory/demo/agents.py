"""The three desk agents of the demo, plain programs on :class:`MemoryAwareAgent`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from agent_memory.client import DecisionPlan, MemoryAwareAgent, MemoryClient
from agent_memory.demo.market import ALERT_WHALES, TRUST
from agent_memory.models import InboxEntry, Pattern

# --------------------------------------------------------------------------------------------------
# The agents
# --------------------------------------------------------------------------------------------------


def trusted(patterns: Sequence[Pattern]) -> list[Pattern]:
    """The patterns an agent is willing to rely on: observed success rate of at least TRUST."""
    return [p for p in patterns if p.success_rate >= TRUST]


def rule_text(pattern: Pattern) -> str:
    return " and ".join(c.describe() for c in pattern.conditions)


def _refines(sharper: Pattern, broader: Pattern) -> bool:
    """``sharper`` has every condition of ``broader`` and more."""
    mine = {c.describe() for c in broader.conditions}
    return mine < {c.describe() for c in sharper.conditions}


class DeskAgent(MemoryAwareAgent):
    """What the three desk agents share: which recalled patterns they rely on.

    recall_patterns(context) returns every pattern that holds. An agent relies on the trusted
    ones, keeping only the sharpest: a broad pattern is set aside when the agent trusts a
    refinement of it (the same conditions and more). Where the refinement holds, the agent cites
    the refinement; where it does not ("bullish" but too few whales), the broad pattern's average
    over both cases says nothing useful.
    """

    def __init__(self, memory: MemoryClient) -> None:
        super().__init__(memory)
        self.known: list[Pattern] = []

    async def refresh_known(self) -> None:
        """Re-read every trusted pattern visible to this agent (its own and those shared with it)."""
        self.known = trusted(await self.memory.pattern_records())

    def relied_on(self, holding: Sequence[Pattern]) -> list[Pattern]:
        return [p for p in trusted(holding) if not any(_refines(q, p) for q in self.known)]


class MarketHunter(DeskAgent):
    """Scans each token on the watch list: one SOURCE_SELECTION decision per token, "alert" or
    "pass". Until it trusts a pattern it alerts on 3+ whales; then only where one holds."""

    decision_type = "SOURCE_SELECTION"

    async def decide(
        self, context: dict[str, Any], patterns: list[Pattern], signals: list[InboxEntry]
    ) -> DecisionPlan:
        rely_on = self.relied_on(patterns)
        whales = context["whale_count"]
        if rely_on:
            verdict, why = "alert", f"learned pattern holds: {rule_text(rely_on[0])}"
        elif self.known:
            verdict, why = "pass", "no trusted learned pattern holds here"
        elif whales >= ALERT_WHALES:
            verdict, why = "alert", f"rule of thumb: {ALERT_WHALES}+ whales"
        else:
            verdict, why = "pass", f"fewer than {ALERT_WHALES} whales"
        return DecisionPlan(
            "SOURCE_SELECTION",
            context=context,
            reasoning={"verdict": verdict, "why": why},
            patterns_applied=[p.pattern_id for p in rely_on],
        )


class RiskManager(DeskAgent):
    """Assesses the hunter's alert: a RISK_ASSESSMENT chained to the hunter's decision. Approves
    when a trusted (shared) pattern holds; otherwise by a conservative rule of thumb."""

    async def decide(
        self, context: dict[str, Any], patterns: list[Pattern], signals: list[InboxEntry]
    ) -> DecisionPlan | None:
        alert = next((e.signal for e in signals if e.signal.signal_type == "WHALE_ACTIVITY"), None)
        if alert is None:
            return None
        rely_on = self.relied_on(patterns)
        whales = context["whale_count"]
        calm = context["market"]["volatility"] == "low"
        if rely_on:
            approve, why = True, f"shared pattern holds: {rule_text(rely_on[0])}"
        else:
            approve = whales >= 6 or (whales >= 4 and calm)
            why = "rule of thumb: 6+ whales, or 4+ in a calm market"
        return DecisionPlan(
            "RISK_ASSESSMENT",
            context=context,
            reasoning={"verdict": "approve" if approve else "reject", "why": why},
            patterns_applied=[p.pattern_id for p in rely_on],
            parent_decision_id=alert.data.get("decision_id"),
            parent_agent_id=alert.source_agent if alert.data.get("decision_id") else None,
            signals_used=[alert.signal_id],
        )


class TradeExecutor(DeskAgent):
    """Executes approved trades (TRADE_EXECUTION), at double size when a trusted pattern holds;
    stands down on a rejection."""

    async def decide(
        self, context: dict[str, Any], patterns: list[Pattern], signals: list[InboxEntry]
    ) -> DecisionPlan | None:
        order = next((e.signal for e in signals if e.signal.signal_type == "TRADE_APPROVED"), None)
        if order is None:
            return None
        rely_on = self.relied_on(patterns)
        units = 2 if rely_on else 1
        return DecisionPlan(
            "TRADE_EXECUTION",
            context=context,
            reasoning={"action": "buy", "units": units, "why": "approved by risk-manager"},
            patterns_applied=[p.pattern_id for p in rely_on],
            parent_decision_id=order.data.get("decision_id"),
            parent_agent_id=order.source_agent if order.data.get("decision_id") else None,
            signals_used=[order.signal_id],
        )

    def ack_status(self, entry: InboxEntry, plan: DecisionPlan | None) -> Literal["processed", "rejected"]:
        if entry.signal.signal_type == "TRADE_REJECTED":
            return "processed"  # standing down is acting on it
        return super().ack_status(entry, plan)
