"""Benchmark: calls per second over streamable HTTP, ours against the SDK's no-op server, at 1, 10
and 50 concurrent clients and 1, 2 and N worker processes.

    python -m bench.bench_http [--clients 1,10,50] [--workers 1,2,N] [--window 2] [--rounds 5] [--write-docs]

For each worker count W it starts two servers: ``agent-memory serve --transport http --workers W``
(embedded store in a temporary directory, bearer tokens of 10 agents) and a minimal MCPServer with
one tool ``noop() -> str`` served the same way (stateless streamable HTTP, JSON responses, uvicorn
with W workers); the servers of every W run at once (one not called is idle). Then, for each
client count C, windows of ``--window`` seconds go round every worker count and the no-op,
``get_state`` and ``log_decision`` (the order rotating every round), each window with C clients
calling as fast as they get answers; a table cell is the median of its ``--rounds`` windows, for
calls/s and for the servers' CPU per call (from /proc, over all their processes and threads); a
ratio (ours to the no-op, W workers to 1) is the median of the ratios of the windows measured in
the same round. The goal compares our calls/s with the no-op's at 50 clients (>= 0.8x).

The load generator is deliberately thin so that it takes as little of the machine as it can: each
client is one keep-alive HTTP/1.1 connection sending a pre-built JSON-RPC ``tools/call`` POST (no
MCP client, no session; the servers are stateless) and reading the answer, which must be a
successful tool result. It runs in this process, on the same cores as the servers.

Section ``http`` of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.fixtures.http_server import free_port, wait_listening

from agent_memory.server.auth import add_token
from bench.common import machine_note, markdown_table, progress, publish

GOAL = 0.8
AGENTS = 10
NOOP = "noop"
TOOLS = ("get_state", "log_decision")
ARGS: dict[str, dict[str, object]] = {
    NOOP: {},
    "get_state": {},
    "log_decision": {
        "decision_type": "SOURCE_SELECTION",
        "context": {"market": {"trend": "bullish", "volatility": 0.3}, "whale_count": 7},
        "reasoning": {"chosen": "whaleMovements", "score": 0.8},
    },
}

NOOP_APP = '''\
"""The SDK's floor over streamable HTTP: one tool that does nothing, stateless, JSON responses."""

from mcp.server.mcpserver import MCPServer

server = MCPServer(name="noop", log_level="WARNING")  # as agent-memory logs: no line per request


@server.tool()
async def noop() -> str:
    """Do nothing."""
    return "ok"


app = server.streamable_http_app(stateless_http=True, json_response=True)
'''

NOOP_WORKERS = '''\
"""The no-op app in N processes, with the launcher ``agent-memory serve --workers N`` uses."""

import sys

from agent_memory.server.workers import serve_workers

if __name__ == "__main__":
    port, workers, app_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    serve_workers("noop_http:app", "127.0.0.1", port, workers, factory=False, app_dir=app_dir)
'''

_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


def _tree_cpu(root: int) -> float:
    """CPU seconds (user + system, all threads) used so far by process ``root`` and its descendants
    (the worker processes of a multi-process server)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    tree, total = {root}, 0.0
    grew = True
    while grew:
        grew = False
        for pid, (parent, _) in stats.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grew = True
    for pid in tree:
        total += stats.get(pid, (0, 0.0))[1]
    return total


@contextmanager
def _process(args: Sequence[str], port: int, env: dict[str, str] | None = None) -> Iterator[int]:
    proc = subprocess.Popen(
        args, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_listening(port, proc, timeout=120.0)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass(frozen=True)
class Target:
    port: int
    tool: str
    pid: int
    tokens: tuple[str, ...] = ()

    def request(self, client: int) -> bytes:
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": self.tool, "arguments": ARGS[self.tool]},
            },
            separators=(",", ":"),
        ).encode()
        auth = f"Authorization: Bearer {self.tokens[client % len(self.tokens)]}\r\n" if self.tokens else ""
        head = (
            f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            "Accept: application/json, text/event-stream\r\nContent-Type: application/json\r\n"
            f"{auth}Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body


@dataclass(frozen=True)
class Window:
    rate: float
    """calls per second"""
    cpu_ms: float
    """server CPU (all its processes and threads) per call, in milliseconds"""
    client_ms: float = 0.0
    """the load generator's own CPU (this process) per call, in milliseconds"""
    ratio: float = 1.0
    """calls/s over the no-op's: the median of the ratios of the windows measured in the same
    round (paired, so that a change of the machine's load between rounds falls on both)"""
    cpu_ratio: float = 1.0
    """CPU per call over the no-op's, paired by round as ``ratio``"""
    growth: float = 1.0
    """calls/s over the same server's with the fewest worker processes, paired by round"""


async def _window(target: Target, clients: int, seconds: float) -> Window:
    """Calls per second of ``clients`` connections calling ``target`` for ``seconds``, and the
    server's CPU per call."""
    conns = [await asyncio.open_connection("127.0.0.1", target.port) for _ in range(clients)]
    counts = [0] * clients
    ready = asyncio.Event()
    stop_at = [0.0]

    async def one(i: int) -> float:
        reader, writer = conns[i]
        request = target.request(i)
        await ready.wait()
        while time.perf_counter() < stop_at[0]:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            match = _LENGTH.search(head)
            body = await reader.readexactly(int(match.group(1))) if match else b""
            if not head.startswith(b"HTTP/1.1 200") or b'"isError":false' not in body:
                raise RuntimeError(f"{target.tool} failed: {head[:60]!r} {body[:300]!r}")
            counts[i] += 1
        return time.perf_counter()

    tasks = [asyncio.create_task(one(i)) for i in range(clients)]
    cpu = _tree_cpu(target.pid)
    client = time.process_time()
    start = time.perf_counter()
    stop_at[0] = start + seconds
    ready.set()
    ends = await asyncio.gather(*tasks)
    client = time.process_time() - client
    used = _tree_cpu(target.pid) - cpu
    for _, writer in conns:
        writer.close()
    calls = sum(counts)
    return Window(calls / (max(ends) - start), used / max(calls, 1) * 1000, client / max(calls, 1) * 1000)


def _median(values: Sequence[float]) -> float:
    return sorted(values)[len(values) // 2]


Results = dict[int, dict[tuple[str, int], Window]]
Key = tuple[int, str]
"""A server under test: (worker processes, what it is called with: the no-op or one of our tools)."""


async def _measure(
    targets: dict[Key, Target], clients: Sequence[int], seconds: float, rounds: int
) -> Results:
    """Windows of every target in turn (all worker counts and servers in the same rounds, order
    rotating), per client count; figures per (workers, name, clients)."""
    keys = list(targets)
    out: dict[tuple[int, str, int], list[Window]] = {}
    for c in clients:
        for key in keys:  # warm-up: connections, imports, the first writes
            await _window(targets[key], c, min(seconds, 1.0))
        for r in range(rounds):
            for w, name in keys[r % len(keys) :] + keys[: r % len(keys)]:
                out.setdefault((w, name, c), []).append(await _window(targets[(w, name)], c, seconds))
        progress(
            f"  {c} clients: "
            + ", ".join(f"{n}@{w} {_median([x.rate for x in out[(w, n, c)]]):.0f}/s" for w, n in keys)
        )
    # Each figure is the median of its windows, calls/s and CPU per call taken separately; a ratio
    # (to the no-op, or to the fewest workers) is the median of the ratios of each round's windows.
    one = min(w for w, _ in keys)
    results: Results = {}
    for (w, name, c), v in out.items():
        floor, base = out[(w, NOOP, c)], out[(one, name, c)]
        results.setdefault(w, {})[(name, c)] = Window(
            _median([x.rate for x in v]),
            _median([x.cpu_ms for x in v]),
            _median([x.client_ms for x in v]),
            _median([x.rate / f.rate for x, f in zip(v, floor, strict=True)]),
            _median([x.cpu_ms / f.cpu_ms for x, f in zip(v, floor, strict=True)]),
            _median([x.rate / b.rate for x, b in zip(v, base, strict=True)]),
        )
    return results


def run(
    workdir: Path, workers: Sequence[int], clients: Sequence[int], seconds: float, rounds: int
) -> Results:
    """Start the no-op and our server at every worker count (all at once: a server not called is
    idle), then measure them in the same rounds."""
    tokens_file = workdir / "tokens.json"
    tokens = tuple(add_token(tokens_file, f"agent-{i}", "agent") for i in range(AGENTS))
    (workdir / "noop_http.py").write_text(NOOP_APP, encoding="utf-8")
    (workdir / "noop_workers.py").write_text(NOOP_WORKERS, encoding="utf-8")
    targets: dict[Key, Target] = {}
    with ExitStack() as servers:
        for w in workers:
            progress(f"starting the servers with {w} worker process(es)")
            noop_port, our_port = free_port(), free_port()
            noop_cmd = [sys.executable, "-m", "uvicorn", "noop_http:app", "--app-dir", str(workdir), "--port",
                        str(noop_port), "--log-level", "warning", "--no-access-log"]  # fmt: skip
            if w > 1:  # the same multi-process launcher as ours
                noop_cmd = [
                    sys.executable,
                    str(workdir / "noop_workers.py"),
                    str(noop_port),
                    str(w),
                    str(workdir),
                ]
            our_cmd = [sys.executable, "-m", "agent_memory.cli", "serve", "--transport", "http", "--port",
                       str(our_port), "--tokens-file", str(tokens_file), "--workers", str(w)]  # fmt: skip
            # The per-agent rate limit is off: the bench measures how many calls the server can answer.
            env = {
                "AGENT_MEMORY_SQLITE_PATH": str(workdir / f"memory-{w}.db"),
                "AGENT_MEMORY_RATE_LIMIT_PER_MINUTE": "0",
            }
            noop_pid = servers.enter_context(_process(noop_cmd, noop_port))
            our_pid = servers.enter_context(_process(our_cmd, our_port, env))
            targets[(w, NOOP)] = Target(noop_port, NOOP, noop_pid)
            targets.update({(w, t): Target(our_port, t, our_pid, tokens) for t in TOOLS})
        return asyncio.run(_measure(targets, clients, seconds, rounds))


def table(results: Results, clients: Sequence[int]) -> str:
    rows: list[list[object]] = []
    goal_clients = max(clients)
    for w, by in results.items():
        for c in clients:
            floor = by[(NOOP, c)]
            row: list[object] = [w, c, f"{floor.rate:,.0f}", f"{floor.cpu_ms:.2f}"]
            for tool in TOOLS:
                ours = by[(tool, c)]
                ratio = ours.ratio
                verdict = ("ok" if ratio >= GOAL else f"MISS (< {GOAL}x)") if c == goal_clients else ""
                row += [f"{ours.rate:,.0f}", f"{ratio:.2f}x", verdict, f"{ours.cpu_ms:.2f}"]
            rows.append(row)
    headers = ["workers", "clients", "noop calls/s", "noop CPU ms/call"]
    for tool in TOOLS:
        headers += [f"{tool} calls/s", "/ noop", f"goal >= {GOAL}x @ {goal_clients}", "CPU ms/call"]
    return markdown_table(headers, rows, "rrrr" + "rrlr" * len(TOOLS))


def summary(results: Results, clients: Sequence[int]) -> str:
    """The reading of the run, generated from its figures: the goal per worker count, the server
    CPU per call against the no-op's, and how the calls/s grow with the processes."""
    c = max(clients)
    lines = []
    for tool in TOOLS:
        cells = [f"{w} worker(s) {by[(tool, c)].ratio:.2f}x" for w, by in results.items()]
        met = [w for w, by in results.items() if by[(tool, c)].ratio >= GOAL]
        verdict = "met" if len(met) == len(results) else ("**not met**" if not met else "**met only**")
        where = "" if len(met) in (0, len(results)) else f" at {', '.join(map(str, met))} worker(s)"
        lines.append(
            f"- {tool} at {c} clients, ours / no-op: {', '.join(cells)}: goal >= {GOAL}x {verdict}{where}."
        )
    for tool in TOOLS:
        cpu = [f"{w} worker(s) {by[(tool, c)].cpu_ratio:.2f}x" for w, by in results.items()]
        lines.append(
            f"- {tool} server CPU per call at {c} clients over the no-op's: {', '.join(cpu)} "
            "(a server bound by its CPU answers calls/s in about the inverse ratio)."
        )
    for tool in TOOLS:
        short = [(w, by) for w, by in results.items() if by[(tool, c)].ratio < GOAL]
        if short:
            # A server bound by its CPU: calls/s >= GOAL x the no-op's needs CPU per call <= the
            # no-op's / GOAL, which leaves (1 / GOAL - 1) x the no-op's CPU for the memory's work.
            cells = [
                f"{w} worker(s) <= {by[(NOOP, c)].cpu_ms * (1 / GOAL - 1):.2f} ms, "
                f"today {by[(tool, c)].cpu_ms - by[(NOOP, c)].cpu_ms:.2f} ms"
                for w, by in short
            ]
            lines.append(
                f"- What the goal leaves {tool} at {c} clients for the memory's own work (server CPU "
                f"per call over the no-op's, at most 1/{GOAL} - 1 of the no-op's): {'; '.join(cells)}."
            )
    client = [by[(name, c)].client_ms for by in results.values() for name in (NOOP, *TOOLS)]
    lines.append(
        f"- The load generator's own CPU per call at {c} clients: {min(client):.2f}-{max(client):.2f} ms "
        "(the same client code for every server; it shares the cores with them)."
    )
    if len(results) > 1:
        one = min(results)
        for tool in (NOOP, *TOOLS):
            grow = ", ".join(f"{w}: {by[(tool, c)].growth:.2f}x" for w, by in results.items() if w != one)
            lines.append(f"- {tool} calls/s at {c} clients with W workers over {one}: {grow}.")
    return "\n".join(lines)


def _ints(text: str) -> list[int]:
    cores = os.cpu_count() or 1
    values = [cores if part.strip() == "N" else int(part) for part in text.split(",") if part.strip()]
    return list(dict.fromkeys(values))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--clients", default="1,10,50", help="concurrent clients (default 1,10,50)")
    parser.add_argument("--workers", default="1,2,N", help="worker processes; N = cores (default 1,2,N)")
    parser.add_argument("--window", type=float, default=2.0, help="seconds per window (default 2)")
    parser.add_argument("--rounds", type=int, default=5, help="windows per cell (default 5)")
    parser.add_argument("--write-docs", action="store_true", help="update the docs (default: print only)")
    args = parser.parse_args(argv)
    clients, workers = _ints(args.clients), _ints(args.workers)
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        results = run(Path(tmp), workers, clients, args.window, args.rounds)
    notes = [
        f"{machine_note()} {args.rounds} windows of {args.window:g} s per cell after a 1 s warm-up window "
        "each; the servers of every worker count run at once, and each round calls every worker count's "
        "no-op, get_state and log_decision in turn (rotating order), so each ratio compares windows "
        "measured in the same minutes: a ratio (to the no-op, or W workers to 1) is the median of the "
        "ratios of the windows of each round (paired), not the ratio of two medians. Worker counts: "
        f"{', '.join(map(str, workers))} (N, the number of cores, is {os.cpu_count()}; a count given "
        "twice is measured once).",
        "",
        "- Ours: `agent-memory serve --transport http` with `--workers` set to W, embedded store (one "
        f"SQLite file shared by the W processes), bearer tokens of {AGENTS} agents (client i uses agent "
        f"i mod {AGENTS}); the token check and the bounds on each client (body size, request deadline, "
        "concurrency limit: in every worker) are part of our cost; the per-agent rate limit is off "
        "(`AGENT_MEMORY_RATE_LIMIT_PER_MINUTE=0`). No-op: an MCPServer with one `async def noop() -> str`, "
        "`streamable_http_app(stateless_http=True, json_response=True)` (the transport options ours "
        "uses), logging at WARNING like ours, under uvicorn (one process), or for W > 1 the launcher of "
        "`--workers` (`agent_memory.server.workers.serve_workers`: W processes on one port with "
        "SO_REUSEPORT). Both: uvicorn's h11 protocol and asyncio loop, access log off.",
        "- CPU ms/call: user + system time of the server's processes (all threads, all workers) from "
        "`/proc` over each window, divided by the calls answered in it. Ours settles its heap before "
        "serving (`agent_memory.server.run.settle_heap`: start-up objects frozen out of the garbage "
        "collector, young collections less often); the no-op runs with Python's defaults.",
        "- Clients: keep-alive HTTP/1.1 connections in the bench process, each sending a pre-built "
        "JSON-RPC `tools/call` and checking the answer is a successful tool result; on the same cores as "
        "the servers, so at high rates the load generator takes part of the machine from both.",
    ]
    markdown = "\n\n".join([table(results, clients), summary(results, clients), "\n".join(notes)])
    publish("http", markdown, write=args.write_docs)


if __name__ == "__main__":
    main()
