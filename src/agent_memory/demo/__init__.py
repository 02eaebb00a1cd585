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
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from mcp.shared.exceptions import MCPError

from agent_memory.client import MemoryClient, MemoryToolError
from agent_memory.config import Settings
from agent_memory.demo.agents import MarketHunter, RiskManager, TradeExecutor, _refines, rule_text, trusted
from agent_memory.demo.market import (
    AGENTS,
    ALERT_WHALES,
    EXECUTOR,
    HIDDEN_RULE,
    HUNTER,
    LEARN_EVERY,
    LEARN_FROM,
    MIN_SAMPLES,
    RISK,
    TOKENS,
    Market,
    Tick,
    TokenTick,
    hidden_pump_probability,
)
from agent_memory.memory.analytics import AnalyticsReport
from agent_memory.models import Pattern

__all__ = ["HIDDEN_RULE", "LEARN_FROM", "Market", "Tick", "hidden_pump_probability", "run_demo"]


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


def server_env(settings: Settings) -> dict[str, str]:
    """The environment of the demo's servers: the configured backend and its settings (the SDK
    passes only a few safe variables on to a server it launches)."""
    env = {k: v for k, v in os.environ.items() if k.startswith(("AGENT_MEMORY_", "AWS_"))}
    env["AGENT_MEMORY_BACKEND"] = settings.backend
    if settings.backend == "sqlite":
        env["AGENT_MEMORY_SQLITE_PATH"] = str(settings.sqlite_path.absolute())
    return env


@asynccontextmanager
async def open_sessions(names: Sequence[str], settings: Settings) -> AsyncIterator[dict[str, MemoryClient]]:
    """One ``agent-memory serve`` subprocess per agent, all on the configured store, started
    concurrently.

    Each session lives in its own task (an MCP client must be closed by the task that opened it);
    the sessions themselves may be used from any task.
    """
    sessions: dict[str, MemoryClient] = {}
    stop = asyncio.Event()
    env = server_env(settings)

    async def hold(name: str, ready: asyncio.Event) -> None:
        async with MemoryClient.stdio(name, env=env) as client:
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


def store_words(settings: Settings, origin: str) -> str:
    """Which store the demo uses and what chose it, as the user should read it."""
    if settings.backend == "sqlite":
        return f"{shown(settings.sqlite_path)} (embedded SQLite, from {origin})"
    from agent_memory.cli.serve import where

    return where(settings) + " (from AGENT_MEMORY_BACKEND / --backend)"


@dataclass
class Desk:
    hunter: MarketHunter
    risk: RiskManager
    executor: TradeExecutor
    shared: set[str] = field(default_factory=set)
    trades: int = 0
    pnl_pct: float = 0.0


async def run_demo(
    settings: Settings, *, store_origin: str = "the settings", cycles: int = 40, seed: int = 7
) -> int:
    """Run the trading-desk demo on the store ``settings`` name; return the process exit code.

    ``store_origin`` says which option or variable chose the store, so messages name it.
    """
    from agent_memory.storage.factory import open_store

    if cycles < 1:
        print("agent-memory demo: --cycles must be at least 1", file=sys.stderr)
        return 2
    if settings.backend == "sqlite":
        store = settings.sqlite_path
        if store.is_dir():
            print(
                f"agent-memory demo: {store_origin} {shown(store)} is a folder: give a file path",
                file=sys.stderr,
            )
            return 2
        try:
            store.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(
                f"agent-memory demo: cannot create the folder of {store_origin} {shown(store)}: "
                f"{exc.strerror}",
                file=sys.stderr,
            )
            return 1
    # Open the store here first: a store the servers cannot use fails now, in our own words,
    # rather than as three servers stopping.
    async with open_store(settings):
        pass
    began = time.monotonic()
    print("agent-memory demo: a trading desk of three agents sharing one memory")
    print(f"  {HUNTER}, {RISK} and {EXECUTOR} each talk MCP over stdio to their own")
    print(f"  `agent-memory serve`; the three servers share one store: {store_words(settings, store_origin)}")
    print(f"  Each cycle the hunter scans {len(TOKENS)} tokens (a SOURCE_SELECTION decision each) and may")
    print("  alert the risk-manager, who approves or rejects; the executor trades what is approved.")
    print("  Tokens pump by a hidden rule the agents are not told: watch the hunter learn it from")
    print(f"  outcomes (learn_patterns), share it, and the desk use it. Seed {seed}, {cycles} cycles.")
    try:
        async with open_sessions(AGENTS, settings) as sessions:
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
    if settings.backend == "sqlite":
        path = shown(settings.sqlite_path)
        print(f"\nthe memory is kept in {path}; inspect it with:")
        print(f"  agent-memory --sqlite-path {path} analytics")
        print(f"  agent-memory --sqlite-path {path} export")
    else:
        print("\nthe memory is kept in the DynamoDB tables; inspect it with:")
        print("  agent-memory --backend dynamodb analytics")
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
