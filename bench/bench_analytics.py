"""Benchmark: analytics report latency and storage requests against the number of decisions.

    python -m bench.bench_analytics [--decisions 1000000] [--dynamo-decisions 10000,100000]

For each dataset the bench fills a fresh store with N decisions spread over 30 days (several
agents and decision types, outcomes with quality and latency, memory-influenced decisions,
patterns with effectiveness counters, signals with acknowledgement lags, per-tool usage
counters), then times ``Analytics.report`` for a 30-day window (observer, all agents) over
``--runs`` runs and counts the storage requests of one report with ``usage.metered()``.

How the data is written (printed with the results): the first ``--real-writes`` decisions go
through the real write path (``MemoryStore.put_decision``, one transaction each, with their
outcome). The rest are written as rollup-equivalent data: the same counter deltas the store
adds per decision (``rollups.decision_logged`` / ``rollups.outcome_recorded``), summed per agent,
type and hour and applied with the store's own rollup operations - the report reads only
rollups, so it sees exactly what a million real writes would leave, without the hours they take.
Signals likewise (a few through ``publish_signal``/``ack``, the rest as their rollup deltas).

The embedded store runs in a temporary directory; DynamoDB runs on a moto server started by the
bench (``moto.server``, in a child process), whose latencies say nothing about
DynamoDB's: its column that matters is the request count, which must not change with N.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent_memory import rollups
from agent_memory.config import Settings
from agent_memory.memory.analytics import Analytics
from agent_memory.memory.identity import Caller
from agent_memory.models import AgentProfile, Decision, Outcome, Pattern, Signal
from agent_memory.storage import keys, usage
from agent_memory.storage.engine import ItemEngine, Update, WriteOp
from agent_memory.storage.store import MemoryStore
from bench.common import moto_server

DOC = Path(__file__).resolve().parent.parent / "docs" / "ANALYTICS.md"
START, END = "<!-- bench:analytics:start -->", "<!-- bench:analytics:end -->"
WINDOW = timedelta(days=30)
TOOLS = ("log_decision", "record_outcome", "recall_stm", "recall_patterns", "publish_signal", "read_inbox")


@dataclass
class Shape:
    decisions: int
    agents: int
    types: int
    patterns_per_agent: int
    real_writes: int
    signals: int
    real_signals: int


@dataclass
class Result:
    backend: str
    shape: Shape
    fill_seconds: float
    real_rate: float
    rollup_items: int
    p50_ms: float
    p95_ms: float
    cpu_p50_ms: float
    requests: int
    by_operation: dict[str, int]
    one_agent_p50_ms: float
    one_agent_cpu_p50_ms: float
    one_agent_requests: int


def fixed(now: datetime) -> Callable[[], datetime]:
    def clock() -> datetime:
        return now

    return clock


# --------------------------------------------------------------------------------------------------
# filling
# --------------------------------------------------------------------------------------------------


def agent_names(n: int) -> list[str]:
    return [f"agent-{i:02d}" for i in range(n)]


def type_names(n: int) -> list[str]:
    return [f"type_{i}" for i in range(n)]


def random_outcome(rng: random.Random, memory: bool, when: datetime) -> Outcome:
    return Outcome(
        success=rng.random() < (0.62 if memory else 0.5),
        quality_score=round(rng.random(), 3) if rng.random() < 0.8 else None,
        latency_ms=round(rng.lognormvariate(5.5, 1.0), 2) if rng.random() < 0.9 else None,
        recorded_at=when,
    )


async def write_batched(engine: ItemEngine, batches: Sequence[list[WriteOp]], concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(ops: list[WriteOp]) -> None:
        async with gate:
            await engine.write(ops)

    await asyncio.gather(*(one(b) for b in batches))


async def fill(
    store: MemoryStore,
    shape: Shape,
    now: datetime,
    seed: int,
    *,
    transactions: bool,
    concurrency: int,
    real_concurrency: int,
) -> tuple[float, int]:
    """Fill ``store``; returns (real decisions per second, rollup items written)."""
    rng = random.Random(seed)
    agents, types = agent_names(shape.agents), type_names(shape.types)
    start = now - WINDOW + timedelta(minutes=30)
    span = (now - timedelta(minutes=5) - start).total_seconds()
    engine = store.engine

    for agent in agents:
        await store.register_agent(AgentProfile(agent_id=agent, first_seen=start, last_seen=now))
    patterns: dict[str, list[str]] = {}
    for agent in agents:
        for i in range(shape.patterns_per_agent):
            p = Pattern(
                pattern_id=f"pat-{agent}-{i}",
                agent_id=agent,
                description=f"pattern {i} of {agent}",
                confidence=0.5,
                success_rate=0.5,
                sample_size=10,
                decision_type=rng.choice(types),
                created_at=start,
                updated_at=start,
            )
            await store.create_pattern(p)
            patterns.setdefault(agent, []).append(p.pattern_id)

    # 1. real write path
    t0 = time.perf_counter()
    gate = asyncio.Semaphore(real_concurrency)

    async def real(i: int) -> None:
        when = start + timedelta(seconds=rng.uniform(0, span))
        agent, memory = rng.choice(agents), rng.random() < 0.35
        decision = Decision(
            decision_id=f"dec-{i:09d}",
            agent_id=agent,
            decision_type=rng.choice(types),
            created_at=when,
            expires_at=now + timedelta(days=90),
            memory_influenced=memory,
            context={"i": i},
            outcome=random_outcome(rng, memory, when),
        )
        async with gate:
            await store.put_decision(decision)

    await asyncio.gather(*(real(i) for i in range(shape.real_writes)))
    real_rate = shape.real_writes / (time.perf_counter() - t0) if shape.real_writes else 0.0

    # 2. a few signals through the real path (before the bulk data: moto's transactions copy
    # whole tables, so they stay fast while the tables are small)
    for i in range(shape.real_signals):
        created = now - timedelta(hours=rng.uniform(0.2, 20))
        source = rng.choice(agents)
        target = rng.choice([a for a in agents if a != source])
        signal = Signal(
            signal_id=f"sig-{i:07d}",
            signal_type="alert",
            source_agent=source,
            target_agents=[target],
            confidence=0.7,
            created_at=created,
            expires_at=created + timedelta(hours=24),
        )
        store.clock = fixed(created)
        await store.publish_signal(signal)
        if rng.random() < 0.7:
            store.clock = fixed(min(now, created + timedelta(seconds=rng.uniform(1, 3600))))
            await store.ack(target, signal, "processed", None)
    store.clock = fixed(now)

    # 3. rollup-equivalent deltas of the remaining decisions, summed per (agent, type, hour)
    cells: dict[tuple[str, str, datetime], rollups.Delta] = {}
    hours = int(span // 3600)
    for _ in range(shape.decisions - shape.real_writes):
        hour = start.replace(minute=0, second=0, microsecond=0) + timedelta(hours=rng.randrange(hours))
        agent, dtype, memory = rng.choice(agents), rng.choice(types), rng.random() < 0.35
        key = (agent, dtype, hour)
        delta = cells.setdefault(key, {})
        for name, value in rollups.merge(
            rollups.decision_logged(memory),
            rollups.outcome_recorded(random_outcome(rng, memory, hour), memory),
        ).items():
            delta[name] = delta.get(name, 0) + value
    # Each (agent, type, hour) cell adds to its hour item and its day item, with the store's own
    # operations; one transaction holds one hour of every (agent, type), so no item repeats in it.
    by_hour: dict[datetime, list[WriteOp]] = {}
    for (agent, dtype, hour), delta in cells.items():
        by_hour.setdefault(hour, []).extend(store._rollup_ops(agent, hour, dtype, delta))
    batches = [ops[i : i + 100] for ops in by_hour.values() for i in range(0, len(ops), 100)]
    if not transactions:
        batches = [[op] for batch in batches for op in batch]
    await write_batched(engine, batches, concurrency)

    # 4. pattern effectiveness counters (what outcomes of decisions applying them add)
    feedback: list[WriteOp] = []
    for agent, ids in patterns.items():
        for pattern_id in ids:
            n = rng.randrange(0, 400)
            wins = sum(rng.random() < rng.uniform(0.3, 0.8) for _ in range(n))
            feedback.append(
                Update("ltm", keys.pattern_pk(agent), pattern_id, add={"fb_applied": n, "fb_successes": wins})
            )
    await write_batched(engine, [[op] for op in feedback], concurrency)

    # 5. the remaining signals as their rollup deltas
    sig: dict[tuple[str, str], rollups.Delta] = {}

    def add(agent: str, when: datetime, delta: rollups.Delta) -> None:
        key = (agent, keys.bucket(when, "hour"))
        sig[key] = rollups.merge(sig.get(key, {}), delta)

    for _ in range(shape.signals - shape.real_signals):
        created = start + timedelta(seconds=rng.uniform(0, span))
        expires = created + timedelta(hours=24)
        source = rng.choice(agents)
        target = rng.choice([a for a in agents if a != source])
        add(source, created, {rollups.PUBLISHED: 1})
        add(target, created, {rollups.RECEIVED: 1})
        add(target, expires, {rollups.DUE: 1})
        acked = created + timedelta(seconds=rng.uniform(1, 7200))
        if rng.random() < 0.75 and acked < now:
            add(target, created, rollups.signal_acked("processed", created, acked))
            add(target, expires, {rollups.DUE_DONE: 1})
    sig_ops: list[WriteOp] = [
        Update("state", keys.signal_rollup_pk(agent, "hour"), hour, add=delta)
        for (agent, hour), delta in sig.items()
    ]
    await write_batched(engine, [sig_ops[i : i + 100] for i in range(0, len(sig_ops), 100)] if transactions
                        else [[op] for op in sig_ops], concurrency)  # fmt: skip

    # 6. per-tool usage counters of every day
    day = start
    while day <= now:
        for tool in TOOLS:
            calls = rng.randrange(100, 5000)
            await store.add_tool_usage(
                keys.bucket(day, "day"),
                tool,
                {
                    "calls": calls,
                    "requests": calls * 3,
                    "read_units": calls * 1.5,
                    "write_units": calls * 4.0,
                },
            )
        day += timedelta(days=1)
    return real_rate, len(cells) * 2 + len(sig)


# --------------------------------------------------------------------------------------------------
# measuring
# --------------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@dataclass
class Timing:
    wall_ms: list[float]
    cpu_ms: list[float]
    used: usage.Usage


async def measure(
    store: MemoryStore, settings: Settings, now: datetime, runs: int, *, all_agents: bool
) -> Timing:
    """Wall-clock and process CPU time of ``runs`` reports (after 2 warm-ups), and the storage
    requests of one. CPU time is this process's: it includes the SQLite engine's worker thread,
    not the moto server (a child process)."""
    analytics = Analytics(store, settings, fixed(now))
    caller = Caller("bench-observer", "observer") if all_agents else Caller(agent_names(1)[0])
    with usage.metered() as used:
        report = await analytics.report(caller, window=WINDOW, all_agents=all_agents)
    assert report.totals.decisions > 0
    for _ in range(2):
        await analytics.report(caller, window=WINDOW, all_agents=all_agents)
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        await analytics.report(caller, window=WINDOW, all_agents=all_agents)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return Timing(wall, cpu, used)


def result(
    backend: str, shape: Shape, fill_seconds: float, real_rate: float, items: int, team: Timing, one: Timing
) -> Result:
    return Result(
        backend,
        shape,
        fill_seconds,
        real_rate,
        items,
        statistics.median(team.wall_ms),
        percentile(team.wall_ms, 0.95),
        statistics.median(team.cpu_ms),
        team.used.requests,
        dict(team.used.by_operation),
        statistics.median(one.wall_ms),
        statistics.median(one.cpu_ms),
        one.used.requests,
    )


async def run_sqlite(shape: Shape, runs: int, now: datetime, seed: int) -> Result:
    from agent_memory.storage.sqlite import SqliteEngine

    with tempfile.TemporaryDirectory(prefix="bench-analytics-") as tmp:
        settings = Settings(backend="sqlite", sqlite_path=Path(tmp) / "memory.db")
        engine = await SqliteEngine.open(settings.sqlite_path)
        try:
            store = MemoryStore(engine, fixed(now))
            t0 = time.perf_counter()
            real_rate, items = await fill(
                store, shape, now, seed, transactions=True, concurrency=32, real_concurrency=32
            )
            fill_seconds = time.perf_counter() - t0
            team = await measure(store, settings, now, runs, all_agents=True)
            one = await measure(store, settings, now, runs, all_agents=False)
        finally:
            await engine.close()
    return result("embedded (SQLite)", shape, fill_seconds, real_rate, items, team, one)


async def run_dynamo(shapes: Sequence[Shape], runs: int, now: datetime, seed: int) -> list[Result]:
    from agent_memory.storage.dynamodb.admin import create_tables, delete_tables
    from agent_memory.storage.dynamodb.engine import DynamoEngine

    results = []
    # moto in its own process (its CPU stays out of the bench process, and client and emulator
    # do not share one interpreter lock), started by the launcher the tests use.
    with moto_server() as endpoint:
        for i, shape in enumerate(shapes):
            settings = Settings(
                backend="dynamodb",
                dynamodb_endpoint_url=endpoint,
                aws_region="us-east-1",
                table_prefix=f"bench{i}_",
            )
            await create_tables(settings)
            engine = await DynamoEngine.open(settings)
            try:
                store = MemoryStore(engine, fixed(now))
                t0 = time.perf_counter()
                # moto's TransactWriteItems deep-copies whole tables (slow, and not thread-safe
                # under concurrency): rollup-equivalent data goes in as single updates.
                real_rate, items = await fill(
                    store, shape, now, seed, transactions=False, concurrency=8, real_concurrency=1
                )
                fill_seconds = time.perf_counter() - t0
                team = await measure(store, settings, now, runs, all_agents=True)
                one = await measure(store, settings, now, runs, all_agents=False)
            finally:
                await engine.close()
                await delete_tables(settings)
            results.append(result("DynamoDB (moto)", shape, fill_seconds, real_rate, items, team, one))
            print(f"  dynamodb N={shape.decisions}: done", file=sys.stderr)
    return results


# --------------------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------------------


def table(results: Sequence[Result], runs: int, dynamo_runs: int) -> str:
    lines = [
        "| backend | decisions (real path + rollup-equivalent) | rollup items "
        "| all agents: p50 / p95 wall (ms) | all agents: p50 CPU (ms) | all agents: requests "
        "| one agent: p50 wall / CPU (ms) | one agent: requests |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s = r.shape
        ops = ", ".join(f"{k} {v}" for k, v in sorted(r.by_operation.items()))
        lines.append(
            f"| {r.backend} | {s.decisions:,} ({s.real_writes:,} + {s.decisions - s.real_writes:,}) | "
            f"{r.rollup_items:,} | {r.p50_ms:.1f} / {r.p95_ms:.1f} | {r.cpu_p50_ms:.1f} | "
            f"{r.requests} ({ops}) | "
            f"{r.one_agent_p50_ms:.1f} / {r.one_agent_cpu_p50_ms:.1f} | {r.one_agent_requests} |"
        )
    shape = results[0].shape
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    lines += [
        "",
        f"Every dataset: {shape.agents} agents x {shape.types} decision types, decisions spread over "
        f"30 days, {shape.patterns_per_agent} patterns per agent, signals = decisions / 20 "
        "(acknowledged or left to expire), per-tool usage counters for every day. Report: 30-day "
        'window (daily decision rollups, hourly signal rollups); "all agents" = an observer\'s '
        'report over the registry (with the cost section), "one agent" = an agent\'s own report '
        f"(no cost section). Embedded: {runs} timed runs after 2 warm-ups; moto: {dynamo_runs}. "
        "CPU = CPU time of the bench process per report (includes the SQLite worker thread; moto "
        "runs in a child process and is not counted). Requests counted with `usage.metered()`. "
        "moto's latencies are not DynamoDB's: its request count is what carries over.",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} with Python {platform.python_version()} on "
        f"{os.cpu_count()} CPU cores ({platform.system()} {platform.machine()}); load average at the "
        f"end: {load}.",
    ]
    return "\n".join(lines)


def update_doc(text: str) -> None:
    doc = DOC.read_text(encoding="utf-8")
    if START not in doc or END not in doc:
        doc = doc.rstrip() + f"\n\n{START}\n{END}\n"
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{START}\n{text}\n{END}{tail}", encoding="utf-8")


def shape_for(n: int, args: argparse.Namespace, real: int) -> Shape:
    return Shape(
        decisions=n,
        agents=args.agents,
        types=args.types,
        patterns_per_agent=args.patterns,
        real_writes=min(n, real),
        signals=max(1, n // 20),
        real_signals=min(args.real_signals, max(1, n // 20)),
    )


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=1_000_000, help="decisions in the embedded store")
    parser.add_argument(
        "--dynamo-decisions",
        default="10000,100000",
        help="comma-separated N for DynamoDB-on-moto ('' to skip)",
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--dynamo-runs", type=int, default=5, help="timed runs on moto (slow emulator)")
    parser.add_argument("--agents", type=int, default=5)
    parser.add_argument("--types", type=int, default=4)
    parser.add_argument("--patterns", type=int, default=20, help="patterns per agent")
    parser.add_argument(
        "--real-writes", type=int, default=20_000, help="decisions through put_decision (SQLite)"
    )
    parser.add_argument(
        "--dynamo-real-writes", type=int, default=500, help="decisions through put_decision (moto)"
    )
    parser.add_argument("--real-signals", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write-docs", action="store_true", help=f"update {DOC.name} (default: print only)")
    args = parser.parse_args(argv)

    now = datetime.now(UTC).replace(microsecond=0)
    results = []
    shape = shape_for(args.decisions, args, args.real_writes)
    print(f"embedded: filling {shape.decisions:,} decisions ...", file=sys.stderr)
    result = await run_sqlite(shape, args.runs, now, args.seed)
    print(
        f"  filled in {result.fill_seconds:.0f} s; real path {result.real_rate:.0f} decisions/s; "
        f"{shape.decisions - shape.real_writes:,} written as rollup-equivalent data",
        file=sys.stderr,
    )
    results.append(result)
    dynamo = [int(n) for n in args.dynamo_decisions.split(",") if n.strip()]
    if dynamo:
        print(f"dynamodb (moto): N = {dynamo} ...", file=sys.stderr)
        results += await run_dynamo(
            [shape_for(n, args, args.dynamo_real_writes) for n in dynamo], args.dynamo_runs, now, args.seed
        )
    text = table(results, args.runs, args.dynamo_runs)
    print(text)
    if args.write_docs:
        update_doc(text)
        print(f"\n(written to {DOC.relative_to(DOC.parent.parent)})", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
