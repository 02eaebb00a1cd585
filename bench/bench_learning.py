"""Benchmark: consolidation (pattern learning) time for one agent and one decision type.

    python -m bench.bench_learning [--sizes 10000,100000] [--write-docs]

For each size, a fresh embedded store (SQLite, temporary directory) receives that many decisions
of one agent and one type, all with outcomes, spread over the last 6.5 days (inside the 7-day
window), with a rule planted in the contexts: decisions with ``market.trend = "bullish"`` and
``whale_count >= 5`` succeed 75 % of the time, the others 45 %. Other context fields
(volatility, source, exchange, hour) are noise.

Then ``Learner.learn_types`` runs for that agent and type (window 7 d, min_samples 20) through
the real store: it reads the decisions page by page (``MemoryStore.query_decisions``), mines rules
(``mine_rules``) and stores the patterns. Reported separately: the load (bulk insert, see
``bench.common.BulkLoader``), the read alone, the mining alone, the first learning run (which
creates the patterns) and a second run (same data: nothing changes), and the rule learned.

Section ``learning`` of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from agent_memory.memory.identity import Caller
from agent_memory.memory.learner import Learner
from agent_memory.memory.mining import Observation, mine_rules
from agent_memory.models import Pattern, utcnow
from bench.common import (
    BulkLoader,
    DecisionSpec,
    bench_settings,
    machine_note,
    markdown_table,
    open_store,
    progress,
    publish,
)

AGENT = "learner-bench"
DECISION_TYPE = "SOURCE_SELECTION"
WINDOW = timedelta(days=7)
SPREAD = timedelta(days=6, hours=12)
MIN_SAMPLES = 20
P_RULE, P_OTHER = 0.75, 0.45
PLANTED = 'market.trend = "bullish" and whale_count >= 5'


@dataclass
class Result:
    decisions: int
    load_s: float = 0.0
    verified: int = 0
    read_s: float = 0.0
    mine_s: float = 0.0
    learn_s: float = 0.0
    relearn_s: float = 0.0
    examined: int = 0
    created: list[Pattern] = field(default_factory=list)
    relearn_unchanged: int = 0
    relearn_created: int = 0
    relearn_updated: int = 0


def planted(trend: str, whales: int) -> bool:
    return trend == "bullish" and whales >= 5


async def load(path: Path, n: int, seed: int) -> tuple[float, int]:
    async with open_store("sqlite", sqlite_path=path):
        pass
    rng = random.Random(seed)
    loader = BulkLoader(path)
    now = utcnow()
    start = now - SPREAD
    step = SPREAD / n
    t0 = time.perf_counter()
    for i in range(n):
        trend = rng.choice(("bullish", "bearish", "sideways"))
        whales = rng.randrange(0, 11)  # 0..10: the median (a mining threshold) is 5
        success = rng.random() < (P_RULE if planted(trend, whales) else P_OTHER)
        await loader.add(
            DecisionSpec(
                agent_id=AGENT,
                decision_type=DECISION_TYPE,
                created_at=start + step * i,
                context={
                    "market": {"trend": trend, "volatility": round(rng.uniform(0.05, 0.9), 3)},
                    "whale_count": whales,
                    "source": rng.choice(
                        ("whaleMovements", "orderBook", "socialSentiment", "onChain", "news")
                    ),
                    "exchange": rng.choice(("binance", "coinbase", "kraken", "okx")),
                    "hour": rng.randrange(24),
                },
                reasoning={
                    "chosen": rng.choice(("whaleMovements", "orderBook")),
                    "score": round(rng.random(), 3),
                },
                success=success,
                quality=rng.choice((0.25, 0.5, 0.75, 1.0)),
                latency_ms=round(rng.lognormvariate(6, 1), 1),
            )
        )
    loader.finish()
    return time.perf_counter() - t0, loader.verified


async def learn_twice(path: Path, result: Result) -> None:
    """The first learning run (creates the patterns) and a second one (must change nothing)."""
    caller = Caller(AGENT)
    async with open_store("sqlite", sqlite_path=path) as store:
        learner = Learner(store, bench_settings(), utcnow)
        t0 = time.perf_counter()
        first = await learner.learn_types(
            caller, decision_type=DECISION_TYPE, window=WINDOW, min_samples=MIN_SAMPLES
        )
        result.learn_s = time.perf_counter() - t0
        progress(f"{result.decisions:,}: learning (second run)")
        t0 = time.perf_counter()
        second = await learner.learn_types(
            caller, decision_type=DECISION_TYPE, window=WINDOW, min_samples=MIN_SAMPLES
        )
        result.relearn_s = time.perf_counter() - t0
    result.examined = sum(r.decisions_examined for r in first)
    result.created = [p for r in first for p in r.created]
    result.relearn_unchanged = sum(r.unchanged for r in second)
    result.relearn_created = sum(len(r.created) for r in second)
    result.relearn_updated = sum(len(r.updated) for r in second)


async def run_size(workdir: Path, n: int, seed: int) -> Result:
    result = Result(n)
    path = workdir / f"learn-{n}" / "memory.db"
    path.parent.mkdir()
    progress(f"{n:,}: loading")
    result.load_s, result.verified = await load(path, n, seed)
    async with open_store("sqlite", sqlite_path=path) as store:
        learner = Learner(store, bench_settings(), utcnow)
        progress(f"{n:,}: reading alone")
        t0 = time.perf_counter()
        decisions = await learner._decisions(AGENT, DECISION_TYPE, utcnow() - WINDOW)
        result.read_s = time.perf_counter() - t0
        assert len(decisions) == n, (len(decisions), n)
        observations = [Observation(d.context, bool(d.outcome and d.outcome.success)) for d in decisions]
        progress(f"{n:,}: mining alone")
        t0 = time.perf_counter()
        mine_rules(observations, min_samples=MIN_SAMPLES)
        result.mine_s = time.perf_counter() - t0
        del decisions, observations
    progress(f"{n:,}: learning (first run)")
    await learn_twice(path, result)
    return result


def rule_text(p: Pattern) -> str:
    parts = []
    for c in p.conditions:
        value = f'"{c.value}"' if isinstance(c.value, str) else c.value
        op = {"eq": "=", "gte": ">=", "lt": "<", "gt": ">", "lte": "<=", "ne": "!="}.get(c.op, c.op)
        parts.append(f"{c.field} {op} {value}")
    return " and ".join(parts)


def tables(results: Sequence[Result]) -> str:
    rows = [
        [
            f"{r.decisions:,}",
            f"{r.load_s:.1f}",
            f"{r.read_s:.2f}",
            f"{r.mine_s:.2f}",
            f"{r.learn_s:.2f}",
            f"{r.relearn_s:.2f}",
            f"{len(r.created)} created; rerun: {r.relearn_unchanged} unchanged, "
            f"{r.relearn_created} created, {r.relearn_updated} updated",
        ]
        for r in results
    ]
    timing = markdown_table(
        [
            "decisions in window",
            "load s",
            "read s",
            "mine s",
            "learn_types s (1st run)",
            "learn_types s (2nd run)",
            "patterns",
        ],
        rows,
        "rrrrrrl",
    )
    rule_rows: list[list[object]] = []
    for r in results:
        for rank, p in enumerate(sorted(r.created, key=lambda p: -p.confidence)[:3], start=1):
            text = rule_text(p)
            rule_rows.append(
                [
                    f"{r.decisions:,}",
                    rank,
                    f"`{text}`" + (" (planted)" if text == PLANTED else ""),
                    f"{p.success_rate:.3f}",
                    f"{p.confidence:.3f}",
                    f"{p.sample_size:,}",
                    f"{p.stats.get('baseline_rate', 0):.3f}",
                ]
            )
    rules = markdown_table(
        ["decisions", "rank", "learned rule", "success rate", "confidence", "n", "rate otherwise"],
        rule_rows,
        "rrlrrrr",
    )
    return timing + "\n\nLearned patterns (top 3 by confidence):\n\n" + rules


async def run(sizes: Sequence[int], seed: int) -> str:
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-learning-") as tmp:
        for k, n in enumerate(sizes):
            results.append(await run_size(Path(tmp), n, seed + k))
    notes = [
        f"{machine_note()} One run per size (each learning run takes seconds; the 2nd run re-learns the "
        "same data, which must change nothing).",
        "",
        f"- One agent, one decision type, every decision with an outcome, spread over the last 6.5 days; "
        f"window 7 d, min_samples {MIN_SAMPLES}. Planted rule: `{PLANTED}` succeeds {P_RULE:.0%}, "
        f"everything else {P_OTHER:.0%}; volatility, source, exchange and hour are noise.",
        "- load: each decision logged through `Memory.log_decision` on an engine that captures the writes, "
        "which are then inserted in large transactions (bench/common.py `BulkLoader`; a sample is also "
        "written by a real engine and compared byte for byte). read: `Learner._decisions` alone "
        "(`MemoryStore.query_decisions`, pages of 500, decoded into `Decision` models). mine: `mine_rules` "
        "alone on those observations. learn_types: the whole consolidation (read + mine + store patterns) "
        "through the real store on SQLite.",
        "- Sample check of the loader: "
        + ", ".join(
            f"{r.verified} of {r.decisions:,} decisions identical to the store's own write" for r in results
        )
        + ".",
    ]
    return tables(results) + "\n\n" + "\n".join(notes)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated decision counts")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--write-docs", action="store_true", help="update the docs (default: print only)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    publish("learning", asyncio.run(run(sizes, args.seed)), write=args.write_docs)


if __name__ == "__main__":
    main()
