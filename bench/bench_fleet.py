"""Scale-out: N stateless `agent-memory serve --transport http` processes on one DynamoDB (DynamoDB
Local on loopback), agents spread across them, each running decision cycles over MCP.

Per run it checks that no record was lost or duplicated (every acknowledged decision is stored once,
and the rollup counters match), and measures: calls/s, call latency, server CPU per call (from
/proc, summed over the instances), and DynamoDB requests and capacity units per call (from the
servers' own usage counters, flushed at shutdown). It then sizes the items each decision writes, to
name the hot keys and the rate at which each reaches DynamoDB's per-partition limits, and prices
10, 100 and 1,000 agents. Results go to docs/SCALING.md (section ``fleet``).

    python -m bench.bench_fleet --endpoint http://127.0.0.1:8000   # a running DynamoDB Local
    python -m bench.bench_fleet                                    # starts one (tests/fixtures/emulators.py)
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from tests.fixtures.http_server import free_port, wait_listening

from agent_memory import rollups
from agent_memory.config import Settings
from agent_memory.models import utcnow
from agent_memory.storage import keys
from agent_memory.storage.dynamodb.admin import create_tables, delete_tables
from agent_memory.storage.dynamodb.codec import item_size
from agent_memory.storage.dynamodb.engine import DynamoEngine
from agent_memory.storage.store import DecisionQuery, MemoryStore
from bench.common import FAKE_AWS_ENV, machine_note, markdown_table, write_section

DOC = Path(__file__).resolve().parent.parent / "docs" / "SCALING.md"
TICKS = os.sysconf("SC_CLK_TCK")
PARTITION_WCU = 1000
PARTITION_RCU = 3000
CYCLE_TOOLS = ("recall_stm", "log_decision", "record_outcome")
HEADERS = [
    "instances", "agents", "calls", "calls/s", "p50 ms", "p99 ms", "server CPU ms/call",
    "of which, by instance", "lost", "duplicated", "rollup off by",
]  # fmt: skip


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


@dataclass
class Run:
    instances: int
    agents: int
    cycles: int
    wall_s: float = 0.0
    calls: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    usage: dict[str, dict[str, float]] = field(default_factory=dict)
    lost: int = 0
    duplicated: int = 0
    rollup_mismatch: int = 0
    sizes: dict[str, float] = field(default_factory=dict)


Server = tuple[str, "subprocess.Popen[bytes]"]


@contextmanager
def servers(
    n: int, env: dict[str, str], tokens_file: Path
) -> Iterator[list[tuple[str, subprocess.Popen[bytes]]]]:
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for _ in range(n):
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "agent_memory.cli", "serve", "--transport", "http",
                 "--port", str(port), "--tokens-file", str(tokens_file)],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )  # fmt: skip
            procs.append((f"http://127.0.0.1:{port}/mcp", proc))
        for url, proc in procs:
            wait_listening(int(url.rsplit(":", 1)[1].split("/")[0]), proc, timeout=60.0)
        yield procs
    finally:
        for _, proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # graceful: the usage counters are flushed at shutdown
        for _, proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


async def _agent(url: str, token: str, agent: str, cycles: int, run: Run) -> None:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):

        async def call(tool: str, **args: Any) -> Any:
            start = time.perf_counter()
            result = await client.call_tool(tool, args)
            run.latencies_ms.append((time.perf_counter() - start) * 1000)
            run.calls += 1
            if result.is_error:
                raise RuntimeError(f"{agent} {tool}: {result.content}")
            return result.structured_content

        for k in range(cycles):
            await call("recall_stm")
            decision_id = f"{agent}-{k}"
            await call(
                "log_decision", decision_type=("ENTRY", "EXIT")[k % 2], decision_id=decision_id,
                context={"cycle": k, "market": {"trend": "up", "volatility": 0.12}, "sources": ["a", "b"]},
                reasoning={"why": "trend and volume agree", "alternatives": ["wait"]},
            )  # fmt: skip
            await call(
                "record_outcome",
                decision_id=decision_id,
                success=k % 3 != 0,
                quality_score=0.7,
                latency_ms=250,
            )


async def measure(endpoint: str, instances: int, agents: int, cycles: int, workdir: Path) -> Run:
    from agent_memory.server.auth import add_token

    run = Run(instances, agents, cycles)
    prefix = f"fleet{uuid.uuid4().hex[:6]}_"
    settings = Settings(
        backend="dynamodb", dynamodb_endpoint_url=endpoint, table_prefix=prefix, aws_region="us-east-1"
    )
    await create_tables(settings)
    tokens_file = workdir / f"tokens-{prefix}.json"
    names = [f"agent-{i:03d}" for i in range(agents)]
    tokens = {name: add_token(tokens_file, name, "agent") for name in names}
    env = {
        **os.environ, **FAKE_AWS_ENV,
        "AGENT_MEMORY_BACKEND": "dynamodb", "AGENT_MEMORY_DYNAMODB_ENDPOINT_URL": endpoint,
        "AGENT_MEMORY_TABLE_PREFIX": prefix, "AGENT_MEMORY_AWS_REGION": "us-east-1",
    }  # fmt: skip
    try:
        with servers(instances, env, tokens_file) as procs:
            before = [_cpu_seconds(p.pid) for _, p in procs]
            start = time.perf_counter()
            await asyncio.gather(
                *(_agent(procs[i % instances][0], tokens[n], n, cycles, run) for i, n in enumerate(names))
            )
            run.wall_s = time.perf_counter() - start
            run.cpu_s = [_cpu_seconds(p.pid) - b for (_, p), b in zip(procs, before, strict=True)]
        await _verify(settings, names, cycles, run)
    finally:
        await delete_tables(settings, wait=False)
    return run


async def _verify(settings: Settings, names: Sequence[str], cycles: int, run: Run) -> None:
    engine = await DynamoEngine.open(settings)
    try:
        store = MemoryStore(engine, utcnow)
        for name in names:
            seen: list[str] = []
            cursor = None
            while True:
                page = await store.query_decisions(DecisionQuery(agent_id=name), limit=100, cursor=cursor)
                seen += [d.decision_id for d in page.items]
                if not (cursor := page.next_cursor):
                    break
            expected = {f"{name}-{k}" for k in range(cycles)}
            run.lost += len(expected - set(seen))
            run.duplicated += len(seen) - len(set(seen))
            day = keys.bucket(utcnow(), "day")
            rows = await store.query_rollups(name, "day", day, day)
            logged = sum(int(r.counters.get(rollups.DECISIONS, 0)) for r in rows)
            outcomes = sum(int(r.counters.get(rollups.OUTCOMES, 0)) for r in rows)
            run.rollup_mismatch += abs(logged - cycles) + abs(outcomes - cycles)
        run.usage = await store.query_tool_usage([keys.bucket(utcnow(), "day")])
        run.sizes = await _item_sizes(engine, names[0])
    finally:
        await engine.close()


async def _item_sizes(engine: DynamoEngine, agent: str) -> dict[str, float]:
    """Median sizes (bytes, DynamoDB's rules) of the items one decision writes."""
    sizes: dict[str, list[int]] = {}

    def add(kind: str, item: dict[str, Any]) -> None:
        sizes.setdefault(kind, []).append(item_size(item))

    page = await engine.query("decisions", keys.decision_pk(agent, "ENTRY"), limit=50)
    for item in page.items:
        add("decision", item)
        id_item = await engine.get("decisions", keys.decision_id_pk(agent, item["decision_id"]), keys.ID_SK)
        if id_item:
            add("id item", id_item)
    for grain in ("hour", "day"):
        for item in (await engine.query("state", keys.rollup_pk(agent, grain), limit=50)).items:  # type: ignore[arg-type]
            add(f"rollup ({grain})", item)
    for item in (await engine.query("state", keys.REGISTRY_PK, limit=50)).items:
        add("registry entry", item)
    return {kind: statistics.median(values) for kind, values in sizes.items()}


# --------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------


def _wcu(size: float) -> int:
    return max(1, math.ceil(size / 1024))


def _units_per_cycle(run: Run) -> tuple[float, float, float]:
    calls = sum(run.usage.get(t, {}).get("calls", 0) for t in CYCLE_TOOLS) / 3 or 1
    req = sum(run.usage.get(t, {}).get("requests", 0) for t in CYCLE_TOOLS) / calls
    rcu = sum(run.usage.get(t, {}).get("read_units", 0) for t in CYCLE_TOOLS) / calls
    wcu = sum(run.usage.get(t, {}).get("write_units", 0) for t in CYCLE_TOOLS) / calls
    return req, rcu, wcu


def report(runs: Sequence[Run], rate_per_min: float, settings: Settings) -> str:
    rows = []
    for run in runs:
        lat = sorted(run.latencies_ms)
        rows.append([
            run.instances, run.agents, run.calls, f"{run.calls / run.wall_s:.0f}",
            f"{statistics.median(lat):.1f}", f"{lat[int(len(lat) * 0.99) - 1]:.1f}",
            f"{sum(run.cpu_s) * 1000 / run.calls:.2f}",
            " / ".join(f"{c / run.calls * 1000:.2f}" for c in run.cpu_s),
            run.lost, run.duplicated, run.rollup_mismatch,
        ])  # fmt: skip
    out = [
        f"{machine_note()} DynamoDB Local on loopback; every "
        f"agent runs {runs[0].cycles} cycles of recall_stm + log_decision + record_outcome over "
        "streamable HTTP with its own bearer token, agents spread round-robin over the instances. "
        "Server processes, DynamoDB Local and the clients share the same cores, so calls/s is a floor; "
        "CPU per call is the figure that transfers.",
        "",
        markdown_table(HEADERS, rows),
        "",
    ]
    last = runs[-1]
    tool_rows = []
    for tool in CYCLE_TOOLS:
        u = last.usage.get(tool, {})
        calls = u.get("calls", 0) or 1
        per_call = [f"{u.get(k, 0) / calls:.2f}" for k in ("requests", "read_units", "write_units")]
        tool_rows.append([tool, int(u.get("calls", 0)), *per_call])
    out += [
        "DynamoDB requests and capacity units per call (the servers' own usage counters, summed over "
        f"the {last.instances} instances; units computed from item sizes by DynamoDB's rules):",
        "",
        markdown_table(["tool", "calls", "requests/call", "RCU/call", "WCU/call"], tool_rows),
        "",
    ]
    req, rcu, wcu = _units_per_cycle(last)
    per_s = rate_per_min / 60
    cost_rows = []
    for agents in (10, 100, 1000):
        cycles_month = agents * per_s * 86400 * 30
        dollars = (
            cycles_month
            * (rcu * settings.price_read_per_million + wcu * settings.price_write_per_million)
            / 1e6
        )
        rates = [f"{agents * per_s * x:,.0f}" for x in (req, wcu, rcu)]
        cost_rows.append([f"{agents:,}", f"{agents * per_s:,.1f}", *rates, f"${dollars:,.0f}"])
    out += [
        f"One decision cycle costs {req:.1f} requests, {rcu:.1f} RCU and {wcu:.1f} WCU. At "
        f"{rate_per_min:g} decision(s) per agent per minute, on-demand at ${settings.price_write_per_million}"
        f"/M writes and ${settings.price_read_per_million}/M reads (storage, streams and DAX not included):",
        "",
        markdown_table(["agents", "cycles/s", "requests/s", "WCU/s", "RCU/s", "per month"], cost_rows),
        "",
        "Item sizes one decision writes (median bytes, DynamoDB's size rules): "
        + ", ".join(f"{k} {v:.0f}" for k, v in sorted(last.sizes.items())),
    ]
    return "\n".join(out)


async def main_async(args: argparse.Namespace) -> str:
    settings = Settings(backend="dynamodb", aws_region="us-east-1")
    for name, value in FAKE_AWS_ENV.items():
        os.environ.setdefault(name, value)
    workdir = Path(args.workdir)
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    async with AsyncExitStack() as stack:
        endpoint = args.endpoint
        if endpoint is None:
            from tests.fixtures.emulators import dynamodb_local

            endpoint = stack.enter_context(dynamodb_local())
        runs = []
        for n in args.instances:
            print(f"fleet: {n} instance(s), {args.agents} agents x {args.cycles} cycles", file=sys.stderr)
            runs.append(await measure(endpoint, n, args.agents, args.cycles, workdir))
    return report(runs, args.rate, settings)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--endpoint", help="a running DynamoDB Local (default: start one)")
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--agents", type=int, default=24)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument(
        "--rate", type=float, default=1.0, help="decisions per agent per minute, for the costs"
    )
    parser.add_argument("--workdir", default=".data/bench-fleet")
    parser.add_argument("--write-docs", action="store_true", help="update docs/SCALING.md (default: print)")
    args = parser.parse_args(argv)
    markdown = asyncio.run(main_async(args))
    print(markdown)
    if args.write_docs:
        write_section(DOC, "fleet", markdown)


if __name__ == "__main__":
    main()
