"""Analytics against ground truth, on every backend (the ``engine`` fixture).

A seeded generator produces a stream of decisions (several agents and types, outcomes with
quality and latency, some memory-influenced, some applying patterns, outcomes recorded inline or
later) and signals (acknowledged after known lags, or left to expire) spread over several hours
and days. It is played through the real write path (:class:`Memory` on :class:`MemoryStore`) with
a fake clock, and every figure of the report is compared with a recomputation from the raw
generated data: counts, rates, means and Wilson/Newcombe bounds exactly; latency and lag
percentiles within the histogram's stated relative error of the exact nearest-rank percentile.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest

from agent_memory import histogram
from agent_memory.config import Settings
from agent_memory.errors import AccessDenied, InvalidInput
from agent_memory.memory.analytics import (
    HOURLY_WINDOW_LIMIT,
    Analytics,
    AnalyticsReport,
    DecisionFigures,
    Interval,
    Span,
    quantiles,
)
from agent_memory.memory.costs import UsageLedger, cost_rows
from agent_memory.memory.identity import Caller
from agent_memory.memory.service import Memory
from agent_memory.memory.stats import newcombe_difference_interval, wilson_interval
from agent_memory.models import Outcome
from agent_memory.storage import keys, usage
from agent_memory.storage.engine import ItemEngine
from agent_memory.storage.sqlite import SqliteEngine
from agent_memory.storage.store import MemoryStore
from agent_memory.storage.usage import Usage
from tests.support import FakeClock, settings_for

AGENTS = ("alpha", "beta", "gamma")
TYPES = ("entry", "exit", "sizing")
OBSERVER = Caller("dashboard", "observer")
REL = 1e-9
# Times near the wall clock, not in the past: the SQLite engine purges items whose ``ttl`` has
# passed in real time, so a fake clock weeks behind would see short-lived signals vanish. Anchored
# to a UTC midnight so that hour and day boundaries fall the same way on every run.
T0 = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(days=2)


# --------------------------------------------------------------------------------------------------
# ground truth
# --------------------------------------------------------------------------------------------------


@dataclass
class GenPattern:
    key: str
    agent: str
    decision_type: str | None
    pattern_id: str = ""


@dataclass
class GenDecision:
    key: str
    agent: str
    decision_type: str
    created: datetime
    memory: bool
    pattern: GenPattern | None
    outcome: Outcome
    outcome_at: datetime | None
    """None: logged with the outcome inline; else when record_outcome is called."""
    decision_id: str = ""
    recorded: bool = False


@dataclass
class GenSignal:
    key: str
    source: str
    targets: list[str]
    created: datetime
    ttl_hours: float
    acks: dict[str, tuple[str, datetime]]
    signal_id: str = ""
    done: dict[str, tuple[str, datetime]] = field(default_factory=dict)

    @property
    def expires(self) -> datetime:
        return self.created + timedelta(hours=self.ttl_hours)


@dataclass
class World:
    start: datetime
    end: datetime
    patterns: list[GenPattern]
    decisions: list[GenDecision]
    signals: list[GenSignal]


def generate(seed: int, *, n_decisions: int, n_signals: int, hours: float) -> World:
    rng = random.Random(seed)
    start = T0 + timedelta(minutes=rng.randrange(0, 600))
    end = start + timedelta(hours=hours)
    patterns = [GenPattern(f"p{i}", agent, rng.choice([None, *TYPES])) for agent in AGENTS for i in range(3)]
    bias = {agent: rng.uniform(-0.15, 0.15) for agent in AGENTS}
    decisions = []
    for i in range(n_decisions):
        agent = rng.choice(AGENTS)
        created = start + timedelta(seconds=rng.uniform(0, hours * 3600 - 60))
        own = [p for p in patterns if p.agent == agent]
        pattern = rng.choice(own) if rng.random() < 0.25 else None
        memory = pattern is not None or rng.random() < 0.3
        success = rng.random() < 0.45 + (0.2 if memory else 0.0) + bias[agent]
        quality = round(rng.uniform(0, 1), 3) if rng.random() < 0.7 else None
        latency = max(1.0, round(rng.lognormvariate(5.0, 1.3), 2)) if rng.random() < 0.85 else None
        outcome = Outcome(success=success, quality_score=quality, latency_ms=latency, recorded_at=created)
        # Inline outcomes only without patterns: decisions logged with an outcome do not count as
        # pattern applications in the store (see the final report of the analytics work).
        inline = pattern is None and rng.random() < 0.35
        later = created + timedelta(seconds=rng.uniform(1, 4 * 3600))
        if not inline and rng.random() < 0.12:
            later = end + timedelta(hours=1)  # outcome never arrives before the report
        decisions.append(
            GenDecision(
                f"d{i}",
                agent,
                rng.choice(TYPES),
                created,
                memory,
                pattern,
                outcome,
                None if inline else later,
            )
        )
    signals = []
    for i in range(n_signals):
        source = rng.choice(AGENTS)
        targets = rng.sample([a for a in AGENTS if a != source], rng.choice([1, 2]))
        created = start + timedelta(seconds=rng.uniform(0, hours * 3600 - 60))
        ttl = rng.choice([0.5, 1, 3, 8, 24, 72])
        acks = {}
        for target in targets:
            if rng.random() < 0.6:
                lag = timedelta(seconds=rng.uniform(0.2, ttl * 3600 * 0.8))
                acks[target] = ("processed" if rng.random() < 0.8 else "rejected", created + lag)
        signals.append(GenSignal(f"s{i}", source, targets, created, ttl, acks))
    return World(start, end, patterns, decisions, signals)


async def play(world: World, memory: Memory, clock: FakeClock, concurrency: int = 1) -> None:
    """Run the world's events through the real write path, each at its own time.

    Every event gets a :class:`Memory` whose clock is fixed at the event's time, so the order in
    which events run does not matter (counters add): first every decision and publication, then
    every outcome and acknowledgement (which need the former), ``concurrency`` at a time.
    """
    clock.now = world.start - timedelta(minutes=1)
    for agent in AGENTS:
        await memory.register(Caller(agent))
    await memory.register(OBSERVER)
    for p in world.patterns:
        stored = await memory.store_pattern(
            Caller(p.agent),
            description=f"pattern {p.key} of {p.agent}",
            conditions=[],
            outcomes={},
            confidence=0.5,
            success_rate=0.5,
            sample_size=10,
            decision_type=p.decision_type,
        )
        p.pattern_id = stored.pattern_id

    gate = asyncio.Semaphore(concurrency)

    def at(when: datetime) -> Memory:
        def fixed() -> datetime:
            return when

        return Memory(MemoryStore(memory.store.engine, fixed), memory.settings, fixed)

    async def decide(d: GenDecision) -> None:
        async with gate:
            decision, _ = await at(d.created).log_decision(
                Caller(d.agent),
                d.decision_type,
                memory_influenced=d.memory,
                patterns_applied=[d.pattern.pattern_id] if d.pattern else None,
                outcome=d.outcome if d.outcome_at is None else None,
            )
        d.decision_id = decision.decision_id
        d.recorded = d.outcome_at is None

    async def publish(s: GenSignal) -> None:
        async with gate:
            result = await at(s.created).publish_signal(
                Caller(s.source),
                signal_type="alert",
                data={"k": s.key},
                target_agents=s.targets,
                confidence=0.7,
                ttl_hours=s.ttl_hours,
            )
        s.signal_id = result.signal_id

    async def outcome(d: GenDecision, when: datetime) -> None:
        async with gate:
            await at(when).record_outcome(
                Caller(d.agent), d.decision_id, d.outcome.model_copy(update={"recorded_at": when})
            )
        d.recorded = True

    async def ack(
        s: GenSignal, target: str, status: Literal["processed", "rejected"], when: datetime
    ) -> None:
        async with gate:
            await at(when).ack_signal(Caller(target), s.signal_id, status)
        s.done[target] = (status, when)

    await asyncio.gather(*map(decide, world.decisions), *map(publish, world.signals))
    await asyncio.gather(
        *(outcome(d, d.outcome_at) for d in world.decisions if d.outcome_at and d.outcome_at <= world.end),
        *(
            ack(s, target, status, when)  # type: ignore[arg-type]
            for s in world.signals
            for target, (status, when) in s.acks.items()
            if when <= world.end
        ),
    )
    clock.now = world.end


# --------------------------------------------------------------------------------------------------
# expected figures
# --------------------------------------------------------------------------------------------------


def nearest_rank(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def assert_percentile(reported: float | None, values: Sequence[float], q: float) -> None:
    exact = nearest_rank(values, q)
    if exact is None:
        assert reported is None
        return
    assert reported is not None
    assert abs(reported - exact) <= histogram.RELATIVE_ERROR * exact * (1 + 1e-9), (q, reported, exact)


def assert_interval(reported: Interval | None, expected: tuple[float, float] | None) -> None:
    if expected is None:
        assert reported is None
    else:
        assert reported is not None
        assert (reported.lo, reported.hi) == pytest.approx(expected, rel=REL, abs=1e-12)


def assert_figures(f: DecisionFigures, ds: Sequence[GenDecision]) -> None:
    done = [d for d in ds if d.recorded]
    wins = sum(d.outcome.success for d in done)
    assert f.decisions == len(ds)
    assert f.memory_influenced_decisions == sum(d.memory for d in ds)
    assert f.outcomes == len(done)
    assert f.successes == wins
    if done:
        assert f.success_rate == pytest.approx(wins / len(done), rel=REL)
        assert_interval(f.success_rate_ci95, wilson_interval(wins, len(done)))
    else:
        assert f.success_rate is None and f.success_rate_ci95 is None
    qualities = [d.outcome.quality_score for d in done if d.outcome.quality_score is not None]
    assert f.quality_n == len(qualities)
    if qualities:
        assert f.quality_mean == pytest.approx(sum(qualities) / len(qualities), rel=REL)
    else:
        assert f.quality_mean is None
    latencies = [d.outcome.latency_ms for d in done if d.outcome.latency_ms is not None]
    assert f.latency_n == len(latencies)
    assert_percentile(f.latency_p50_ms, latencies, 0.50)
    assert_percentile(f.latency_p95_ms, latencies, 0.95)
    assert_percentile(f.latency_p99_ms, latencies, 0.99)


def in_span(world: World, agents: Iterable[str], span: Span, decision_type: str | None) -> list[GenDecision]:
    wanted = set(agents)
    return [
        d
        for d in world.decisions
        if d.agent in wanted
        and span.start <= d.created < span.end
        and (decision_type is None or d.decision_type == decision_type)
    ]


def check_report(
    report: AnalyticsReport,
    world: World,
    agents: Sequence[str],
    window: timedelta,
    decision_type: str | None = None,
) -> None:
    now = report.generated_at
    span = Span.of(now, window)
    assert report.granularity == ("hour" if window <= HOURLY_WINDOW_LIMIT else "day")
    assert (report.window_start, report.window_end) == (span.start, span.end)
    step = timedelta(hours=1) if report.granularity == "hour" else timedelta(days=1)
    assert span.start <= now - window < span.start + step  # rounded out, never in
    assert span.end - step <= now < span.end
    ds = in_span(world, agents, span, decision_type)
    assert ds, "the generated window should not be empty"

    assert_figures(report.totals, ds)
    types = {d.decision_type for d in ds}
    assert {b.decision_type for b in report.by_decision_type} == types
    for b in report.by_decision_type:
        assert_figures(b, [d for d in ds if d.decision_type == b.decision_type])
    assert {b.agent_id for b in report.by_agent} == {d.agent for d in ds}
    for a in report.by_agent:
        assert_figures(a, [d for d in ds if d.agent == a.agent_id])

    # memory uplift
    done = [d for d in ds if d.recorded]
    s1 = sum(d.outcome.success for d in done if d.memory)
    n1 = sum(1 for d in done if d.memory)
    s2 = sum(d.outcome.success for d in done if not d.memory)
    n2 = sum(1 for d in done if not d.memory)
    u = report.memory_uplift
    assert (u.with_memory_outcomes, u.with_memory_successes) == (n1, s1)
    assert (u.without_memory_outcomes, u.without_memory_successes) == (n2, s2)
    assert u.with_memory_decisions == sum(d.memory for d in ds)
    assert u.without_memory_decisions == sum(not d.memory for d in ds)
    assert u.with_memory_rate == pytest.approx(s1 / n1, rel=REL)
    assert u.without_memory_rate == pytest.approx(s2 / n2, rel=REL)
    assert_interval(u.with_memory_ci95, wilson_interval(s1, n1))
    assert_interval(u.without_memory_ci95, wilson_interval(s2, n2))
    diff, lo, hi = newcombe_difference_interval(s1, n1, s2, n2)
    assert u.difference == pytest.approx(diff, rel=REL)
    assert_interval(u.difference_ci95, (lo, hi))

    # time series: every bucket of the span, oldest first
    assert [p.bucket for p in report.series] == list(span.buckets)
    for point in report.series:
        cell = [d for d in ds if keys.bucket(d.created, span.grain) == point.bucket]
        cell_done = [d for d in cell if d.recorded]
        assert point.decisions == len(cell)
        assert point.outcomes == len(cell_done)
        assert point.successes == sum(d.outcome.success for d in cell_done)
        lat = [d.outcome.latency_ms for d in cell_done if d.outcome.latency_ms is not None]
        assert_percentile(point.latency_p50_ms, lat, 0.50)
        assert_percentile(point.latency_p95_ms, lat, 0.95)
    for series, attr in ((report.series_by_agent, "agent"), (report.series_by_type, "decision_type")):
        for s in series:
            members = [d for d in ds if getattr(d, attr) == s.name]
            assert s.decisions == len(members)
            for point in s.points:
                cell = [d for d in members if keys.bucket(d.created, span.grain) == point.bucket]
                assert point.decisions == len(cell)
                assert point.outcomes == sum(d.recorded for d in cell)

    check_patterns(report, world, agents, decision_type)
    check_signals(report, world, agents, span, now)


def check_patterns(
    report: AnalyticsReport, world: World, agents: Sequence[str], decision_type: str | None
) -> None:
    rows = []
    for p in world.patterns:
        if p.agent not in agents or (
            decision_type is not None and p.decision_type not in (None, decision_type)
        ):
            continue
        applied = [d for d in world.decisions if d.pattern is p and d.recorded]
        if not applied:
            continue
        n, s = len(applied), sum(d.outcome.success for d in applied)
        lo, hi = wilson_interval(s, n)
        rows.append((p.pattern_id, n, s, s / n, lo, hi))
    assert report.patterns_with_applications == len(rows)
    top = sorted(rows, key=lambda r: (-r[3], -r[4], -r[1], r[0]))[:5]
    worst = sorted(rows, key=lambda r: (r[3], r[5], -r[1], r[0]))[:5]
    for got, want in ((report.top_patterns, top), (report.worst_patterns, worst)):
        assert [p.pattern_id for p in got] == [r[0] for r in want]
        for shown, r in zip(got, want, strict=True):
            assert (shown.applied_count, shown.applied_successes) == (r[1], r[2])
            assert shown.effectiveness == pytest.approx(r[3], rel=REL)
            assert (shown.ci95.lo, shown.ci95.hi) == pytest.approx((r[4], r[5]), rel=REL, abs=1e-12)


def check_signals(
    report: AnalyticsReport, world: World, agents: Sequence[str], span: Span, now: datetime
) -> None:
    first = keys.bucket(span.start, "hour")
    current = keys.bucket(now, "hour")
    wanted = set(agents)
    in_window = [s for s in world.signals if keys.bucket(s.created, "hour") >= first]
    deliveries = [(s, t) for s in in_window for t in s.targets if t in wanted]
    acked = [(s, t) for s, t in deliveries if t in s.done]
    lags = [(s.done[t][1] - s.created).total_seconds() * 1000 for s, t in acked]
    open_ = [(s, t) for s in world.signals for t in s.targets if t in wanted and t not in s.done]
    sig = report.signals
    assert sig.published == sum(1 for s in in_window if s.source in wanted)
    assert sig.received == len(deliveries)
    assert sig.processed == sum(1 for s, t in acked if s.done[t][0] == "processed")
    assert sig.rejected == sum(1 for s, t in acked if s.done[t][0] == "rejected")
    assert sig.lag_n == len(lags)
    assert_percentile(sig.lag_p50_ms, lags, 0.50)
    assert_percentile(sig.lag_p95_ms, lags, 0.95)
    assert sig.pending == sum(1 for s, _ in open_ if keys.bucket(s.expires, "hour") >= current)
    assert sig.expired_unprocessed == sum(
        1 for s, _ in open_ if first <= keys.bucket(s.expires, "hour") < current
    )
    assert sig.current_hour == current


# --------------------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------------------


def _setup(engine: ItemEngine) -> tuple[Memory, Analytics, FakeClock, Settings]:
    clock = FakeClock(step=timedelta(0))
    store = MemoryStore(engine, clock)
    settings = settings_for()
    return Memory(store, settings, clock), Analytics(store, settings, clock), clock, settings


def _concurrency(engine: ItemEngine) -> int:
    return 8 if isinstance(engine, SqliteEngine) else 1


@pytest.mark.parametrize(("seed", "n_decisions", "n_signals"), [(7, 160, 26), (2024, 90, 16)])
async def test_report_matches_ground_truth(
    engine: ItemEngine, seed: int, n_decisions: int, n_signals: int
) -> None:
    memory, analytics, clock, _ = _setup(engine)
    world = generate(seed, n_decisions=n_decisions, n_signals=n_signals, hours=62)
    await play(world, memory, clock, _concurrency(engine))

    # hourly rollups (window <= 48 h), every agent, as the observer
    report = await analytics.report(OBSERVER, window=timedelta(hours=30), all_agents=True)
    assert report.all_agents and report.agents == sorted([*AGENTS, OBSERVER.agent_id])
    check_report(report, world, AGENTS, timedelta(hours=30))
    # the boundary: 48 h is still hourly, 48 h + 1 s daily (rounded out to whole days)
    check_report(
        await analytics.report(OBSERVER, window=HOURLY_WINDOW_LIMIT, all_agents=True),
        world,
        AGENTS,
        HOURLY_WINDOW_LIMIT,
    )
    for window in (HOURLY_WINDOW_LIMIT + timedelta(seconds=1), timedelta(days=4)):
        daily = await analytics.report(OBSERVER, window=window, all_agents=True)
        assert daily.granularity == "day"
        assert daily.window_start.hour == 0 and daily.window_end.hour == 0
        check_report(daily, world, AGENTS, window)

    # one agent, its own report (default) and by decision type
    own = await analytics.report(Caller("beta"), window=timedelta(hours=20))
    assert own.agents == ["beta"] and not own.all_agents
    check_report(own, world, ["beta"], timedelta(hours=20))
    typed = await analytics.report(Caller("alpha"), window=timedelta(days=3), decision_type="exit")
    assert {b.decision_type for b in typed.by_decision_type} == {"exit"}
    check_report(typed, world, ["alpha"], timedelta(days=3), decision_type="exit")
    # the observer reading another agent
    check_report(
        await analytics.report(OBSERVER, window=timedelta(hours=40), agent_id="gamma"),
        world,
        ["gamma"],
        timedelta(hours=40),
    )


async def test_report_is_json_serialisable_and_small(engine: ItemEngine) -> None:
    memory, analytics, clock, _ = _setup(engine)
    world = generate(3, n_decisions=60, n_signals=8, hours=30)
    await play(world, memory, clock, _concurrency(engine))
    report = await analytics.report(OBSERVER, window=timedelta(days=7), all_agents=True)
    text = report.model_dump_json()
    assert len(text) < 40_000
    assert AnalyticsReport.model_validate_json(text) == report
    for value in (report.totals.success_rate, report.totals.latency_p95_ms, report.totals.quality_mean):
        assert isinstance(value, float)


async def test_storage_requests_do_not_grow_with_decisions(engine: ItemEngine) -> None:
    memory, analytics, clock, _ = _setup(engine)
    agent = Caller("alpha")
    await memory.register(agent)
    clock.now = T0

    async def burst(n: int) -> None:
        for i in range(n):
            decision, _ = await memory.log_decision(agent, TYPES[i % 3], memory_influenced=i % 2 == 0)
            await memory.record_outcome(
                agent, decision.decision_id, Outcome(success=i % 3 == 0, latency_ms=10 + i)
            )

    await burst(5)
    with usage.metered() as few:
        small = await analytics.report(agent, window=timedelta(hours=6))
    await burst(60)
    with usage.metered() as many:
        large = await analytics.report(agent, window=timedelta(hours=6))
    assert (small.totals.decisions, large.totals.decisions) == (5, 65)
    assert few.requests == many.requests
    assert few.by_operation == many.by_operation
    # and no request touched a decision: reads are queries of rollups, patterns and usage only
    assert not any("get" in op.lower() for op in many.by_operation)


async def test_concurrent_writers_on_one_agent_hour_are_counted_exactly(engine: ItemEngine) -> None:
    memory, analytics, clock, _ = _setup(engine)
    agent = Caller("alpha")
    await memory.register(agent)
    clock.now = T0 + timedelta(minutes=5)
    outcomes = [
        Outcome(success=i % 3 != 0, quality_score=round(i / 20, 2), latency_ms=50.0 + 7 * i)
        for i in range(20)
    ]

    async def writer(i: int) -> None:
        decision, _ = await memory.log_decision(agent, "entry", memory_influenced=i % 2 == 0)
        await memory.record_outcome(agent, decision.decision_id, outcomes[i])

    await asyncio.gather(*(writer(i) for i in range(20)))
    report = await analytics.report(agent, window=timedelta(hours=1))
    t = report.totals
    assert (t.decisions, t.outcomes, t.memory_influenced_decisions) == (20, 20, 10)
    assert t.successes == sum(o.success for o in outcomes)
    assert t.quality_n == 20
    assert t.quality_mean == pytest.approx(sum(o.quality_score or 0 for o in outcomes) / 20, rel=REL)
    assert t.latency_n == 20
    assert_percentile(t.latency_p95_ms, [o.latency_ms or 0 for o in outcomes], 0.95)
    assert report.memory_uplift.with_memory_outcomes == 10
    assert [p.decisions for p in report.series if p.decisions] == [20]


async def test_access_rules(engine: ItemEngine) -> None:
    memory, analytics, clock, _ = _setup(engine)
    alpha, beta = Caller("alpha"), Caller("beta")
    for caller in (alpha, beta, OBSERVER):
        await memory.register(caller)
    clock.now = T0
    await memory.log_decision(beta, "entry", outcome=Outcome(success=True))

    with pytest.raises(AccessDenied, match="observer role"):
        await analytics.report(alpha, window=timedelta(hours=1), agent_id="beta")
    with pytest.raises(AccessDenied, match="observer role"):
        await analytics.report(alpha, window=timedelta(hours=1), all_agents=True)
    # one's own, by default or by name
    assert (await analytics.report(alpha, window=timedelta(hours=1))).totals.decisions == 0
    assert (await analytics.report(beta, window=timedelta(hours=1), agent_id="beta")).totals.decisions == 1
    # the observer reads any agent, and all of them
    assert (
        await analytics.report(OBSERVER, window=timedelta(hours=1), agent_id="beta")
    ).totals.decisions == 1
    everyone = await analytics.report(OBSERVER, window=timedelta(hours=1), all_agents=True)
    assert everyone.totals.decisions == 1 and [a.agent_id for a in everyone.by_agent] == ["beta"]

    with pytest.raises(InvalidInput):
        await analytics.report(OBSERVER, window=timedelta(hours=1), all_agents=True, agent_id="beta")
    with pytest.raises(InvalidInput):
        await analytics.report(alpha, window=timedelta(0))
    with pytest.raises(InvalidInput):
        await analytics.report(alpha, window=timedelta(hours=1), decision_type="not a type")
    with pytest.raises(InvalidInput):
        await analytics.report(OBSERVER, window=timedelta(hours=1), agent_id="bad#agent")


async def test_empty_report_is_none_safe(engine: ItemEngine) -> None:
    _, analytics, clock, _ = _setup(engine)
    clock.now = T0
    report = await analytics.report(Caller("nobody"), window=timedelta(days=30))
    t = report.totals
    assert (t.decisions, t.outcomes, t.success_rate, t.success_rate_ci95, t.quality_mean) == (
        0,
        0,
        None,
        None,
        None,
    )
    assert t.latency_p50_ms is None and t.latency_p99_ms is None
    u = report.memory_uplift
    assert u.with_memory_rate is None and u.difference is None and u.difference_ci95 is None
    assert report.top_patterns == [] and report.worst_patterns == []
    assert report.signals.lag_p50_ms is None and report.signals.pending == 0
    assert len(report.series) == 31 and all(p.decisions == 0 for p in report.series)
    assert report.series_by_agent == [] and report.series_by_type == []


async def test_uplift_with_one_empty_group(engine: ItemEngine) -> None:
    memory, analytics, clock, _ = _setup(engine)
    agent = Caller("alpha")
    clock.now = T0
    for i in range(4):
        await memory.log_decision(agent, "entry", memory_influenced=True, outcome=Outcome(success=i < 3))
    u = (await analytics.report(agent, window=timedelta(hours=2))).memory_uplift
    assert (u.with_memory_outcomes, u.with_memory_successes, u.without_memory_outcomes) == (4, 3, 0)
    assert u.with_memory_rate == 0.75 and u.without_memory_rate is None and u.without_memory_ci95 is None
    assert u.difference is None and u.difference_ci95 is None


async def test_cost_section_from_usage_ledger(engine: ItemEngine) -> None:
    memory, analytics, clock, settings = _setup(engine)
    clock.now = T0
    ledger = UsageLedger()
    for i in range(4):
        ledger.record("log_decision", Usage(requests=3, read_units=1.0, write_units=8.0 + i))
    ledger.record("recall_stm", Usage(requests=3, read_units=1.5))
    assert await ledger.flush(memory.store, clock.now) == 2
    assert len(ledger) == 0 and await ledger.flush(memory.store, clock.now) == 0
    ledger.record("recall_stm", Usage(requests=1, read_units=0.5))
    await ledger.flush(memory.store, keys.bucket(clock.now - timedelta(days=1), "day"))

    report = await analytics.report(OBSERVER, window=timedelta(days=3))
    assert report.costs is not None
    rows = {r.tool: r for r in report.costs.rows}
    log = rows["log_decision"]
    assert (log.calls, log.requests) == (4, 12)
    assert log.requests_per_call == 3
    assert log.read_units_per_call == pytest.approx(1.0)
    assert log.write_units_per_call == pytest.approx(9.5)
    per_call = (1.0 * settings.price_read_per_million + 9.5 * settings.price_write_per_million) / 1e6
    assert log.usd_per_1000_calls == pytest.approx(per_call * 1000)
    stm = rows["recall_stm"]
    assert (stm.calls, stm.requests) == (2, 4) and stm.read_units_per_call == pytest.approx(1.0)
    assert report.costs.total_calls == 6
    # an hourly window covers only the days it touches
    today = await analytics.report(OBSERVER, window=timedelta(hours=2))
    assert today.costs is not None and {r.tool: r.calls for r in today.costs.rows} == {
        "log_decision": 4,
        "recall_stm": 1,
    }
    assert (await analytics.report(OBSERVER, window=timedelta(hours=2), include_costs=False)).costs is None
    # an agent's own report leaves the server-wide cost section out unless asked
    assert (await analytics.report(Caller("alpha"), window=timedelta(hours=2))).costs is None
    assert (await analytics.report(Caller("alpha"), window=timedelta(hours=2), include_costs=True)).costs


async def test_ledger_keeps_deltas_whose_flush_failed() -> None:
    class FailingStore:
        def __init__(self) -> None:
            self.written: dict[str, dict[str, float]] = {}

        async def add_tool_usage(self, day: str, tool: str, delta: dict[str, float]) -> None:
            if tool == "bad":
                raise OSError("storage down")
            self.written[tool] = dict(delta)

    ledger = UsageLedger()
    ledger.record("good", Usage(requests=2))
    ledger.record("bad", Usage(requests=5, write_units=2))
    store = FailingStore()
    with pytest.raises(OSError):
        await ledger.flush(store, "2026-11-02")  # type: ignore[arg-type]
    assert store.written["good"]["calls"] == 1
    ledger.record("bad", Usage(requests=1))
    assert ledger.pending() == {"bad": {"calls": 2, "requests": 6, "read_units": 0.0, "write_units": 2.0}}


def test_cost_rows_without_calls_and_sorting() -> None:
    settings = settings_for()
    rows = cost_rows({"a": {"calls": 0}, "b": {"calls": 10, "requests": 20, "read_units": 5.0}}, settings)
    assert [r.tool for r in rows] == ["b", "a"]
    assert rows[1].requests_per_call == 0 and rows[1].usd_per_1000_calls == 0
    assert rows[0].usd_per_1000_calls == pytest.approx(0.5 * settings.price_read_per_million / 1e6 * 1000)


def test_span_rounds_out_to_whole_buckets() -> None:
    now = datetime.fromisoformat("2026-11-24T10:17:00+00:00")
    hourly = Span.of(now, timedelta(hours=24))
    assert hourly.grain == "hour" and len(hourly.buckets) == 25
    assert hourly.buckets[0] == "2026-11-23T10" and hourly.buckets[-1] == "2026-11-24T10"
    assert hourly.days == ["2026-11-23", "2026-11-24"]
    daily = Span.of(now, timedelta(days=30))
    assert daily.grain == "day" and len(daily.buckets) == 31
    assert daily.buckets[0] == "2026-10-25" and daily.end.isoformat() == "2026-11-25T00:00:00+00:00"
    assert daily.days == list(daily.buckets)


def test_quantiles_match_histogram_percentile() -> None:
    rng = random.Random(5)
    qs = (0.01, 0.5, 0.5, 0.95, 0.99, 1.0)
    assert quantiles({}, qs) == [None] * len(qs)
    for _ in range(300):
        counts = {rng.randrange(0, 300): rng.randrange(1, 50) for _ in range(rng.randrange(1, 40))}
        assert quantiles(counts, qs) == [histogram.percentile(counts, q) for q in qs]
