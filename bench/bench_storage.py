"""Benchmark: per-operation latency and storage cost of the memory's hot operations.

    python -m bench.bench_storage [--iterations 200] [--warmup 20] [--write-docs]

Each operation goes through the domain service (``Memory``) and the typed store (``MemoryStore``),
the real write path of the tools, on two backends opened side by side:

- the embedded store (SQLite, a file in a temporary directory);
- DynamoDB emulated by a moto server (server mode, in its own process), on fresh tables.

Operations: log_decision (put), get_decision (by id), recall_stm (the STM query: decisions of the
last 24 h + notes + pending count), read_inbox (with a few pending signals), record_outcome,
publish_signal (3 targets), ack_signal, update_state, recall_patterns (with a context). They run in
rounds - one of each per round, both backends in the same round - so noise on this shared machine
falls on every row alike. Per operation: p50/p95 latency, and from ``usage.metered()`` the storage
requests and read/write request units. For DynamoDB the units are computed by the engine from
item sizes by DynamoDB's published rules (moto's own ConsumedCapacity is not faithful); the SQLite
engine counts requests and reports no units.

Section ``storage`` of docs/BENCHMARKS.md; the measured source of docs/DYNAMODB.md's "requests per
call" column.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_memory.memory.identity import Caller
from agent_memory.memory.service import Memory
from agent_memory.models import Outcome, PatternCondition, utcnow
from agent_memory.storage import usage
from agent_memory.storage.store import MemoryStore
from bench.common import (
    Backend,
    Samples,
    bench_settings,
    fmt_ms,
    fmt_num,
    machine_note,
    markdown_table,
    moto_server,
    now_ns,
    open_store,
    progress,
    publish,
)

OPS = (
    "log_decision",
    "get_decision",
    "recall_stm",
    "read_inbox",
    "record_outcome",
    "publish_signal",
    "ack_signal",
    "update_state",
    "recall_patterns",
)
BACKEND_LABEL: dict[Backend, str] = {"dynamodb": "DynamoDB (moto)", "sqlite": "SQLite"}
DECISION_TYPE = "SOURCE_SELECTION"
ME, PEERS = "bench", ("peer-1", "peer-2", "peer-3")
PENDING_SIGNALS = 5
OWN_PATTERNS, SHARED_PATTERNS = 8, 4


@dataclass
class Cost:
    """Storage use of one operation, summed over its recorded calls."""

    calls: int = 0
    requests: int = 0
    read_units: float = 0.0
    write_units: float = 0.0
    by_operation: Counter[str] = field(default_factory=Counter)
    request_counts: set[int] = field(default_factory=set)

    def add(self, used: usage.Usage) -> None:
        self.calls += 1
        self.requests += used.requests
        self.read_units += used.read_units
        self.write_units += used.write_units
        self.by_operation.update(used.by_operation)
        self.request_counts.add(used.requests)


def context_of(i: int) -> dict[str, Any]:
    trends = ("bullish", "bearish", "sideways")
    return {
        "market": {"trend": trends[i % 3], "volatility": round(0.1 + (i % 7) / 10, 2)},
        "whale_count": i % 12,
        "cycle": i,
        "sources": ["whaleMovements", "orderBook"],
    }


class Workload:
    """One backend's store, the agents acting on it, and what the rounds hand from op to op."""

    def __init__(self, backend: Backend, store: MemoryStore) -> None:
        self.backend = backend
        self.store = store
        self.memory = Memory(store, bench_settings(), utcnow)
        self.me = Caller(ME)
        self.peer = Caller(PEERS[0])
        self.samples = Samples()
        self.costs: dict[str, Cost] = {op: Cost() for op in OPS}
        self.decision_id = ""
        self.signal_id = ""
        self.state_version = 0

    async def setup(self) -> None:
        """Agents registered, a few pending signals for ``bench``, patterns (own and shared),
        some recent decisions (so recall_stm returns a full page)."""
        m = self.memory
        for agent in (ME, *PEERS):
            await m.register(Caller(agent))
        for i in range(PENDING_SIGNALS):
            await m.publish_signal(
                Caller(PEERS[1]),
                signal_type="WHALE_ACTIVITY",
                data={"whale_count": 5 + i, "exchange": "binance"},
                target_agents=[ME],
                confidence=0.8,
                severity="high",
            )
        for i in range(OWN_PATTERNS):
            await m.store_pattern(
                self.me,
                description=f"bullish markets with >= {i} whales favour whale sources",
                conditions=[
                    PatternCondition(field="market.trend", op="eq", value="bullish"),
                    PatternCondition(field="whale_count", op="gte", value=i),
                ],
                outcomes={"success_rate": 0.7},
                confidence=0.5 + i / 40,
                success_rate=0.7,
                sample_size=100 + i,
                decision_type=DECISION_TYPE,
                domain="trading",
            )
        for i in range(SHARED_PATTERNS):
            await m.store_pattern(
                Caller(PEERS[1]),
                description=f"shared rule {i}",
                conditions=[PatternCondition(field="market.volatility", op="lt", value=0.5 + i / 10)],
                outcomes={"success_rate": 0.6},
                confidence=0.4 + i / 20,
                success_rate=0.6,
                sample_size=50,
                decision_type=DECISION_TYPE,
                domain="trading",
                shared_with=["*"],
            )
        for i in range(20):
            await m.log_decision(self.me, DECISION_TYPE, context=context_of(i), reasoning={"seed": i})

    async def _op(self, name: str, call: Callable[[], Awaitable[Any]], record: bool) -> Any:
        with usage.metered() as used:
            start = now_ns()
            try:
                result = await call()
            except Exception as exc:
                raise RuntimeError(f"{name} failed on {BACKEND_LABEL[self.backend]}: {exc!r}") from exc
            elapsed = now_ns() - start
        if record:
            self.samples.add(name, elapsed)
            self.costs[name].add(used)
        return result

    async def round(self, i: int, *, record: bool) -> None:
        m, me = self.memory, self.me
        ctx = context_of(i)
        decision, _ = await self._op(
            "log_decision",
            lambda: m.log_decision(
                me, DECISION_TYPE, context=ctx, reasoning={"chosen": "whaleMovements", "score": 0.82}
            ),
            record,
        )
        await self._op("get_decision", lambda: m.get_decision(me, decision.decision_id), record)
        await self._op("recall_stm", lambda: m.recall_stm(me, limit=10), record)
        page = await self._op("read_inbox", lambda: m.read_inbox(me, limit=10), record)
        assert len(page.items) == PENDING_SIGNALS, len(page.items)
        outcome = Outcome(success=i % 3 != 0, quality_score=0.75, latency_ms=1200.0)
        # As the tool does: without reading the decision back (code before #14's writes work read it).
        attach = getattr(m, "attach_outcome", m.record_outcome)
        await self._op("record_outcome", lambda: attach(me, decision.decision_id, outcome), record)
        published = await self._op(
            "publish_signal",
            lambda: m.publish_signal(
                me,
                signal_type="WHALE_ACTIVITY",
                data={"whale_count": ctx["whale_count"], "exchange": "binance"},
                target_agents=list(PEERS),
                confidence=0.85,
                severity="high",
                recommended_action="MONITOR_CLOSELY",
            ),
            record,
        )
        signal_id = published.signal_id
        await self._op(
            "ack_signal",
            lambda: m.ack_signal(self.peer, signal_id, "processed"),
            record,
        )
        state = await self._op(
            "update_state",
            lambda: m.update_state(me, {"current": {"cycle": i, "mode": "hunting"}}, self.state_version),
            record,
        )
        self.state_version = state.version
        found = await self._op(
            "recall_patterns",
            lambda: m.recall_patterns(me, context=ctx, decision_type=DECISION_TYPE, limit=10),
            record,
        )
        assert isinstance(found, list)


def table(workloads: Sequence[Workload]) -> str:
    rows: list[list[object]] = []
    for op in OPS:
        for w in workloads:
            s = w.samples.summary(op)
            c = w.costs[op]
            per = c.requests / c.calls
            varies = (
                "" if len(c.request_counts) == 1 else f" ({min(c.request_counts)}-{max(c.request_counts)})"
            )
            mix = ", ".join(f"{fmt_num(n / c.calls)} {name}" for name, n in sorted(c.by_operation.items()))
            units = w.backend == "dynamodb"
            rows.append(
                [
                    op,
                    BACKEND_LABEL[w.backend],
                    fmt_ms(s.p50_ms),
                    fmt_ms(s.p95_ms),
                    fmt_num(per) + varies,
                    fmt_num(c.read_units / c.calls) if units else "-",
                    fmt_num(c.write_units / c.calls) if units else "-",
                    mix,
                ]
            )
    return markdown_table(
        ["op", "backend", "p50 ms", "p95 ms", "requests/op", "RRU/op", "WRU/op", "requests by API (per op)"],
        rows,
        "llrrrrrl",
    )


async def run(iterations: int, warmup: int, in_process_moto: bool) -> str:
    with (
        tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp,
        moto_server(in_process=in_process_moto) as url,
    ):
        async with AsyncExitStack() as stack:
            workloads = []
            for backend in ("dynamodb", "sqlite"):
                store = await stack.enter_async_context(open_store(backend, workdir=Path(tmp), endpoint=url))
                workloads.append(Workload(backend, store))
            for w in workloads:
                progress(f"{BACKEND_LABEL[w.backend]}: seeding")
                await w.setup()
            total = warmup + iterations
            for i in range(total):
                # Alternate which backend goes first, so neither always follows the other.
                order = workloads if i % 2 == 0 else workloads[::-1]
                for w in order:
                    await w.round(i, record=i >= warmup)
                if (i + 1) % 50 == 0:
                    progress(f"round {i + 1}/{total}")
    moto_mode = "in-process ThreadedMotoServer" if in_process_moto else "moto server in its own process"
    notes = [
        f"{machine_note()} {iterations} rounds after {warmup} warm-up rounds; one call of each operation "
        "per round on each backend, interleaved (the ratio of two rows is measured in the same run).",
        "",
        "- Through `Memory` + `MemoryStore` (the tools' write path, without MCP). Requests and units "
        "from `usage.metered()` around each call, averaged per call; a range in brackets means the "
        "count varied between calls.",
        f"- DynamoDB: {moto_mode}, fresh tables. Latencies are moto's (a Python emulator on this machine), "
        "not DynamoDB's - moto deep-copies every table a TransactWriteItems touches, so its transactional "
        "writes slow down as the tables grow during the run; the request counts and units are what carries "
        "over. RRU/WRU are computed by the "
        "engine from item sizes by DynamoDB's rules (1 RRU per 4 KB strongly consistent read, half that "
        "eventually consistent; 1 WRU per 1 KB written; both doubled in transactions). WRU of an update "
        "inside a transaction are a lower bound: the engine sizes it by the attributes it sends, DynamoDB "
        "bills the larger of the whole item before and after (rollup counters, a signal's delivery "
        "statuses, pattern feedback counters).",
        "- SQLite: the embedded store on a local file; the engine reports requests, not units.",
        f"- Workload: `bench` has {PENDING_SIGNALS} pending signals (read_inbox), {OWN_PATTERNS} own and "
        f"{SHARED_PATTERNS} shared patterns (recall_patterns with a context), 20+ decisions in the last 24 h "
        "(recall_stm: a page of 10, notes, pending count). Each round logs a decision, reads it back "
        "by id, records its outcome; publishes a signal to 3 agents (one of which acks it), and updates "
        "the state with the version it last wrote.",
    ]
    return table(workloads) + "\n\n" + "\n".join(notes)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=200, help="timed rounds (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed rounds first (default 20)")
    parser.add_argument(
        "--in-process-moto", action="store_true", help="moto in a thread of this process (as the tests)"
    )
    parser.add_argument("--write-docs", action="store_true", help="update the docs (default: print only)")
    args = parser.parse_args(argv)
    markdown = asyncio.run(run(args.iterations, args.warmup, args.in_process_moto))
    publish("storage", markdown, write=args.write_docs)


if __name__ == "__main__":
    main()
