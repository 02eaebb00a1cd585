"""Benchmark: do the hot operations of the embedded store stay flat as the memory grows?

    python -m bench.bench_scale [--large 1000000] [--small 1000] [--iterations 200] [--write-docs]

Two SQLite stores are filled, one with ``--small`` decisions and one with ``--large``, spread over
4 agents, 3 decision types and the last 60 days (70 % with an outcome). Then the hot operations run
through ``Memory`` on both, in rounds (one call of each operation per round on each store,
alternating which store goes first), so both sizes see the same noise: log_decision, get_decision
(a random decision of the agent from anywhere in the 60 days), recall_stm, a search_decisions page
(20 decisions of one type, newest first from 30 days ago: a seek into the middle of history),
read_inbox (5 pending), update_state, recall_patterns (with a context). The table gives p50/p95 at
each size and the ratio of the p50s (target: large/small <= 1.2x).

Loading: decisions are bulk-inserted (see ``bench.common.BulkLoader``): each is logged through
``Memory.log_decision`` on an engine that captures the store's writes; the captured items become
rows with the SQLite engine's row builder, the captured rollup and quota-counter updates are
applied with its update semantics; a sample is also logged on a real engine and must be
byte-identical. Signals, patterns and state go through ``Memory``. The databases live in a
temporary directory, deleted at the end.

Section ``scale`` of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from agent_memory.memory.identity import Caller
from agent_memory.memory.service import Memory
from agent_memory.models import PatternCondition, utcnow
from agent_memory.storage.store import MemoryStore
from bench.common import (
    BulkLoader,
    DecisionSpec,
    Samples,
    bench_settings,
    fmt_ms,
    machine_note,
    markdown_table,
    open_store,
    progress,
    publish,
)

AGENTS = ("bench", "agent-2", "agent-3", "agent-4")
TYPES = ("SOURCE_SELECTION", "RISK_ASSESSMENT", "POSITION_SIZING")
ME = AGENTS[0]
DAYS = 60
OUTCOME_SHARE = 0.7
OPS = (
    "log_decision",
    "get_decision",
    "recall_stm",
    "search_decisions",
    "read_inbox",
    "update_state",
    "recall_patterns",
)
TARGET_RATIO = 1.2
SAMPLED_IDS = 2000


def context_of(rng: random.Random, i: int) -> dict[str, Any]:
    return {
        "market": {
            "trend": rng.choice(("bullish", "bearish", "sideways")),
            "volatility": round(rng.uniform(0.05, 0.9), 3),
        },
        "whale_count": rng.randrange(0, 15),
        "cycle": i,
        "sources": rng.sample(["whaleMovements", "orderBook", "socialSentiment", "onChain"], 2),
    }


def reasoning_of(rng: random.Random) -> dict[str, Any]:
    return {"chosen": rng.choice(("whaleMovements", "orderBook")), "score": round(rng.random(), 3)}


@dataclass
class Dataset:
    label: str
    decisions: int
    path: Path
    load_seconds: float = 0.0
    verified: int = 0
    file_mb: float = 0.0
    sample_ids: list[str] = field(default_factory=list)


async def load(ds: Dataset, now: datetime, seed: int) -> None:
    """Create the file (schema) and bulk-load ``ds.decisions`` decisions."""
    async with open_store("sqlite", sqlite_path=ds.path):
        pass
    rng = random.Random(seed)
    loader = BulkLoader(ds.path)
    start = now - timedelta(days=DAYS)
    step = timedelta(days=DAYS) / ds.decisions
    reservoir: list[str] = []
    seen_mine = 0
    t0 = time.perf_counter()
    for i in range(ds.decisions):
        created = start + step * i + step * rng.random() * 0.9
        agent = AGENTS[i % len(AGENTS)]
        success = rng.random() < 0.6 if rng.random() < OUTCOME_SHARE else None
        decision_id = await loader.add(
            DecisionSpec(
                agent_id=agent,
                decision_type=TYPES[(i // len(AGENTS)) % len(TYPES)],
                created_at=created,
                context=context_of(rng, i),
                reasoning=reasoning_of(rng),
                success=success,
                quality=rng.choice((0.25, 0.5, 0.75, 1.0)) if success is not None else None,
                latency_ms=round(rng.lognormvariate(6, 1), 1) if success is not None else None,
            )
        )
        if agent == ME:
            # Reservoir sample of the agent's decision ids, for get_decision.
            seen_mine += 1
            if len(reservoir) < SAMPLED_IDS:
                reservoir.append(decision_id)
            elif (j := rng.randrange(seen_mine)) < SAMPLED_IDS:
                reservoir[j] = decision_id
        if (i + 1) % 100_000 == 0:
            rate = (i + 1) / (time.perf_counter() - t0)
            progress(f"{ds.label}: {i + 1:,}/{ds.decisions:,} decisions ({rate:,.0f}/s)")
    loader.finish()
    ds.load_seconds = time.perf_counter() - t0
    ds.verified = loader.verified
    ds.sample_ids = reservoir
    ds.file_mb = sum(p.stat().st_size for p in ds.path.parent.glob(ds.path.name + "*")) / 1e6


class Target:
    """One loaded store, seeded through ``Memory``, and what the rounds pass between ops."""

    def __init__(self, ds: Dataset, store: MemoryStore, seed: int) -> None:
        self.ds = ds
        self.memory = Memory(store, bench_settings(), utcnow)
        self.me = Caller(ME)
        self.rng = random.Random(seed)
        self.samples = Samples()
        self.version = 0

    async def seed(self) -> None:
        m = self.memory
        for agent in AGENTS:
            await m.register(Caller(agent))
        for i in range(5):
            await m.publish_signal(
                Caller(AGENTS[1]),
                signal_type="WHALE_ACTIVITY",
                data={"whale_count": 5 + i},
                target_agents=[ME],
                confidence=0.8,
            )
        for i in range(8):
            await m.store_pattern(
                self.me,
                description=f"bullish with >= {i} whales",
                conditions=[
                    PatternCondition(field="market.trend", op="eq", value="bullish"),
                    PatternCondition(field="whale_count", op="gte", value=i),
                ],
                outcomes={},
                confidence=0.5 + i / 40,
                success_rate=0.7,
                sample_size=100,
                decision_type=TYPES[0],
            )
        for i in range(4):
            await m.store_pattern(
                Caller(AGENTS[1]),
                description=f"shared rule {i}",
                conditions=[PatternCondition(field="market.volatility", op="lt", value=0.5)],
                outcomes={},
                confidence=0.4 + i / 20,
                success_rate=0.6,
                sample_size=50,
                shared_with=["*"],
            )

    def ops(self, i: int) -> dict[str, Callable[[], Awaitable[Any]]]:
        m, me, rng = self.memory, self.me, self.rng
        ctx = context_of(rng, i)
        until = utcnow() - timedelta(days=DAYS // 2)

        async def update_state() -> None:
            self.version = (await m.update_state(me, {"current": {"cycle": i}}, self.version)).version

        return {
            "log_decision": lambda: m.log_decision(me, TYPES[0], context=ctx, reasoning=reasoning_of(rng)),
            "get_decision": lambda: m.get_decision(me, rng.choice(self.ds.sample_ids)),
            "recall_stm": lambda: m.recall_stm(me, limit=10),
            "search_decisions": lambda: m.search_decisions(me, decision_type=TYPES[0], until=until, limit=20),
            "read_inbox": lambda: m.read_inbox(me, limit=10),
            "update_state": update_state,
            "recall_patterns": lambda: m.recall_patterns(me, context=ctx, decision_type=TYPES[0]),
        }


async def measure(targets: Sequence[Target], iterations: int, warmup: int) -> None:
    total = warmup + iterations
    for i in range(total):
        ops = [t.ops(i) for t in targets]
        for name in OPS:
            order = range(len(targets)) if i % 2 == 0 else reversed(range(len(targets)))
            for k in order:
                result = await targets[k].samples.time(name, ops[k][name](), record=i >= warmup)
                if name == "search_decisions":
                    assert len(result.items) == 20, (targets[k].ds.label, len(result.items))
        if (i + 1) % 50 == 0:
            progress(f"round {i + 1}/{total}")


def table(small: Target, large: Target) -> str:
    rows: list[list[object]] = []
    for op in OPS:
        s, lg = small.samples.summary(op), large.samples.summary(op)
        ratio = lg.p50_ms / s.p50_ms
        verdict = "ok" if ratio <= TARGET_RATIO else f"MISS (> {TARGET_RATIO}x)"
        rows.append(
            [
                op,
                fmt_ms(s.p50_ms),
                fmt_ms(s.p95_ms),
                fmt_ms(lg.p50_ms),
                fmt_ms(lg.p95_ms),
                f"{ratio:.2f}x",
                verdict,
            ]
        )
    n_small, n_large = f"{small.ds.decisions:,}", f"{large.ds.decisions:,}"
    return markdown_table(
        [
            "op",
            f"p50 ms @ {n_small}",
            f"p95 ms @ {n_small}",
            f"p50 ms @ {n_large}",
            f"p95 ms @ {n_large}",
            "p50 large/small",
            f"target <= {TARGET_RATIO}x",
        ],
        rows,
        "lrrrrrl",
    )


async def run(small_n: int, large_n: int, iterations: int, warmup: int, seed: int) -> str:
    now = utcnow()
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        datasets = [
            Dataset("small", small_n, Path(tmp) / "small" / "memory.db"),
            Dataset("large", large_n, Path(tmp) / "large" / "memory.db"),
        ]
        for k, ds in enumerate(datasets):
            ds.path.parent.mkdir()
            progress(f"{ds.label}: loading {ds.decisions:,} decisions")
            await load(ds, now, seed + k)
            progress(f"{ds.label}: loaded in {ds.load_seconds:.0f} s, {ds.file_mb:,.0f} MB")
        targets: list[Target] = []
        stores = [open_store("sqlite", sqlite_path=ds.path) for ds in datasets]
        async with stores[0] as small_store, stores[1] as large_store:
            for k, (ds, store) in enumerate(zip(datasets, (small_store, large_store), strict=True)):
                target = Target(ds, store, seed + 10 + k)
                await target.seed()
                targets.append(target)
            await measure(targets, iterations, warmup)
    small, large = targets
    load_lines = [
        f"- {t.ds.label}: {t.ds.decisions:,} decisions loaded in {t.ds.load_seconds:.0f} s, "
        f"{t.ds.file_mb:,.1f} MB on disk ({t.ds.file_mb * 1e6 / t.ds.decisions:,.0f} bytes per decision); "
        f"{t.ds.verified} of them also logged on a real engine and their rows compared: byte-identical."
        for t in targets
    ]
    notes = [
        f"{machine_note()} {iterations} rounds after {warmup} warm-up rounds; each round calls every "
        "operation once on each store, alternating which store goes first, so the ratio is measured "
        "within one run under the same noise.",
        "",
        f"- Data: decisions spread over {len(AGENTS)} agents x {len(TYPES)} types and the last {DAYS} "
        f"days, {OUTCOME_SHARE:.0%} with an outcome; the measured agent holds a quarter of them. "
        "Each store also has 5 pending signals, 8 own + 4 shared patterns (through `Memory`).",
        "- Operations through `Memory` on the embedded store (SQLite, local temp directory). get_decision: "
        "a random decision of the agent from the whole 60 days; search_decisions: a page of 20 of one type, "
        "newest first from 30 days ago.",
        "- Loading (not timed with the operations): every decision goes through `Memory.log_decision` "
        "(validation, the store's item builders, the quota charge) on an engine that captures its "
        "transaction; the captured items become rows with the SQLite engine's own row builder, inserted "
        "in large transactions; the captured rollup and quota-counter updates are applied with the "
        "engine's update semantics (quota conditions checked), so the quota counters count every loaded "
        "decision. A sample is also logged on a real engine; its rows must be byte-identical.",
        *load_lines,
    ]
    return table(small, large) + "\n\n" + "\n".join(notes)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--small", type=int, default=1000, help="decisions in the small store (default 1000)")
    parser.add_argument(
        "--large",
        type=int,
        default=100_000,
        help="decisions in the large store (default 100000; docs: 1000000)",
    )
    parser.add_argument("--iterations", type=int, default=200, help="timed rounds (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed rounds first (default 20)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--write-docs", action="store_true", help="update the docs (default: print only)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    markdown = asyncio.run(run(args.small, args.large, args.iterations, args.warmup, args.seed))
    markdown += f"\n- Whole run (loading both stores and measuring): {time.perf_counter() - started:.0f} s."
    publish("scale", markdown, write=args.write_docs)


if __name__ == "__main__":
    main()
