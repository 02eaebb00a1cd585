"""``agent-memory demo``: a scripted trading desk of three agents that share one memory.

market-hunter, risk-manager and trade-executor are ordinary programs built on
:class:`agent_memory.client.MemoryAwareAgent`. Each is a real MCP client with its own
``agent-memory serve`` subprocess over stdio, and the three servers share one SQLite file, exactly
as three agents of a team would be deployed.

The market is simulated from a seed. Each cycle has a trend and a volatility, and the hunter scans a
watch list of tokens, each showing some number of whales. A hidden rule decides which tokens pump:
most of them (85%) when the trend is bullish and at least 5 whales are in, otherwise 30%. The agents
are never told this rule. The hunter logs every scan and its outcome, and from cycle 15 it runs
``learn_patterns`` every 5 cycles. Once the memory hands it a rule it trusts, it shares that pattern
with its team, cites it in ``patterns_applied`` and alerts only where it holds; the risk manager and
the executor recall the shared pattern and cite it too. The closing analytics show what that did to
each agent's success rate.

The decisions and the printed story depend only on the seed. The servers stamp real time on the
records, so ids and timestamps differ from run to run.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from mcp.shared.exceptions import MCPError

from agent_memory.client import DecisionPlan, MemoryAwareAgent, MemoryClient, MemoryToolError
from agent_memory.memory.analytics import AnalyticsReport
from agent_memory.models import InboxEntry, Pattern

__all__ = ["HIDDEN_RULE", "Market", "run_demo"]

HUNTER, RISK, EXECUTOR = "market-hunter", "risk-manager", "trade-executor"
AGENTS = (HUNTER, RISK, EXECUTOR)

TOKENS = ("ORCA", "LYNX", "KOI", "IBIS", "YAK")
"""The hunter's watch list (made-up tickers). Five scans a cycle give the learner enough outcomes:
it keeps a two-condition rule only if it beats each condition alone at a 5% false-discovery rate,
which with these odds takes about 75-100 decisions (one scan a cycle would need 100+ cycles)."""
TREND_BLOCK = ("bullish", "bullish", "bearish", "sideways")
"""Trends come in shuffled blocks of four, so every stretch of cycles holds bull and bear markets."""
WHALE_WEIGHTS = (2, 2, 3, 3, 3, 5, 3, 3, 3, 2, 1)
"""Relative odds of 0..10 whales on a token: about half the scans show 5 or more."""
PUMP_WHEN_RULE_HOLDS = 0.85
PUMP_OTHERWISE = 0.30
HIDDEN_RULE = (
    f"a token pumps {PUMP_WHEN_RULE_HOLDS:.0%} of the time when the trend is bullish and whale_count >= 5, "
    f"else {PUMP_OTHERWISE:.0%}"
)

ALERT_WHALES = 3
"""Before it has learned anything, the hunter alerts on any token with this many whales."""
LEARN_FROM, LEARN_EVERY = 15, 5
"""The hunter consolidates (learn_patterns) at cycle 15, then every 5 cycles."""
MIN_SAMPLES = 15
TRUST = 0.75
"""An agent relies on a matching pattern whose observed success rate is at least this."""


def hidden_pump_probability(trend: str, whale_count: int) -> float:
    return PUMP_WHEN_RULE_HOLDS if trend == "bullish" and whale_count >= 5 else PUMP_OTHERWISE


# --------------------------------------------------------------------------------------------------
# The simulated market
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenTick:
    token: str
    whale_count: int
    pumped: bool
    move_pct: float


@dataclass(frozen=True)
class Tick:
    """One cycle of the market. Everything is drawn up front, so the agents' choices never change
    the market that follows them."""

    cycle: int
    trend: str
    volatility: str
    tokens: tuple[TokenTick, ...]
    fill_latency_ms: float

    def context(self, token: TokenTick) -> dict[str, Any]:
        """What the hunter observes about one token: the context its decision is logged with."""
        return {
            "token": token.token,
            "market": {"trend": self.trend, "volatility": self.volatility},
            "whale_count": token.whale_count,
        }

    def token(self, name: str) -> TokenTick:
        return next(t for t in self.tokens if t.token == name)


class Market:
    """A reproducible market: ``Market(seed).tick(cycle)`` for cycles 1, 2, 3, ... in order."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self._trends: list[str] = []

    def tick(self, cycle: int) -> Tick:
        rng = self.rng
        if not self._trends:
            block = list(TREND_BLOCK)
            rng.shuffle(block)
            self._trends = block
        trend = self._trends.pop()
        volatility = rng.choice(("low", "high"))
        tokens = []
        for name in TOKENS:
            whales = rng.choices(range(len(WHALE_WEIGHTS)), weights=WHALE_WEIGHTS)[0]
            pumped = rng.random() < hidden_pump_probability(trend, whales)
            move = rng.uniform(6.0, 25.0) if pumped else rng.uniform(-9.0, -0.5)
            tokens.append(TokenTick(name, whales, pumped, round(move, 1)))
        return Tick(cycle, trend, volatility, tuple(tokens), round(rng.uniform(40.0, 400.0), 1))


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
            signals_used=[order.signal_id],
        )

    def ack_status(self, entry: InboxEntry, plan: DecisionPlan | None) -> Literal["processed", "rejected"]:
        if entry.signal.signal_type == "TRADE_REJECTED":
            return "processed"  # standing down is acting on it
        return super().ack_status(entry, plan)


# --------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------


def say(who: str, text: str) -> None:
    print(f"  {who:<15} {text}", flush=True)


def shown(path: Path) -> str:
    """The store path as the user should type it: relative to the working directory if inside it."""
    try:
        return "./" + path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def analytics_table(reports: dict[str, AnalyticsReport]) -> str:
    headers = ["agent", "decisions", "success", "memory-influenced", "others"]
    rows = [headers]
    for agent, r in reports.items():
        u = r.memory_uplift
        rows.append(
            [
                agent,
                str(r.totals.decisions),
                pct(r.totals.success_rate),
                f"{u.with_memory_decisions} at {pct(u.with_memory_rate)}",
                f"{u.without_memory_decisions} at {pct(u.without_memory_rate)}",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))]
        lines.append("  " + "  ".join(cells))
        if n == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


def default_store() -> Path:
    return Path(".data") / f"demo-{datetime.now().strftime('%Y%m%d-%H%M%S')}.db"


@asynccontextmanager
async def open_sessions(names: Sequence[str], store: Path) -> AsyncIterator[dict[str, MemoryClient]]:
    """One ``agent-memory serve`` subprocess per agent, all on ``store``, started concurrently.

    Each session lives in its own task (an MCP client must be closed by the task that opened it);
    the sessions themselves may be used from any task.
    """
    sessions: dict[str, MemoryClient] = {}
    stop = asyncio.Event()
    env = {"AGENT_MEMORY_BACKEND": "sqlite"}

    async def hold(name: str, ready: asyncio.Event) -> None:
        async with MemoryClient.stdio(name, sqlite_path=store, env=env) as client:
            sessions[name] = client
            ready.set()
            await stop.wait()

    async with asyncio.TaskGroup() as group:
        started = {name: asyncio.Event() for name in names}
        for name in names:
            group.create_task(hold(name, started[name]))
        try:
            await asyncio.gather(*(event.wait() for event in started.values()))
            yield {name: sessions[name] for name in names}
        finally:
            stop.set()


@dataclass
class Desk:
    hunter: MarketHunter
    risk: RiskManager
    executor: TradeExecutor
    shared: set[str] = field(default_factory=set)
    trades: int = 0
    pnl_pct: float = 0.0


async def run_demo(store: Path | None = None, cycles: int = 40, seed: int = 7) -> int:
    """Run the trading-desk demo; return the process exit code (0 on success)."""
    if cycles < 1:
        print("agent-memory demo: --cycles must be at least 1", file=sys.stderr)
        return 2
    store = store if store is not None else default_store()
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"agent-memory demo: cannot create the folder for {shown(store)}: {exc}", file=sys.stderr)
        return 1
    began = time.monotonic()
    print("agent-memory demo: a trading desk of three agents sharing one memory")
    print(f"  {HUNTER}, {RISK} and {EXECUTOR} each talk MCP over stdio to their own")
    print(f"  `agent-memory serve`; the three servers share one store: {shown(store)}")
    print(f"  Each cycle the hunter scans {len(TOKENS)} tokens (a SOURCE_SELECTION decision each) and may")
    print("  alert the risk-manager, who approves or rejects; the executor trades what is approved.")
    print("  Tokens pump by a hidden rule the agents are not told: watch the hunter learn it from")
    print(f"  outcomes (learn_patterns), share it, and the desk use it. Seed {seed}, {cycles} cycles.")
    try:
        async with open_sessions(AGENTS, store) as sessions:
            print(f"  servers ready in {time.monotonic() - began:.1f} s\n", flush=True)
            desk = Desk(
                MarketHunter(sessions[HUNTER]), RiskManager(sessions[RISK]), TradeExecutor(sessions[EXECUTOR])
            )
            market = Market(seed)
            for cycle in range(1, cycles + 1):
                await run_cycle(desk, market.tick(cycle))
            await finish(desk, sessions, cycles)
    except Exception as exc:
        # The sessions run in a task group: failures arrive wrapped in an ExceptionGroup.
        causes = leaves(exc)
        if not all(isinstance(c, MemoryToolError | MCPError | OSError) for c in causes):
            raise
        for cause in dict.fromkeys(str(c) for c in causes):
            print(f"agent-memory demo: {cause}", file=sys.stderr)
        if any(isinstance(c, MCPError) for c in causes):
            print("agent-memory demo: a memory server stopped; its own message is above", file=sys.stderr)
        return 1
    print(f"\nthe memory is kept in {shown(store)}; inspect it with:")
    print(f"  AGENT_MEMORY_SQLITE_PATH={shown(store)} agent-memory analytics")
    print(f"  AGENT_MEMORY_SQLITE_PATH={shown(store)} agent-memory export")
    print(f"finished in {time.monotonic() - began:.1f} s")
    return 0


async def run_cycle(desk: Desk, tick: Tick) -> None:
    """One cycle: the hunter scans, at most one alert travels hunter -> risk -> executor as
    signals, then the market answers and every decision gets its outcome."""
    whales = " · ".join(f"{t.token} {t.whale_count}" for t in tick.tokens)
    print(f"cycle {tick.cycle:>2}  {tick.trend}, {tick.volatility} volatility   whales: {whales}")
    scans, alert = await hunter_turn(desk, tick)
    assessment = await risk_turn(desk, alert) if alert else None
    trade = await executor_turn(desk, alert) if alert and assessment else None
    await settle(desk, tick, scans, alert, assessment, trade)
    if tick.cycle >= LEARN_FROM and (tick.cycle - LEARN_FROM) % LEARN_EVERY == 0:
        await learn(desk)
    print(flush=True)


async def hunter_turn(desk: Desk, tick: Tick) -> tuple[dict[str, str | None], TokenTick | None]:
    """One SOURCE_SELECTION decision per token; then at most one alert (the desk takes one trade
    a cycle): the alert-worthy token with the most whales. Returns the decision id per token."""
    hunter = desk.hunter
    await hunter.begin_cycle()
    scans = {token.token: await hunter.act(tick.context(token)) for token in tick.tokens}
    worthy = [
        tick.token(name)
        for name, scan in scans.items()
        if scan.plan is not None and scan.plan.reasoning["verdict"] == "alert"
    ]
    ids = {name: scan.decision_id for name, scan in scans.items()}
    if not worthy:
        busiest = max(tick.tokens, key=lambda t: t.whale_count)
        if not hunter.known:
            say(HUNTER, f"no token shows {ALERT_WHALES}+ whales: no alert")
        elif busiest.whale_count >= ALERT_WHALES:
            say(
                HUNTER,
                f"{busiest.whale_count} whales on {busiest.token}, but no learned pattern holds: stays quiet",
            )
        else:
            say(HUNTER, "nothing worth an alert")
        return ids, None
    alert = max(worthy, key=lambda t: t.whale_count)
    plan = scans[alert.token].plan
    cited = plan is not None and bool(plan.patterns_applied)
    await hunter.memory.publish_signal(
        "WHALE_ACTIVITY",
        {"token": alert.token, "whale_count": alert.whale_count, "decision_id": ids[alert.token]},
        [RISK],
        confidence=0.8 if cited else 0.5,
        severity="high" if cited else "medium",
        recommended_action="ASSESS_ENTRY",
        context=tick.context(alert),
    )
    because = "a learned pattern holds" if cited else f"rule of thumb: {ALERT_WHALES}+ whales"
    say(HUNTER, f"alerts risk-manager: {alert.whale_count} whales on {alert.token} ({because})")
    return ids, alert


async def risk_turn(desk: Desk, alert: TokenTick) -> tuple[str, bool] | None:
    """The risk manager reads the alert from its inbox, logs its assessment (acking the alert with
    it) and tells the executor. Returns (decision id, approved)."""
    risk = desk.risk
    signals = await risk.begin_cycle()
    if not signals:
        return None
    context = dict(signals[0].signal.context)
    done = await risk.act(context, signals)
    if done.plan is None or done.decision_id is None:
        return None
    approved = done.plan.reasoning["verdict"] == "approve"
    why = "shared pattern holds" if done.plan.patterns_applied else done.plan.reasoning["why"]
    say(RISK, f"{'approves' if approved else 'rejects'} {alert.token} ({why})")
    await risk.memory.publish_signal(
        "TRADE_APPROVED" if approved else "TRADE_REJECTED",
        {"token": alert.token, "decision_id": done.decision_id},
        [EXECUTOR],
        confidence=0.8 if done.plan.patterns_applied else 0.6,
        context=context,
        recommended_action="BUY" if approved else "STAND_DOWN",
    )
    return done.decision_id, approved


async def executor_turn(desk: Desk, alert: TokenTick) -> str | None:
    """The executor reads the verdict: buys (a TRADE_EXECUTION decision) or stands down."""
    executor = desk.executor
    orders = await executor.begin_cycle()
    if not orders:
        return None
    done = await executor.act(dict(orders[0].signal.context), orders)
    if done.plan is None:
        say(EXECUTOR, "stands down")
        return None
    units = done.plan.reasoning["units"]
    extra = " (double size: shared pattern holds)" if units == 2 else ""
    say(EXECUTOR, f"buys {units} unit{'s' if units > 1 else ''} of {alert.token}{extra}")
    return done.decision_id


async def settle(
    desk: Desk,
    tick: Tick,
    scans: dict[str, str | None],
    alert: TokenTick | None,
    assessment: tuple[str, bool] | None,
    trade: str | None,
) -> None:
    """The market answers: every decision of the cycle gets its outcome."""
    for token in tick.tokens:
        scan_id = scans[token.token]
        if scan_id is not None:
            await desk.hunter.memory.record_outcome(scan_id, token.pumped)
    result = []
    if alert is not None and assessment is not None:
        decision_id, approved = assessment
        await desk.risk.memory.record_outcome(decision_id, approved == alert.pumped)
        if trade is not None:
            await record_trade(desk, trade, tick, alert)
            verdict = "trade won" if alert.pumped else "trade lost"
        else:
            verdict = "a missed pump" if alert.pumped else "loss avoided"
        result.append(f"{alert.token} {alert.move_pct:+.1f}%: {verdict}")
    pumped = [t.token for t in tick.tokens if t.pumped]
    result.append(f"pumped: {', '.join(pumped) if pumped else 'none'}")
    say("market", "; ".join(result))


async def record_trade(desk: Desk, decision_id: str, tick: Tick, token: TokenTick) -> None:
    """The executor's outcome, and its running P&L kept in its versioned state."""
    executor = desk.executor.memory
    await executor.record_outcome(
        decision_id,
        token.pumped,
        quality_score=max(0.0, min(1.0, token.move_pct / 25.0)),
        latency_ms=tick.fill_latency_ms,
    )
    units = int((await executor.get_decision(decision_id)).reasoning.get("units", 1))
    desk.trades += 1
    desk.pnl_pct += units * token.move_pct
    state = await executor.get_state()
    await executor.update_state(
        {"current": {"trades": desk.trades, "pnl_pct": round(desk.pnl_pct, 1), "last_token": token.token}},
        state.version,
    )


async def learn(desk: Desk) -> None:
    """Consolidation: the hunter turns its scans' outcomes into patterns and shares the sharpest
    ones it trusts with the team; then every agent re-reads the trusted patterns it can see."""
    memory = desk.hunter.memory
    result = await memory.learn_patterns(
        decision_type="SOURCE_SELECTION", window="24h", min_samples=MIN_SAMPLES
    )
    known = trusted(await memory.pattern_records(decision_type="SOURCE_SELECTION"))
    sharpest = [p for p in known if not any(_refines(q, p) for q in known)]
    head = f"learn_patterns over {result.decisions_examined} scans"
    fresh = [p for p in sharpest if p.pattern_id not in desk.shared]
    if not sharpest:
        weaker = result.created + result.updated
        extra = f" ({weaker} weaker pattern{'s' if weaker != 1 else ''} kept)" if weaker else ""
        say(HUNTER, f"{head}: no rule it can trust yet{extra}")
    elif not fresh and len(sharpest) == 1:
        say(HUNTER, f"{head}: rule v{sharpest[0].version}, {stats_text(sharpest[0])}")
    elif not fresh:
        say(HUNTER, f"{head}: its {len(sharpest)} rules now")
        for pattern in sharpest:
            say("", f"{rule_text(pattern)} (v{pattern.version}): {stats_text(pattern)}")
    else:
        found = "a rule" if len(fresh) == 1 else f"{len(fresh)} rules"
        say(HUNTER, f"{head} ({pct(result.baseline_success_rate)} pumped) found {found} it trusts:")
        for pattern in fresh:
            say("", f"{rule_text(pattern)}: {stats_text(pattern)}")
            await memory.share_pattern(pattern.pattern_id, [RISK, EXECUTOR])
            desk.shared.add(pattern.pattern_id)
        it = "it" if len(fresh) == 1 else "them"
        if len(desk.shared) == len(fresh):
            say(HUNTER, f"shares {it} with the desk; from now on it alerts only where a trusted rule holds")
        else:
            say(HUNTER, f"shares {it} with the desk too")
    for agent in (desk.hunter, desk.risk, desk.executor):
        await agent.refresh_known()


def stats_text(pattern: Pattern) -> str:
    return f"{pattern.success_rate:.0%} of {pattern.sample_size} pumped, confidence {pattern.confidence:.2f}"


async def finish(desk: Desk, sessions: dict[str, MemoryClient], cycles: int) -> None:
    reports = {name: await client.get_analytics(window="24h") for name, client in sessions.items()}
    print(f"after {cycles} cycles, get_analytics of each agent:")
    print(analytics_table(reports))
    print("  success: scan -> the token pumped; assessment -> the right call; trade -> won.")
    print("  memory-influenced: decisions that cited a learned pattern (patterns_applied).")
    print()
    recalled = await desk.hunter.memory.pattern_records(decision_type="SOURCE_SELECTION")
    learned = [p for p in trusted(recalled) if p.pattern_id in desk.shared]
    if not learned:
        print(f"the hunter found no rule it could trust in {cycles} cycles (try more cycles)")
    for pattern in learned:
        fb = pattern.feedback
        print(f"learned pattern {pattern.pattern_id} (v{pattern.version}, by {pattern.agent_id}, shared):")
        print(f"  {rule_text(pattern)}")
        applied = (
            f"applied {fb.applied_count} times, {pct(fb.applied_success_rate)} successful"
            if fb.applied_count
            else "not applied yet"
        )
        print(
            f"  pumped {pattern.success_rate:.0%} of the time (n={pattern.sample_size}), "
            f"confidence {pattern.confidence:.2f}; {applied}"
        )
    print(f"the hidden rule, never shown to the agents:\n  {HIDDEN_RULE}")
    state = await desk.executor.memory.get_state()
    if state.version:
        current = state.current
        print(
            f"trade-executor state (v{state.version}): {current.get('trades')} trades, "
            f"P&L {current.get('pnl_pct', 0):+.1f}% of a one-unit stake"
        )
