"""From rollup rows to report figures: the window's buckets, counters summed per agent, type and
bucket, percentiles from the log-bucket histograms, intervals, memory uplift, pattern effectiveness."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from agent_memory import histogram, rollups
from agent_memory.api.analytics import (
    ADJECTIVE,
    AgentBreakdown,
    AnalyticsReport,
    CostSection,
    DecisionFigures,
    Granularity,
    Interval,
    MemoryUplift,
    PatternEffectiveness,
    Series,
    SeriesPoint,
    SignalFigures,
    TypeBreakdown,
)
from agent_memory.memory.stats import newcombe_difference_interval, wilson_interval
from agent_memory.models import Pattern
from agent_memory.storage import keys
from agent_memory.storage.store import RollupRow

HOURLY_WINDOW_LIMIT = timedelta(hours=48)
"""Windows up to this length are answered from hourly rollups; longer ones from daily rollups."""
TOP_PATTERNS = 5
CONFIDENCE = 0.95

_LAT_INDEX = histogram.attribute_index(rollups.LATENCY_PREFIX)
_LAG_INDEX = histogram.attribute_index(rollups.LAG_PREFIX)


# Accumulation
# --------------------------------------------------------------------------------------------------


class _Acc:
    """Counters of a set of rollup items, summed (the latency histogram as {bucket: count})."""

    __slots__ = (
        "decisions",
        "lat",
        "mem",
        "mem_outcomes",
        "mem_successes",
        "outcomes",
        "q_n",
        "q_sum",
        "successes",
    )

    def __init__(self) -> None:
        self.decisions = 0
        self.mem = 0
        self.outcomes = 0
        self.successes = 0
        self.mem_outcomes = 0
        self.mem_successes = 0
        self.q_sum = 0.0
        self.q_n = 0
        self.lat: dict[int, int] = {}

    def add_scalars(self, c: Mapping[str, Any]) -> None:
        get = c.get
        self.decisions += int(get(rollups.DECISIONS, 0))
        self.mem += int(get(rollups.MEMORY_DECISIONS, 0))
        self.outcomes += int(get(rollups.OUTCOMES, 0))
        self.successes += int(get(rollups.SUCCESSES, 0))
        self.mem_outcomes += int(get(rollups.MEMORY_OUTCOMES, 0))
        self.mem_successes += int(get(rollups.MEMORY_SUCCESSES, 0))
        self.q_sum += float(get(rollups.QUALITY_SUM, 0.0))
        self.q_n += int(get(rollups.QUALITY_COUNT, 0))

    def add(self, o: _Acc) -> None:
        self.decisions += o.decisions
        self.mem += o.mem
        self.outcomes += o.outcomes
        self.successes += o.successes
        self.mem_outcomes += o.mem_outcomes
        self.mem_successes += o.mem_successes
        self.q_sum += o.q_sum
        self.q_n += o.q_n
        histogram.add_into(self.lat, o.lat)

    @property
    def empty(self) -> bool:
        return self.decisions == 0 and self.outcomes == 0

    def figures(self) -> dict[str, Any]:
        p50, p95, p99 = histogram.quantiles(self.lat, (0.50, 0.95, 0.99))
        return {
            "decisions": self.decisions,
            "memory_influenced_decisions": self.mem,
            "outcomes": self.outcomes,
            "successes": self.successes,
            "success_rate": _rate(self.successes, self.outcomes),
            "success_rate_ci95": _wilson(self.successes, self.outcomes),
            "quality_mean": self.q_sum / self.q_n if self.q_n else None,
            "quality_n": self.q_n,
            "latency_n": int(sum(self.lat.values())),
            "latency_p50_ms": p50,
            "latency_p95_ms": p95,
            "latency_p99_ms": p99,
        }

    def point(self, bucket: str, start: datetime) -> SeriesPoint:
        p50, p95 = histogram.quantiles(self.lat, (0.50, 0.95))
        return SeriesPoint(
            bucket=bucket,
            start=start,
            decisions=self.decisions,
            outcomes=self.outcomes,
            successes=self.successes,
            success_rate=_rate(self.successes, self.outcomes),
            latency_p50_ms=p50,
            latency_p95_ms=p95,
        )


def _rate(successes: int, n: int) -> float | None:
    return successes / n if n else None


def _wilson(successes: int, n: int) -> Interval | None:
    if n == 0:
        return None
    lo, hi = wilson_interval(successes, n, CONFIDENCE)
    return Interval(lo=lo, hi=hi)


def _uplift(acc: _Acc) -> MemoryUplift:
    s1, n1 = acc.mem_successes, acc.mem_outcomes
    s2, n2 = acc.successes - acc.mem_successes, acc.outcomes - acc.mem_outcomes
    difference: float | None = None
    interval: Interval | None = None
    if n1 and n2:
        difference, lo, hi = newcombe_difference_interval(s1, n1, s2, n2, CONFIDENCE)
        interval = Interval(lo=lo, hi=hi)
    return MemoryUplift(
        with_memory_decisions=acc.mem,
        without_memory_decisions=acc.decisions - acc.mem,
        with_memory_outcomes=n1,
        with_memory_successes=s1,
        with_memory_rate=_rate(s1, n1),
        with_memory_ci95=_wilson(s1, n1),
        without_memory_outcomes=n2,
        without_memory_successes=s2,
        without_memory_rate=_rate(s2, n2),
        without_memory_ci95=_wilson(s2, n2),
        difference=difference,
        difference_ci95=interval,
    )


def _effectiveness(p: Pattern) -> PatternEffectiveness:
    n, s = p.feedback.applied_count, p.feedback.applied_successes
    lo, hi = wilson_interval(min(s, n), n, CONFIDENCE)
    description = p.description if len(p.description) <= 160 else p.description[:157] + "..."
    return PatternEffectiveness(
        pattern_id=p.pattern_id,
        agent_id=p.agent_id,
        description=description,
        decision_type=p.decision_type,
        status=p.status,
        confidence=p.confidence,
        applied_count=n,
        applied_successes=s,
        effectiveness=s / n,
        ci95=Interval(lo=lo, hi=hi),
    )


# --------------------------------------------------------------------------------------------------
# Windows
# --------------------------------------------------------------------------------------------------


def _bucket_start(bucket: str, grain: Granularity) -> datetime:
    """ "YYYY-MM-DDTHH" / "YYYY-MM-DD" -> the bucket's first instant (UTC)."""
    hour = int(bucket[11:13]) if grain == "hour" else 0
    return datetime(int(bucket[0:4]), int(bucket[5:7]), int(bucket[8:10]), hour, tzinfo=UTC)


@dataclass(frozen=True)
class Span:
    """The rollup buckets that answer a window ending now."""

    grain: Granularity
    start: datetime
    end: datetime
    buckets: tuple[str, ...]

    @classmethod
    def of(cls, now: datetime, window: timedelta) -> Span:
        now = now.astimezone(UTC)
        grain: Granularity = "hour" if window <= HOURLY_WINDOW_LIMIT else "day"
        step = timedelta(hours=1) if grain == "hour" else timedelta(days=1)
        start = _bucket_start(keys.bucket(now - window, grain), grain)
        end = _bucket_start(keys.bucket(now, grain), grain) + step
        buckets = []
        t = start
        while t < end:
            buckets.append(keys.bucket(t, grain))
            t += step
        return cls(grain, start, end, tuple(buckets))

    @property
    def days(self) -> list[str]:
        out: list[str] = []
        t = _bucket_start(keys.bucket(self.start, "day"), "day")
        while t < self.end:
            out.append(keys.bucket(t, "day"))
            t += timedelta(days=1)
        return out

    def note(self) -> str:
        unit = "hour" if self.grain == "hour" else "day"
        return (
            f"{ADJECTIVE[self.grain]} rollups: {len(self.buckets)} whole UTC {unit}s from "
            f"{keys.iso(self.start)} to {keys.iso(self.end)} (the window is rounded out to whole "
            f"{unit}s; the last one is the current {unit}, up to now). Decisions are counted in the "
            f"{unit} they were logged; an outcome is counted with its decision, so recent {unit}s "
            "fill in as outcomes arrive."
        )


@dataclass
class AgentData:
    """What a report reads of one agent."""

    agent: str
    rows: list[RollupRow]
    signal_rows: list[RollupRow]
    patterns: list[Pattern]


def _series(groups: Mapping[str, Mapping[str, _Acc]], starts: Mapping[str, datetime]) -> list[Series]:
    out = []
    for name, by_bucket in groups.items():
        points = [by_bucket[b].point(b, starts[b]) for b in sorted(by_bucket) if not by_bucket[b].empty]
        if points:
            out.append(Series(name=name, decisions=sum(p.decisions for p in points), points=points))
    out.sort(key=lambda s: (-s.decisions, s.name))
    return out


def _sum(accs: Iterable[_Acc]) -> _Acc:
    total = _Acc()
    for acc in accs:
        total.add(acc)
    return total


def _cell(cells: dict[str, _Acc], bucket: str) -> _Acc:
    cell = cells.get(bucket)
    if cell is None:
        cells[bucket] = cell = _Acc()
    return cell


def build_report(
    data: list[AgentData],
    *,
    span: Span,
    now: datetime,
    window: timedelta,
    decision_type: str | None,
    all_agents: bool,
    costs: CostSection | None,
) -> AnalyticsReport:
    # Each rollup row is one (agent, type, bucket); it is added to its (agent, bucket) and
    # (type, bucket) cells in one pass over its attributes (the hottest loop of a report), and
    # everything else is summed from those cells.
    by_agent_bucket: dict[str, dict[str, _Acc]] = {}
    by_type_bucket: dict[str, dict[str, _Acc]] = {}
    lat_index = _LAT_INDEX
    for d in data:
        agent_cells = by_agent_bucket.setdefault(d.agent, {})
        for row in d.rows:
            a = _cell(agent_cells, row.bucket)
            t = _cell(by_type_bucket.setdefault(row.decision_type or "unknown", {}), row.bucket)
            c = row.counters
            a.add_scalars(c)
            t.add_scalars(c)
            a_lat, t_lat = a.lat, t.lat
            for name, value in c.items():
                i = lat_index.get(name)
                if i is not None and value:
                    a_lat[i] = a_lat.get(i, 0) + value
                    t_lat[i] = t_lat.get(i, 0) + value

    # Sums, merging as few histograms as possible: type totals from the type cells, the grand
    # total from the type totals, per-bucket cells from the smaller of the two groupings, and
    # nothing at all when there is a single agent or a single type.
    type_totals = {t: _sum(cells.values()) for t, cells in by_type_bucket.items()}
    totals = next(iter(type_totals.values())) if len(type_totals) == 1 else _sum(type_totals.values())
    if len(by_agent_bucket) == 1:
        agent_totals = {a: totals for a in by_agent_bucket}
    else:
        agent_totals = {a: _sum(cells.values()) for a, cells in by_agent_bucket.items()}
    source = by_agent_bucket if len(by_agent_bucket) <= len(by_type_bucket) else by_type_bucket
    per_bucket: dict[str, _Acc]
    if len(source) == 1:
        per_bucket = next(iter(source.values()))
    else:
        per_bucket = {}
        for cells in source.values():
            for bucket, acc in cells.items():
                _cell(per_bucket, bucket).add(acc)
    by_type = [TypeBreakdown(decision_type=t, **acc.figures()) for t, acc in type_totals.items()]
    by_type.sort(key=lambda b: (-b.decisions, b.decision_type))
    by_agent = [AgentBreakdown(agent_id=a, **acc.figures()) for a, acc in agent_totals.items()]
    by_agent = [b for b in by_agent if b.decisions or b.outcomes or not all_agents]
    by_agent.sort(key=lambda b: (-b.decisions, b.agent_id))
    starts = {b: _bucket_start(b, span.grain) for b in span.buckets}
    series = [(per_bucket.get(b) or _Acc()).point(b, starts[b]) for b in span.buckets]

    # patterns: lifetime effectiveness counters of the agents' own patterns
    scored = [
        _effectiveness(p)
        for d in data
        for p in d.patterns
        if p.feedback.applied_count >= 1
        and (decision_type is None or p.decision_type in (None, decision_type))
    ]
    top = sorted(scored, key=lambda p: (-p.effectiveness, -p.ci95.lo, -p.applied_count, p.pattern_id))
    worst = sorted(scored, key=lambda p: (p.effectiveness, p.ci95.hi, -p.applied_count, p.pattern_id))

    return AnalyticsReport(
        generated_at=now,
        agents=[d.agent for d in data],
        all_agents=all_agents,
        decision_type=decision_type,
        window_requested_hours=window.total_seconds() / 3600,
        granularity=span.grain,
        window_start=span.start,
        window_end=span.end,
        window_note=span.note(),
        totals=DecisionFigures(**totals.figures()),
        by_decision_type=by_type,
        by_agent=by_agent,
        latency_relative_error=histogram.RELATIVE_ERROR,
        memory_uplift=_uplift(totals),
        patterns_with_applications=len(scored),
        top_patterns=top[:TOP_PATTERNS],
        worst_patterns=worst[:TOP_PATTERNS],
        signals=_signals(data, now),
        series=series,
        series_by_agent=_series(by_agent_bucket, starts),
        series_by_type=_series(by_type_bucket, starts),
        costs=costs,
    )


def _signals(data: list[AgentData], now: datetime) -> SignalFigures:
    current = keys.bucket(now, "hour")
    published = received = processed = rejected = pending = expired = 0
    lag: dict[int, int] = {}
    lag_index = _LAG_INDEX
    for d in data:
        for row in d.signal_rows:
            c = row.counters
            get = c.get
            published += get(rollups.PUBLISHED, 0)
            received += get(rollups.RECEIVED, 0)
            processed += get(rollups.PROCESSED, 0)
            rejected += get(rollups.REJECTED, 0)
            for name, value in c.items():
                i = lag_index.get(name)
                if i is not None and value:
                    lag[i] = lag.get(i, 0) + value
            open_deliveries = get(rollups.DUE, 0) - get(rollups.DUE_DONE, 0)
            if row.bucket >= current:
                pending += open_deliveries
            else:
                expired += open_deliveries
    lag_p50, lag_p95 = histogram.quantiles(lag, (0.50, 0.95))
    return SignalFigures(
        published=int(published),
        received=int(received),
        processed=int(processed),
        rejected=int(rejected),
        lag_n=int(sum(lag.values())),
        lag_p50_ms=lag_p50,
        lag_p95_ms=lag_p95,
        pending=int(pending),
        expired_unprocessed=int(expired),
        current_hour=current,
        note=(
            "Hourly counters, not filtered by decision type. published/received/processed/rejected "
            "and the lag count signals created in the window (acknowledgements are counted in the "
            "signal's creation hour). pending = deliveries not acknowledged whose signal expires in "
            "the current hour or later (any creation time; one that expired earlier in the current "
            "hour still counts); expired_unprocessed = those whose expiry hour is in the window "
            "before the current hour."
        ),
    )
