"""Benchmark: per-tool latency over a real stdio MCP connection, against the SDK's own floor.

    python -m bench.bench_stdio [--iterations 300] [--warmup 30] [--profile] [--write-docs]

Starts ``python -m agent_memory.cli serve --agent-id bench`` as a subprocess (the embedded store
in a temporary directory, via AGENT_MEMORY_SQLITE_PATH) and, beside it, a minimal MCPServer with
one tool ``noop() -> str`` (an ``async def`` returning "ok", like the memory's tools, which are
all async) - the same SDK, transport and client code, doing nothing. Both are called through
``mcp.Client(mcp.StdioServerParameters(...))`` in the same run, in rounds: each round calls every
memory tool once, each call right after a no-op call and before the replay's (see
:func:`interleaved`), so all see the same noise. The table gives each
tool's p50/p95 and its p50 over the no-op p50 (goal <= 1.5x).

``--profile`` also breaks every tool's call down in-process (``build_server`` with the SDK's
in-memory client: tool body, SDK result conversion, client output-schema check; added to the
section) and prints a cProfile of the tools that missed the goal (stderr).

Section ``stdio`` of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import re
import sqlite3
import sys
import tempfile
import threading
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import mcp
from mcp.server.mcpserver import MCPServer

from agent_memory.memory.identity import Caller
from agent_memory.memory.service import Memory
from agent_memory.models import PatternCondition, utcnow
from bench.common import (
    DOC_PATH,
    PySpy,
    Samples,
    bench_settings,
    child_pid,
    child_pids,
    collapsed_stacks,
    cpu_ns,
    fmt_ms,
    machine_note,
    markdown_table,
    now_ns,
    open_store,
    progress,
    publish,
    summarize,
)

ME = "bench"
PEERS = ("peer-1", "peer-2")
DECISION_TYPE = "SOURCE_SELECTION"
GOAL = 1.5
NOOP = "noop"
TOOLS = (
    "log_decision",
    "record_outcome",
    "recall_stm",
    "store_stm",
    "search_decisions",
    "publish_signal",
    "read_inbox",
    "ack_signal",
    "get_state",
    "update_state",
    "recall_patterns",
)

NOOP_SERVER = '''\
"""The SDK's floor: one tool that does nothing, over stdio."""

from mcp.server.mcpserver import MCPServer

server = MCPServer(name="noop")


@server.tool()
async def noop() -> str:
    """Do nothing."""
    return "ok"


if __name__ == "__main__":
    server.run()
'''


REPLAY_GOAL = 1.25
REPLAY_PRIME = "_replay_prime"
"""Argument the bench adds to a replay call that is to do the real work (untimed) and keep its result."""
REPLAY_SERVER = f'''\
"""agent-memory's own server whose tools replay a result: the same SDK path, output schemas and
result sizes, without the memory's work (the bench's "replay" floor). A call whose arguments carry
{REPLAY_PRIME!r} (the bench's untimed priming round) does the tool's real work on the replay's own
store and keeps its result; every other call answers with the tool's kept result, which is the one
the same call with the same arguments just returned."""

from typing import Any

import anyio

from agent_memory.config import Settings
from agent_memory.server.app import build_server

server = build_server(Settings())
for tool in server._tool_manager.list_tools():

    def replaying(real: Any) -> Any:
        kept: list[Any] = []

        async def replay(*args: Any, arguments: dict[str, Any], **kwargs: Any) -> Any:
            if arguments.pop({REPLAY_PRIME!r}, False):
                kept[:] = [await real(*args, arguments=arguments, **kwargs)]
            return kept[0]

        return replay

    object.__setattr__(tool, "fn", replaying(tool.fn))

if __name__ == "__main__":
    anyio.run(server.run_stdio_async)
'''


def noop_server() -> MCPServer[Any]:
    """The floor in-process: the same server as ``NOOP_SERVER``."""
    server: MCPServer[Any] = MCPServer(name="noop")

    @server.tool()
    async def noop() -> str:
        """Do nothing."""
        return "ok"

    return server


def context_of(i: int) -> dict[str, Any]:
    return {
        "market": {
            "trend": ("bullish", "bearish", "sideways")[i % 3],
            "volatility": round(0.1 + (i % 7) / 10, 2),
        },
        "whale_count": i % 12,
        "cycle": i,
    }


async def seed(db: Path, pending: int = 5) -> None:
    """What a running team leaves: registered agents, ``pending`` signals for ``bench``, own and
    shared patterns, a state. Written through ``Memory`` before the server starts."""
    async with open_store("sqlite", sqlite_path=db) as store:
        m = Memory(store, bench_settings(), utcnow)
        me = Caller(ME)
        for agent in (ME, *PEERS):
            await m.register(Caller(agent))
        for i in range(pending):
            await m.publish_signal(
                Caller(PEERS[0]),
                signal_type="WHALE_ACTIVITY",
                data={"whale_count": 5 + i},
                target_agents=[ME],
                confidence=0.8,
            )
        for i in range(8):
            await m.store_pattern(
                me,
                description=f"bullish with >= {i} whales favours whale sources",
                conditions=[
                    PatternCondition(field="market.trend", op="eq", value="bullish"),
                    PatternCondition(field="whale_count", op="gte", value=i),
                ],
                outcomes={"success_rate": 0.7},
                confidence=0.5 + i / 40,
                success_rate=0.7,
                sample_size=100,
                decision_type=DECISION_TYPE,
            )
        for i in range(4):
            await m.store_pattern(
                Caller(PEERS[1]),
                description=f"shared rule {i}",
                conditions=[PatternCondition(field="market.volatility", op="lt", value=0.5)],
                outcomes={},
                confidence=0.4 + i / 20,
                success_rate=0.6,
                sample_size=50,
                shared_with=["*"],
            )


def result_size(result: Any) -> int:
    """Bytes of a tool result's structured content, compact JSON."""
    return len(json.dumps(result.structured_content, separators=(",", ":")))


def ok(tool: str, result: Any) -> dict[str, Any]:
    if result.is_error:
        text = result.content[0].text if result.content else ""
        raise RuntimeError(f"{tool} failed: {text}")
    content: dict[str, Any] = result.structured_content or {}
    return content


class Rounds:
    """The calls of one client, tool by tool, with what each passes to the next: the decisions and
    signals it made (record_outcome and ack_signal consume the latest) and the state's version."""

    def __init__(self, memory: mcp.Client, noop: mcp.Client | None) -> None:
        self.memory = memory
        self.noop = noop
        self.priming = False
        """Add REPLAY_PRIME to every call's arguments (a replay server's untimed priming round)."""
        self.samples = Samples()
        self.ids: list[str] = []
        self.signals: list[str] = []
        self.version: int | None = None
        self.last: dict[str, Any] = {}
        """The last CallToolResult of each tool."""

    async def call(self, tool: str, args: dict[str, Any], record: bool) -> dict[str, Any]:
        client = self.noop if tool == NOOP else self.memory
        assert client is not None
        if self.priming:
            args = {**args, REPLAY_PRIME: True}
        result = await self.samples.time(tool, client.call_tool(tool, args), record=record)
        self.last[tool] = result
        return ok(tool, result)

    async def client_checks(self, repeats: int = 20) -> dict[str, tuple[int, float]]:
        """Per tool: bytes of its last structured result, and the median time the client's own
        output-schema check (``ClientSession.validate_tool_result``, jsonschema) takes on it."""
        out: dict[str, tuple[int, float]] = {}
        for tool, result in self.last.items():
            client = self.noop if tool == NOOP else self.memory
            assert client is not None
            times = []
            for _ in range(repeats):
                start = now_ns()
                await client.session.validate_tool_result(tool, result)
                times.append(now_ns() - start)
            out[tool] = (result_size(result), summarize(times).p50_ms)
        return out

    async def args(self, tool: str, i: int) -> dict[str, Any]:
        """The arguments of call ``i`` of ``tool``."""
        ctx = context_of(i)
        if tool == NOOP or tool in ("recall_stm", "read_inbox", "get_state"):
            return {}
        if tool == "log_decision":
            return {
                "decision_type": DECISION_TYPE,
                "context": ctx,
                "reasoning": {"chosen": "whaleMovements", "score": 0.8},
            }
        if tool == "record_outcome":
            return {"decision_id": self.ids.pop(), "success": i % 3 != 0, "quality_score": 0.75}
        if tool == "store_stm":
            return {"key": f"note-{i % 20}", "value": {"seen": i, "queue": ["a", "b"]}}
        if tool == "search_decisions":
            # The default page of 10, as recall_stm returns (the goals are at default page sizes).
            return {"decision_type": DECISION_TYPE}
        if tool == "publish_signal":
            return {
                "signal_type": "WHALE_ACTIVITY",
                "data": {"whale_count": ctx["whale_count"]},
                "target_agents": [ME, *PEERS],
                "confidence": 0.85,
            }
        if tool == "ack_signal":
            return {"signal_id": self.signals.pop(), "status": "processed"}
        if tool == "update_state":
            if self.version is None:  # the version read or written last, else read once
                self.version = ok("get_state", await self.memory.call_tool("get_state", {}))["version"]
            return {"patch": {"current": {"cycle": i}}, "expected_version": self.version}
        if tool == "recall_patterns":
            return {"context": ctx, "decision_type": DECISION_TYPE}
        raise ValueError(tool)

    async def step(
        self, tool: str, i: int, record: bool, args: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Call ``tool`` (with ``args``, else its arguments for call ``i``) and keep what later
        calls need."""
        out = await self.call(tool, await self.args(tool, i) if args is None else args, record)
        if tool == "log_decision":
            self.ids.append(out["decision_id"])
        elif tool == "publish_signal":
            self.signals.append(out["signal_id"])
        elif tool in ("get_state", "update_state"):
            self.version = out["version"]
        return out

    async def round(self, i: int, *, record: bool) -> None:
        """Round ``i``: the no-op (with a no-op client) and every memory tool once, in order. Each
        round logs a decision and records its outcome, publishes a signal to itself and two peers
        and acks it (read_inbox sees 6 pending), reads and updates the state, recalls patterns with
        a context and searches decisions of one type."""
        if self.noop is not None:
            await self.step(NOOP, i, record)
        for tool in TOOLS:
            checked(tool, await self.step(tool, i, record))


def checked(tool: str, out: dict[str, Any]) -> None:
    """What a round's result must show: read_inbox sees the 5 seeded signals and the round's own."""
    if tool == "read_inbox":
        assert len(out["entries"]) == 6, len(out["entries"])


async def interleaved(ours: Rounds, replays: Rounds, i: int, *, record: bool) -> None:
    """Round ``i`` of ours and of the replay, tool by tool: the replay's untimed priming call (the
    real work), then the no-op, ours and the replay's timed call of the tool with the priming
    call's arguments. Each server is thus called after the same few calls to the others: none
    answers its call straight after idling through a whole round of the others' (which a process
    pays in cold caches and wake-ups), nor straight after calls of its own."""
    for tool in TOOLS:
        args = await replays.args(tool, i)
        replays.priming = True
        await replays.step(tool, i, record=False, args=args)
        replays.priming = False
        await ours.step(NOOP, i, record)
        checked(tool, await ours.step(tool, i, record))
        await replays.call(tool, args, record)


def memory_params(db: Path, profile_to: Path | None = None) -> mcp.StdioServerParameters:
    args = ["-m", "agent_memory.cli", "serve", "--agent-id", ME]
    if profile_to is not None:
        args = ["-m", "cProfile", "-o", str(profile_to), *args]
    return mcp.StdioServerParameters(
        command=sys.executable, args=args, env=server_env(AGENT_MEMORY_SQLITE_PATH=str(db))
    )


def server_env(**extra: str) -> dict[str, str]:
    """The environment of a server subprocess: ``extra`` plus this process's PYTHONPATH (the SDK
    passes only a safe subset of the environment, so a server would otherwise import whichever
    agent_memory the interpreter finds, not the checkout being measured)."""
    path = os.environ.get("PYTHONPATH")
    return {**extra, **({"PYTHONPATH": path} if path else {})}


Checks = dict[str, tuple[int, float, int]]
"""Per tool: bytes of our last result, the client's schema check on it (ms), bytes of the replay's."""


async def measure(workdir: Path, iterations: int, warmup: int) -> tuple[Samples, Samples, Checks]:
    db = workdir / "memory.db"
    await seed(db)
    replay_db = workdir / "replay.db"
    await seed(replay_db)
    noop_script = workdir / "noop_server.py"
    noop_script.write_text(NOOP_SERVER, encoding="utf-8")
    replay_script = workdir / "replay_server.py"
    replay_script.write_text(REPLAY_SERVER, encoding="utf-8")
    async with AsyncExitStack() as stack:
        memory = await stack.enter_async_context(mcp.Client(memory_params(db)))
        noop = await stack.enter_async_context(
            mcp.Client(mcp.StdioServerParameters(command=sys.executable, args=[str(noop_script)]))
        )
        replay_env = server_env(AGENT_MEMORY_SQLITE_PATH=str(replay_db), AGENT_MEMORY_AGENT_ID=ME)
        replay = await stack.enter_async_context(
            mcp.Client(
                mcp.StdioServerParameters(command=sys.executable, args=[str(replay_script)], env=replay_env)
            )
        )
        replays = Rounds(replay, None)
        tools = {t.name for t in (await memory.list_tools()).tools}
        missing = set(TOOLS) - tools
        if missing:
            raise RuntimeError(f"the server lacks tools {sorted(missing)}")
        rounds = Rounds(memory, noop)
        total = warmup + iterations
        for i in range(total):
            await interleaved(rounds, replays, i, record=i >= warmup)
            if (i + 1) % 50 == 0:
                progress(f"round {i + 1}/{total}")
        checks = await rounds.client_checks()
        replayed = {tool: result_size(result) for tool, result in replays.last.items()}
    return rounds.samples, replays.samples, {t: (*c, replayed.get(t, 0)) for t, c in checks.items()}


_SQLITE_NS = [0]
"""Nanoseconds spent in the sqlite3 module's calls on the main thread (the event loop's: the
stdio server runs its SQL there), while :func:`profile` times them."""


def _sqlite_timed(call: Any) -> Any:
    main = threading.main_thread().ident

    def timed(*args: Any) -> Any:
        if threading.get_ident() != main:  # (checkpoints and purges on the worker thread)
            return call(*args)
        start = now_ns()
        try:
            return call(*args)
        finally:
            _SQLITE_NS[0] += now_ns() - start

    return timed


class _TimedCursor(sqlite3.Cursor):
    """A cursor whose fetches count in :data:`_SQLITE_NS` (a query's rows are computed as they
    are fetched)."""

    def fetchall(self) -> list[Any]:
        return _sqlite_timed(super().fetchall)()  # type: ignore[no-any-return]

    def fetchone(self) -> Any:
        return _sqlite_timed(super().fetchone)()

    def fetchmany(self, size: int | None = None) -> list[Any]:
        fetch = super().fetchmany
        return _sqlite_timed(fetch)() if size is None else _sqlite_timed(fetch)(size)  # type: ignore[no-any-return]


class _TimedConnection(sqlite3.Connection):
    """A connection whose statements (and their cursors' fetches) count in :data:`_SQLITE_NS`:
    SQLite's own work of a call - its B-trees, its page cache, the WAL frames a commit writes -
    in the C calls of the sqlite3 module, apart from the Python around them."""

    def cursor(self, factory: Any = _TimedCursor) -> Any:  # type: ignore[override]
        return super().cursor(factory)

    # What Connection.execute does, with a cursor of ours (the C method makes a plain one).
    def execute(self, *args: Any) -> Any:  # type: ignore[override]
        cursor = self.cursor()
        _sqlite_timed(cursor.execute)(*args)
        return cursor

    def executemany(self, *args: Any) -> Any:  # type: ignore[override]
        cursor = self.cursor()
        _sqlite_timed(cursor.executemany)(*args)
        return cursor


async def profile(workdir: Path, rounds_n: int, focus: Sequence[str]) -> tuple[str, str]:
    """Where a call's time goes, in-process: ``build_server`` on the embedded store and the SDK's
    in-memory ``Client`` (no subprocess, no JSON-RPC framing), with timers around three stages of
    every call - the tool body (``agent_memory.tools._common.run``: registration, ``Memory``,
    storage), the SDK's result conversion (``FuncMetadata.convert_result``: validate, dump, text
    content) and the client's output-schema check (``ClientSession.validate_tool_result``) - and a
    cProfile of the calls of the ``focus`` tools. Of the tool body, the part spent in SQLite's own
    calls on the event loop's thread is timed apart (:class:`_TimedConnection`: the store's
    connections are opened with it). Returns (markdown table, cProfile text)."""
    from mcp.client.session import ClientSession
    from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata

    from agent_memory.config import Settings
    from agent_memory.server.app import build_server
    from agent_memory.tools import _common

    db = workdir / "profiled.db"
    await seed(db)
    stages: dict[tuple[str, str], list[int]] = {}
    current = [""]

    def add(tool: str, stage: str, elapsed: int) -> None:
        stages.setdefault((tool, stage), []).append(elapsed)

    original_run = _common.run
    original_convert = FuncMetadata.convert_result
    original_validate = ClientSession.validate_tool_result

    async def timed_run(state: Any, spec: Any, handler: Any, arguments: Any, *rest: Any) -> Any:
        start, sql = now_ns(), _SQLITE_NS[0]
        try:
            return await original_run(state, spec, handler, arguments, *rest)
        finally:
            add(spec.name, "body", now_ns() - start)
            add(spec.name, "sqlite", _SQLITE_NS[0] - sql)

    def timed_convert(self: FuncMetadata, result: Any) -> Any:
        start = now_ns()
        try:
            return original_convert(self, result)
        finally:
            add(current[0], "convert", now_ns() - start)

    async def timed_validate(self: ClientSession, name: str, result: Any) -> None:
        start = now_ns()
        try:
            await original_validate(self, name, result)
        finally:
            add(name, "check", now_ns() - start)

    original_connect = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        return original_connect(*args, **kwargs, factory=_TimedConnection)

    _common.run = timed_run  # type: ignore[assignment]
    FuncMetadata.convert_result = timed_convert  # type: ignore[method-assign]
    ClientSession.validate_tool_result = timed_validate  # type: ignore[method-assign]
    sqlite3.connect = connect  # type: ignore[assignment]
    profiler = cProfile.Profile()
    try:
        async with open_store("sqlite", sqlite_path=db) as store:
            server = build_server(Settings(agent_id=ME, sqlite_path=db), store=store)
            async with mcp.Client(server) as client, mcp.Client(noop_server()) as floor:
                rounds = Rounds(client, floor)
                original_call = rounds.call

                profiling = [False]

                async def call(tool: str, args: dict[str, Any], record: bool) -> dict[str, Any]:
                    current[0] = tool
                    profiled = profiling[0] and tool in focus
                    if profiled:
                        profiler.enable()
                    try:
                        return await original_call(tool, args, record)
                    finally:
                        if profiled:
                            profiler.disable()

                rounds.call = call  # type: ignore[method-assign]
                for i in range(10):
                    await rounds.round(i, record=False)
                stages.clear()
                for i in range(10, 10 + rounds_n):
                    await rounds.round(i, record=True)
                measured, timed = {k: list(v) for k, v in stages.items()}, rounds.samples
                if focus:
                    # A second pass under cProfile (its overhead stays out of the breakdown).
                    rounds.samples, profiling[0] = Samples(), True
                    for i in range(10 + rounds_n, 10 + rounds_n + min(rounds_n, 50)):
                        await rounds.round(i, record=False)
    finally:
        sqlite3.connect = original_connect
        _common.run = original_run
        FuncMetadata.convert_result = original_convert  # type: ignore[method-assign]
        ClientSession.validate_tool_result = original_validate  # type: ignore[method-assign]

    rows: list[list[object]] = []
    for tool in (NOOP, *TOOLS):
        total = timed.ns[tool]
        measured.setdefault((NOOP, "body"), [0] * len(total))
        measured.setdefault((NOOP, "sqlite"), [0] * len(total))
        body, sql, convert, check = (measured[(tool, k)] for k in ("body", "sqlite", "convert", "check"))
        other = [t - b - c - v for t, b, c, v in zip(total, body, convert, check, strict=True)]
        p50 = summarize(total).p50_ms
        parts = [summarize(x).p50_ms for x in (body, sql, convert, check, other)]
        cells = [f"{fmt_ms(v)} ({v / p50:.0%})" for v in parts]
        if tool == NOOP:
            cells[:2] = ["-", "-"]
        rows.append([f"{NOOP} (SDK floor)" if tool == NOOP else tool, fmt_ms(p50), *cells])
    breakdown = markdown_table(
        [
            "tool (in-process)",
            "call p50 ms",
            "tool body ms",
            "of which SQLite ms",
            "SDK result conversion ms",
            "client schema check ms",
            "other SDK ms",
        ],
        rows,
        "lrrrrrr",
    )
    text = io.StringIO()
    if focus:
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("cumulative").print_stats(r"agent_memory|mcp|jsonschema|pydantic", 40)
    return breakdown, text.getvalue()


# --------------------------------------------------------------------------------------------------
# server CPU per call (from /proc) and py-spy profiles
# --------------------------------------------------------------------------------------------------


# Where a busy sample of the server goes, by the innermost Python frame of the sample (py-spy shows
# Python frames only, so time in C - pydantic-core, the json scanner, sqlite3 - counts in the frame
# that called it). Frames read "function (file:line)"; the first rule whose test holds names it.
def _leaf_in(*parts: str) -> Any:
    return lambda frames: any(part in frames[-1] for part in parts)


HANDOFF = (
    "concurrent/futures",
    "threading.py",
    "asyncio/futures.py",
    "queue.py",
    "tenacity/",
    "call_soon_threadsafe",
    "_write_to_self",
)


# Frames that mark a hand-off as one to the memory's own worker threads: the SQLite engine's, and
# the thread records are built on (memory.core.off_loop, through asyncio.to_thread). Not anyio's
# to_thread: that is the SDK's stdio transport writing each message (the no-op's hand-offs).
WORKERS = ("storage/sqlite/", "agent-memory-sqlite", "off_loop", "asyncio/threads.py")


def _any(frames: Sequence[str], parts: Sequence[str]) -> bool:
    return any(part in frame for frame in frames for part in parts)


def _handoff(frames: Sequence[str]) -> bool:
    return any(part in frames[-1] for part in HANDOFF)


def _stored_validation(frames: Sequence[str]) -> bool:
    return "pydantic" in frames[-1] and any("storage/records/" in f for f in frames)


PROFILE_CATEGORIES: tuple[tuple[str, Any], ...] = (
    ("pydantic: records read from storage", _stored_validation),
    ("pydantic: other (arguments, results)", _leaf_in("pydantic")),
    ("json module (encode, decode)", _leaf_in("/json/")),
    ("SQLite engine (SQL, rows, checks)", _leaf_in("storage/sqlite/")),
    ("hand-off to worker threads (SQLite, record builds)", lambda f: _handoff(f) and _any(f, WORKERS)),
    ("other thread hand-offs (SDK stdio threads, wake-ups)", _handoff),
    ("agent_memory (other)", _leaf_in("agent_memory/")),
    ("MCP SDK, jsonschema, anyio", _leaf_in("/mcp/", "mcp_types", "jsonschema", "anyio/", "referencing/")),
    ("asyncio loop, stdio, other", lambda frames: True),
)
IDLE = re.compile(r"(select \(|\.wait \(|Queue\.get \(|^_worker \(|WorkerThread\.run \(|Thread\.run \()")


def classify(stacks: list[tuple[list[str], int]]) -> dict[str, int]:
    counts = {name: 0 for name, _ in PROFILE_CATEGORIES}
    for frames, n in stacks:
        # Idle threads (the SQLite worker waiting for a job, the stdio reader) are not busy time.
        if not frames or IDLE.search(frames[-1]):
            continue
        for name, test in PROFILE_CATEGORIES:
            if test(frames):
                counts[name] += n
                break
    return counts


class CpuRun:
    """Blocks of consecutive calls of one tool, with the server's CPU time (all threads, from
    /proc/PID/task/*/schedstat) read before and after each block."""

    def __init__(self, rounds: Rounds, memory_pid: int, noop_pid: int) -> None:
        self.rounds = rounds
        self.pid = {NOOP: noop_pid}
        self.memory_pid = memory_pid
        self.cpu: dict[str, list[int]] = {}
        self.calls: dict[str, int] = {}
        self.i = 0

    async def block(self, tool: str, n: int, record: bool) -> None:
        pid = self.pid.get(tool, self.memory_pid)
        before = cpu_ns(pid)
        for _ in range(n):
            await self.one(tool, record)
        used = cpu_ns(pid) - before
        if record:
            self.cpu.setdefault(tool, []).append(used)
            self.calls[tool] = self.calls.get(tool, 0) + n

    async def one(self, tool: str, record: bool) -> None:
        self.i += 1
        await self.rounds.step(tool, self.i - 1, record)

    def per_call_ms(self, tool: str) -> float:
        return sum(self.cpu[tool]) / self.calls[tool] / 1e6


async def measure_cpu(
    workdir: Path, passes: int, block: int, spy: Path | None
) -> tuple[CpuRun, dict[str, dict[str, int]]]:
    """A warm-up pass, then ``passes`` passes over every tool, each tool's block of ``block``
    consecutive calls preceded by a no-op block, with the server's CPU time per block. With ``spy``
    (a directory), one more block per tool under py-spy, its stacks classified by
    :data:`PROFILE_CATEGORIES`."""
    db = workdir / "cpu.db"
    await seed(db)
    noop_script = workdir / "noop_server.py"
    noop_script.write_text(NOOP_SERVER, encoding="utf-8")
    profiles: dict[str, dict[str, int]] = {}
    async with AsyncExitStack() as stack:
        memory = await stack.enter_async_context(mcp.Client(memory_params(db)))
        noop = await stack.enter_async_context(
            mcp.Client(mcp.StdioServerParameters(command=sys.executable, args=[str(noop_script)]))
        )
        run = CpuRun(Rounds(memory, noop), child_pid("agent_memory.cli"), child_pid("noop_server.py"))
        order = [NOOP, *CPU_TOOLS]
        for p in range(passes + 1):
            for tool in CPU_TOOLS:
                # A no-op block before each tool's: the floor is measured across the whole run,
                # not in a few blocks that one burst of the machine's other load can skew.
                await run.block(NOOP, block if p else 10, record=p > 0)
                await run.block(tool, block if p else 10, record=p > 0)
            progress(f"cpu pass {p}/{passes}")
        if spy is not None:
            for tool in order:
                out = spy / f"{tool}.txt"
                with PySpy(run.pid.get(tool, run.memory_pid), out):
                    await run.block(tool, max(block, 200), record=False)
                profiles[tool] = classify(collapsed_stacks(out))
            progress("py-spy profiles done")
    return run, profiles


# update_state's calls each need the version: its block reads it with get_state first (not timed;
# its CPU is in update_state's figure, so that row is an upper bound).
CPU_TOOLS = TOOLS


def cpu_table(run: CpuRun) -> str:
    floor_cpu = run.per_call_ms(NOOP)
    floor_p50 = run.rounds.samples.summary(NOOP).p50_ms
    rows: list[list[object]] = []
    for tool in (NOOP, *CPU_TOOLS):
        cpu = run.per_call_ms(tool)
        p50 = run.rounds.samples.summary(tool).p50_ms
        ratio = cpu / floor_cpu
        verdict = "" if tool == NOOP else ("ok" if ratio <= GOAL else f"MISS (> {GOAL}x)")
        name = f"{NOOP} (SDK floor)" if tool == NOOP else tool
        rows.append([name, fmt_ms(cpu), f"{ratio:.2f}x", verdict, fmt_ms(p50), f"{p50 / floor_p50:.2f}x"])
    return markdown_table(
        [
            "tool",
            "server CPU ms/call",
            "CPU / noop CPU",
            f"goal <= {GOAL}x",
            "p50 ms (blocks)",
            "p50 / noop p50",
        ],
        rows,
        "lrrlrr",
    )


def profile_table(profiles: dict[str, dict[str, int]]) -> str:
    names = [name for name, _ in PROFILE_CATEGORIES]
    rows: list[list[object]] = []
    for tool in (NOOP, *CPU_TOOLS):
        counts = profiles.get(tool)
        if not counts:
            continue
        total = sum(counts.values()) or 1
        rows.append([tool, total, *(f"{counts[n] / total:.0%}" for n in names)])
    return markdown_table(["tool (stdio server)", "busy samples", *names], rows, "l" + "r" * (len(names) + 1))


def _verdict(ratios: dict[str, float], goal: float) -> str:
    within = [t for t, r in ratios.items() if r <= goal]
    missed = sorted((t for t in ratios if t not in within), key=lambda t: -ratios[t])
    if not missed:
        return f"**met** by all {len(ratios)} hot tools"
    return (
        f"**not met**: {len(within)} of {len(ratios)} within it ({', '.join(within) or 'none'}); over it: "
        + ", ".join(f"{t} {ratios[t]:.2f}x" for t in missed)
    )


def stdio_summary(samples: Samples, replays: Samples) -> str:
    """The reading of the latency run, generated from its figures."""
    floor = samples.summary(NOOP).p50_ms
    vs_noop = {t: samples.summary(t).p50_ms / floor for t in TOOLS}
    vs_replay = {t: samples.summary(t).p50_ms / replays.summary(t).p50_ms for t in TOOLS}
    over = [t for t in TOOLS if vs_replay[t] > REPLAY_GOAL]
    # Ours <= REPLAY_GOAL x the replay leaves (REPLAY_GOAL - 1) x the replay's p50 for our work.
    budgets = "; ".join(
        f"{t} {samples.summary(t).p50_ms - replays.summary(t).p50_ms:.3f} ms, allowed "
        f"{replays.summary(t).p50_ms * (REPLAY_GOAL - 1):.3f} ms"
        for t in over
    )
    return (
        f"- p50 <= {GOAL}x the no-op's ({floor:.3f} ms in this run): {_verdict(vs_noop, GOAL)}.\n"
        f"- p50 <= {REPLAY_GOAL}x the replay's (our own work <= 20 % of a call): "
        f"{_verdict(vs_replay, REPLAY_GOAL)}."
        + (f"\n- Our own work (p50 over the replay's) where it is over: {budgets}." if over else "")
    )


def table(samples: Samples, replays: Samples, checks: Checks) -> str:
    floor = samples.summary(NOOP)
    rows: list[list[object]] = []
    for tool in (NOOP, *TOOLS):
        s = samples.summary(tool)
        ratio = s.p50_ms / floor.p50_ms
        size, check_ms, replayed = checks[tool]
        verdict = "" if tool == NOOP else ("ok" if ratio <= GOAL else f"MISS (> {GOAL}x)")
        replay_cells = ["", "", "", ""]
        if tool != NOOP:
            r = replays.summary(tool).p50_ms
            vs = s.p50_ms / r
            replay_cells = [
                fmt_ms(r),
                f"{vs:.2f}x",
                "ok" if vs <= REPLAY_GOAL else f"MISS (> {REPLAY_GOAL}x)",
                f"{replayed / 1024:.1f}",
            ]
        rows.append(
            [
                f"{NOOP} (SDK floor)" if tool == NOOP else tool,
                fmt_ms(s.p50_ms),
                fmt_ms(s.p95_ms),
                f"{ratio:.2f}x",
                verdict,
                f"{size / 1024:.1f}",
                *replay_cells,
                fmt_ms(check_ms),
            ]
        )
    return markdown_table(
        [
            "tool",
            "p50 ms",
            "p95 ms",
            "p50 / noop p50",
            f"goal <= {GOAL}x",
            "result KB",
            "replay p50 ms",
            "p50 / replay p50",
            f"goal <= {REPLAY_GOAL}x",
            "replay result KB",
            "client schema check ms",
        ],
        rows,
        "lrrrlrrrlrr",
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=300, help="timed rounds (default 300)")
    parser.add_argument("--warmup", type=int, default=30, help="untimed rounds first (default 30)")
    parser.add_argument(
        "--profile", action="store_true", help="also break calls down in-process and cProfile the misses"
    )
    parser.add_argument("--profile-rounds", type=int, default=100, help="in-process rounds (default 100)")
    parser.add_argument(
        "--cpu", action="store_true", help="server CPU per call from /proc instead of the latency rounds"
    )
    parser.add_argument(
        "--pending", type=int, default=0, help="recall_stm/read_inbox with 1 vs this many pending signals"
    )
    parser.add_argument("--cpu-passes", type=int, default=5, help="passes over the tools (default 5)")
    parser.add_argument(
        "--cpu-block",
        type=int,
        default=200,
        help="calls per tool per pass (default 200: the WAL checkpoint a write block triggers every 100 "
        "writes mostly falls in that block)",
    )
    parser.add_argument(
        "--py-spy", action="store_true", help="with --cpu: py-spy profile of one block per tool"
    )
    parser.add_argument(
        "--before",
        metavar="LABEL",
        help="with --cpu: measure the code on PYTHONPATH as the 'before' of a change (sections "
        "stdio-cpu-before and profile-before; LABEL names that code, e.g. 'main at abc1234'); a later "
        "run without it compares itself with them",
    )
    parser.add_argument("--write-docs", action="store_true", help="update the docs (default: print only)")
    args = parser.parse_args(argv)
    if args.pending:
        pending_main(args)
        return
    if args.cpu:
        cpu_main(args)
        return
    with tempfile.TemporaryDirectory(prefix="bench-stdio-") as tmp:
        samples, replays, checks = asyncio.run(measure(Path(tmp), args.iterations, args.warmup))
        floor = samples.summary(NOOP).p50_ms
        misses = [t for t in TOOLS if samples.summary(t).p50_ms / floor > GOAL]
        breakdown, report = "", ""
        if args.profile:
            progress(f"profiling in-process; cProfile of {misses or 'no tool (none missed)'}")
            breakdown, report = asyncio.run(profile(Path(tmp), args.profile_rounds, misses))
    notes = [
        f"{machine_note()} {args.iterations} rounds after {args.warmup} warm-up rounds; each round calls "
        "each memory tool once, in the order of the table, and each tool's call is made in four steps: "
        f"the replay's untimed priming call, then, timed, `{NOOP}`, ours and the replay's (interleaved "
        "this way since 2026-12-02: before, a round called the no-op and every tool of ours, then the "
        "replay's whole round, so ours answered its round's first call and the no-op its every call after "
        "idling through some 20 calls to the other servers, and the replay every call straight after its "
        "own priming call; a process answering after an idle spell pays for cold caches and wake-ups, "
        "which inflated ours over the replay, most of all for the round's first tool, log_decision). Each "
        "server thus answers after the same few calls to the others, and every ratio compares latencies "
        "of the same minutes.",
        "",
        "- Client: `mcp.Client(mcp.StdioServerParameters(...))` (MCP Python SDK, the same client code for "
        "both servers); latency = `call_tool` round trip as the agent sees it. That includes the Python "
        "client re-validating every structured result against the tool's output schema with `jsonschema` "
        "(`ClientSession.validate_tool_result`): its median time on the tool's last result is in the last "
        "column, with the result's size.",
        "- Memory server: `python -m agent_memory.cli serve --agent-id bench`, embedded store in a temp "
        "directory (AGENT_MEMORY_SQLITE_PATH). Seeded with 5 pending signals, 8 own + 4 shared patterns; "
        "each round logs a decision and records its outcome, publishes a signal to itself and two peers "
        "and acks it (read_inbox sees 6 pending), reads and updates the state, recalls patterns with a "
        "context, searches decisions of one type (the default page of 10, as recall_stm returns; the "
        "issue's goals are at default page sizes).",
        f'- Floor: an MCPServer with one `async def {NOOP}() -> str` returning "ok", over stdio (the SDK '
        'validates and wraps its result, `{"result": "ok"}`, against its output schema).',
        "- Replay: the memory's own server (`build_server`, same SDK path, middleware and output schemas) "
        "whose tools answer with a result kept from a real call, without the memory's work: each call is "
        "first sent to it untimed as a priming call (the real work, on its own seeded store, result "
        "kept), then again with the same arguments, timed, and answered with the result the priming "
        "call just returned (the replayed result's size is in the table); served by the SDK's stdio loop "
        "(ours runs behind `server.stdio.AnsweredLines`, which counts as our work). Ours / replay = how "
        f"much of a call is our own work (goal <= {REPLAY_GOAL}x: at most 20 %).",
    ]
    markdown = (
        table(samples, replays, checks) + "\n\n" + stdio_summary(samples, replays) + "\n\n" + "\n".join(notes)
    )
    if breakdown:
        markdown += (
            f"\n\nWhere the time goes ({args.profile_rounds} rounds in-process: `build_server` + the SDK's "
            "in-memory `Client`, no subprocess, no JSON-RPC framing; medians per call, share of the call's "
            "p50 in brackets). Tool body = `agent_memory.tools._common.run` (registration, `Memory`, "
            "storage); of which SQLite = the body's time inside the sqlite3 module's calls (statements, "
            "their fetches, BEGIN and COMMIT with the WAL frames a commit writes: SQLite's own work, "
            "the Python around it excluded; the store's connections are opened with a timing "
            "subclass of `sqlite3.Connection` for this pass); SDK result conversion = "
            "`FuncMetadata.convert_result` (validate the returned model, dump it, render the text "
            "content); client schema check = `ClientSession.validate_tool_result`."
            "\n\n" + breakdown
        )
    publish("stdio", markdown, write=args.write_docs)
    if report:
        print(report, file=sys.stderr)


PENDING_TOOLS = ("recall_stm", "read_inbox")
# read_inbox returns a page of what is pending: with 1 pending that is one entry, so both servers
# are asked for one entry (the same result); recall_stm's page does not depend on the signals.
PENDING_ARGS: dict[str, dict[str, Any]] = {"recall_stm": {}, "read_inbox": {"limit": 1}}
PENDING_GOAL = 1.1


async def measure_pending(workdir: Path, few: int, many: int, passes: int, block: int) -> dict[str, Any]:
    """recall_stm and read_inbox on two servers, one whose agent has ``few`` pending signals, one
    with ``many``: per tool, blocks of calls interleaved between them, latency and server CPU per
    call."""
    servers: dict[int, tuple[mcp.Client, int]] = {}
    samples = Samples()
    cpu: dict[str, list[int]] = {}
    async with AsyncExitStack() as stack:
        for n in (few, many):
            db = workdir / f"pending-{n}.db"
            await seed(db, pending=n)
            running = child_pids("agent_memory.cli")
            client = await stack.enter_async_context(mcp.Client(memory_params(db)))
            await client.call_tool("get_state", {})
            (pid,) = child_pids("agent_memory.cli") - running
            servers[n] = (client, pid)
        for p in range(passes + 1):
            for tool in PENDING_TOOLS:
                # Calls interleaved between the servers (which goes first alternates by call), so
                # that a burst of the machine's other load falls on both series alike; each
                # server's CPU over the block counts only its own calls.
                before = {n: cpu_ns(pid) for n, (_, pid) in servers.items()}
                for i in range(block):
                    for n in (few, many) if i % 2 else (many, few):
                        client, _ = servers[n]
                        result = await samples.time(
                            f"{tool}@{n}", client.call_tool(tool, PENDING_ARGS[tool]), record=p > 0
                        )
                        ok(tool, result)
                if p > 0:
                    for n, (_, pid) in servers.items():
                        cpu.setdefault(f"{tool}@{n}", []).append(cpu_ns(pid) - before[n])
            progress(f"pending pass {p}/{passes}")
    return {"samples": samples, "cpu": {k: sum(v) / (len(v) * block) / 1e6 for k, v in cpu.items()}}


def pending_table(m: dict[str, Any], few: int, many: int) -> str:
    samples, cpu = m["samples"], m["cpu"]
    rows: list[list[object]] = []
    for tool in PENDING_TOOLS:
        a, b = samples.summary(f"{tool}@{few}").p50_ms, samples.summary(f"{tool}@{many}").p50_ms
        ca, cb = cpu[f"{tool}@{few}"], cpu[f"{tool}@{many}"]
        worst = max(b / a, cb / ca)
        verdict = "ok" if worst <= PENDING_GOAL else f"MISS (> {PENDING_GOAL}x)"
        name = tool + "".join(f" ({k} {v})" for k, v in PENDING_ARGS[tool].items())
        rows.append(
            [name, fmt_ms(a), fmt_ms(b), f"{b / a:.2f}x", fmt_ms(ca), fmt_ms(cb), f"{cb / ca:.2f}x", verdict]
        )
    return markdown_table(
        [
            "tool",
            f"p50 ms @ {few} pending",
            f"p50 ms @ {many:,} pending",
            "ratio",
            f"server CPU ms @ {few}",
            f"server CPU ms @ {many:,}",
            "ratio",
            f"goal <= {PENDING_GOAL}x",
        ],
        rows,
        "lrrrrrrl",
    )


def pending_main(args: argparse.Namespace) -> None:
    few, many = 1, args.pending
    with tempfile.TemporaryDirectory(prefix="bench-pending-") as tmp:
        m = asyncio.run(measure_pending(Path(tmp), few, many, args.cpu_passes, args.cpu_block))
    notes = [
        f"{machine_note()} Two memory servers over stdio, seeded alike except for the signals pending for "
        f"the agent ({few} vs {many:,}); {args.cpu_passes} passes after a warm-up pass, each a block of "
        f"{args.cpu_block} calls per tool and server, the two servers' calls interleaved (which goes first "
        "alternates). recall_stm with its default "
        "page (10 decisions, the notes, the pending count); read_inbox with limit 1, so that both servers "
        "return one entry (its default page is min(10, pending) entries). Server CPU from "
        "`/proc/PID/task/*/schedstat` over each block.",
    ]
    publish("pending", pending_table(m, few, many) + "\n\n" + "\n".join(notes), write=args.write_docs)


def _data_comment(data: dict[str, Any]) -> str:
    """The measured figures of a section, for a later run to compare with (read by
    :func:`_read_data`); an HTML comment, so the rendered page does not show it."""
    return f"<!-- data {json.dumps(data, separators=(',', ':'))} -->"


def _read_data(section: str) -> dict[str, Any] | None:
    """The figures a previous run stored in ``section`` of the docs, if it is there."""
    if not DOC_PATH.exists():
        return None
    start, end = (f"<!-- bench:{section}:{edge} -->" for edge in ("start", "end"))
    text = DOC_PATH.read_text(encoding="utf-8")
    body = text.partition(start)[2].partition(end)[0]
    found = re.search(r"<!-- data (.*?) -->", body)
    data: dict[str, Any] | None = json.loads(found.group(1)) if found else None
    return data


async def loop_holds(workdir: Path, rounds_n: int) -> dict[str, float] | None:
    """How long the embedded store's calls held the event loop (they run on the loop's thread
    when short, see :mod:`agent_memory.storage.sqlite.engine`): ``rounds_n`` rounds of every tool
    in-process, the engine's own timings of its inline calls. None for code without them."""
    from agent_memory.config import Settings
    from agent_memory.server.app import build_server

    db = workdir / "holds.db"
    await seed(db)
    async with open_store("sqlite", sqlite_path=db) as store:
        stats = getattr(store.engine, "inline_stats", None)
        if stats is None:
            return None
        stats.timing = True  # (off by default: reading the thread's CPU time is a system call)
        server = build_server(Settings(agent_id=ME, sqlite_path=db), store=store)
        async with mcp.Client(server) as client:
            rounds = Rounds(client, None)
            for i in range(10):
                await rounds.round(i, record=False)
            calls_before, to_worker_before = stats.calls, stats.to_worker
            stats.durations.clear()
            for i in range(10, 10 + rounds_n):
                await rounds.round(i, record=False)
            held = sorted(stats.durations)
            return {
                "per_tool_call": (stats.calls - calls_before) / (rounds_n * len(TOOLS)),
                "to_worker": stats.to_worker - to_worker_before,
                "p50_ms": held[len(held) // 2] * 1e3,
                "p99_ms": held[min(len(held) - 1, int(len(held) * 0.99))] * 1e3,
                "max_ms": held[-1] * 1e3,
                "calls": len(held),
            }


def cpu_data(run: CpuRun) -> dict[str, Any]:
    return {"noop_ms": run.per_call_ms(NOOP), "tools": {t: run.per_call_ms(t) for t in CPU_TOOLS}}


def cpu_summary(data: dict[str, Any], before: dict[str, Any] | None) -> str:
    """The reading of a run, generated from its figures (and the before run's, if stored)."""
    floor, tools = data["noop_ms"], data["tools"]
    ratios = {t: ms / floor for t, ms in tools.items()}
    within = [t for t, r in ratios.items() if r <= GOAL]
    missed = sorted((t for t in ratios if t not in within), key=lambda t: -ratios[t])
    verdict = (
        f"**met** by all {len(tools)} hot tools."
        if not missed
        else (
            f"**not met**: {len(within)} of {len(tools)} hot tools within it "
            f"({', '.join(within) or 'none'}); "
            "over it: " + ", ".join(f"{t} {ratios[t]:.2f}x" for t in missed) + "."
        )
    )
    lines = [
        f"Goal (every hot tool's server CPU per call <= {GOAL}x the no-op's): {verdict} Per call, ours "
        f"costs {min(ratios.values()):.2f}-{max(ratios.values()):.2f}x the no-op's {floor:.3f} ms of CPU."
    ]
    if before is not None:
        b_floor, b_tools = before["noop_ms"], before["tools"]
        rows = [
            [
                t,
                fmt_ms(b_tools[t]),
                f"{b_tools[t] / b_floor:.2f}x",
                fmt_ms(tools[t]),
                f"{ratios[t]:.2f}x",
                f"{tools[t] - b_tools[t]:+.3f}",
            ]
            for t in CPU_TOOLS
            if t in b_tools
        ]
        cut = [tools[t] / b_tools[t] - 1 for t in CPU_TOOLS if t in b_tools]
        b_within = sum(1 for t in CPU_TOOLS if t in b_tools and b_tools[t] / b_floor <= GOAL)
        lines += [
            "",
            f"Before ({before.get('label', 'the before run')}, section stdio-cpu-before) and after (this "
            f"run), each against the no-op of its own run ({b_floor:.3f} ms before, {floor:.3f} ms after). "
            f"Tools within the goal: {b_within} before, {len(within)} after; change of server CPU per call "
            f"{min(cut):+.0%} to {max(cut):+.0%}.",
            "",
            markdown_table(
                ["tool", "before CPU ms", "before / noop", "after CPU ms", "after / noop", "after - before"],
                rows,
                "lrrrrr",
            ),
        ]
    return "\n".join(lines)


def holds_note(holds: dict[str, float] | None, rounds_n: int) -> str:
    if holds is None:
        return "- Event loop: this code hands every SQLite call to the engine's worker thread."
    return (
        f"- Event loop: the embedded store ran {holds['per_tool_call']:.1f} SQLite calls per tool call on "
        f"the event loop's thread (in-process, {rounds_n} rounds of every tool, {holds['calls']:,} calls); "
        f"each held the loop for p50 {holds['p50_ms']:.3f} ms, p99 {holds['p99_ms']:.3f} ms, at most "
        f"{holds['max_ms']:.3f} ms of the thread's CPU time; {holds['to_worker']:g} went to the worker "
        "thread instead (data over the inline budget)."
    )


def cpu_main(args: argparse.Namespace) -> None:
    suffix = "-before" if args.before else ""
    with tempfile.TemporaryDirectory(prefix="bench-cpu-") as tmp:
        spy = Path(tmp) / "spy" if args.py_spy else None
        if spy is not None:
            spy.mkdir()
        run, profiles = asyncio.run(measure_cpu(Path(tmp), args.cpu_passes, args.cpu_block, spy))
        holds = asyncio.run(loop_holds(Path(tmp), args.profile_rounds))
    data = cpu_data(run)
    if args.before:
        data["label"] = args.before
    before = None if args.before else _read_data("stdio-cpu-before")
    code = f" Server code measured: {args.before}." if args.before else ""
    notes = [
        f"{machine_note()} {args.cpu_passes} passes after a warm-up pass; each pass runs, for each tool "
        f"in the order of the table, a block of {args.cpu_block} consecutive calls of `{NOOP}` and then "
        f"one of the tool, over stdio, both servers started by "
        f"`mcp.Client(mcp.StdioServerParameters(...))`; the no-op's figure is over all its blocks.{code}",
        "",
        "- Server CPU: user + system time of every thread of the server process "
        "(`/proc/PID/task/*/schedstat`) over each block, divided by the calls. It includes the JSON-RPC "
        "and stdio work, which the no-op pays too (through the SDK's stdio transport, which reads and "
        "writes in worker threads).",
        "- update_state passes the version its previous call wrote. record_outcome and ack_signal consume "
        "the decisions and signals of the log_decision and publish_signal blocks before them.",
        holds_note(holds, args.profile_rounds),
    ]
    parts = [cpu_table(run), cpu_summary(data, before), "\n".join(notes), _data_comment(data)]
    publish(f"stdio-cpu{suffix}", "\n\n".join(parts), write=args.write_docs)
    if profiles:
        prof = (
            profile_table(profiles)
            + "\n\n"
            + f"{machine_note()} py-spy (`record --rate 1000 --threads --nonblocking`) attached to the stdio "
            f"server during one block of {max(args.cpu_block, 200)} calls per tool; samples of idle "
            "threads (a worker thread waiting for a job, the stdin reader) dropped. Each busy sample "
            "counts once, by its innermost Python frame (time in C code counts in the frame calling it)."
            + code
        )
        publish(f"profile{suffix}", prof, write=args.write_docs)


if __name__ == "__main__":
    main()
