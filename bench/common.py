"""Shared helpers of the benchmarks: timing and percentiles, markdown tables, the sections of
docs/BENCHMARKS.md, a moto server (DynamoDB emulator), stores on both backends, and a bulk loader
that fills an embedded store with decisions whose rows are identical to the store's own writes.

Benchmarks are scripts, not tests: each prints a markdown table and, when given ``--write-docs``,
writes it into its section of docs/BENCHMARKS.md (between ``<!-- bench:{name}:start -->`` and
``<!-- bench:{name}:end -->``).
"""

from __future__ import annotations

import os
import platform
import re
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

# The emulator launchers are the test suite's (one home): DynamoDB Local and moto.
from tests.fixtures.emulators import FAKE_AWS_ENV, aws_test_env, dynamodb_local, moto_server

from agent_memory.config import Settings
from agent_memory.memory.identity import Caller
from agent_memory.memory.service import Memory, new_id
from agent_memory.models import Outcome, utcnow
from agent_memory.storage import keys
from agent_memory.storage.engine import Item, Put, QueryPage, Update, WriteOp
from agent_memory.storage.records.quotas import count_attr, is_quota_item
from agent_memory.storage.sqlite import engine as sqlite_engine
from agent_memory.storage.sqlite import items as sqlite_items
from agent_memory.storage.sqlite.engine import SqliteEngine
from agent_memory.storage.store import MemoryStore

__all__ = ["FAKE_AWS_ENV", "aws_test_env", "dynamodb_local", "moto_server"]

T = TypeVar("T")
Backend = Literal["sqlite", "dynamodb"]

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "BENCHMARKS.md"

# --------------------------------------------------------------------------------------------------
# machine, progress
# --------------------------------------------------------------------------------------------------


def machine_note() -> str:
    """One line on where and when a section was measured (no host names, no paths)."""
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    return (
        f"Measured {today} on {os.cpu_count()} CPU cores ({platform.system()} {platform.machine()}), "
        f"Python {platform.python_version()}."
    )


def progress(message: str) -> None:
    """Progress goes to stderr, so stdout carries only the table."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------------------------------

now_ns = time.perf_counter_ns


@dataclass(frozen=True)
class Summary:
    """Percentiles of one series of latencies, in milliseconds."""

    n: int
    p50_ms: float
    p95_ms: float
    mean_ms: float


def summarize(samples_ns: Sequence[int]) -> Summary:
    """p50 (median) and p95 (``statistics.quantiles``, inclusive method) of samples in ns."""
    if not samples_ns:
        raise ValueError("no samples")
    ms = [s / 1e6 for s in samples_ns]
    p95 = statistics.quantiles(ms, n=20, method="inclusive")[18] if len(ms) > 1 else ms[0]
    return Summary(len(ms), statistics.median(ms), p95, statistics.fmean(ms))


@dataclass
class Samples:
    """Latency samples per key (an operation, a tool, an op at a size...)."""

    ns: dict[str, list[int]] = field(default_factory=dict)

    def add(self, key: str, elapsed_ns: int) -> None:
        self.ns.setdefault(key, []).append(elapsed_ns)

    async def time(self, key: str, call: Awaitable[T], *, record: bool = True) -> T:
        """Await ``call`` and (unless ``record`` is False: a warm-up) keep its latency."""
        start = now_ns()
        result = await call
        elapsed = now_ns() - start
        if record:
            self.add(key, elapsed)
        return result

    def summary(self, key: str) -> Summary:
        return summarize(self.ns[key])


async def timed_loop(op: Callable[[int], Awaitable[object]], *, iterations: int, warmup: int) -> list[int]:
    """Run ``op(i)`` ``warmup`` times unrecorded, then ``iterations`` times; latencies in ns."""
    for i in range(warmup):
        await op(i)
    out: list[int] = []
    for i in range(warmup, warmup + iterations):
        start = now_ns()
        await op(i)
        out.append(now_ns() - start)
    return out


def fmt_ms(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def fmt_num(value: float) -> str:
    """A per-op count or unit figure: integers without decimals, others with up to two."""
    if abs(value - round(value)) < 1e-9:
        return str(round(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


# --------------------------------------------------------------------------------------------------
# markdown
# --------------------------------------------------------------------------------------------------


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None) -> str:
    """A GitHub markdown table; ``align`` has one of ``l``/``r``/``c`` per column (default: the
    first column left, the others right)."""
    align = align or "l" + "r" * (len(headers) - 1)
    if len(align) != len(headers):
        raise ValueError("align needs one letter per column")
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    rule = {"l": ":{}", "r": "{}:", "c": ":{}:"}

    def line(row: Sequence[str]) -> str:
        parts = [c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align, strict=True)]
        return "| " + " | ".join(parts) + " |"

    dashes = [rule[a].format("-" * max(1, w - len(rule[a]) + 2)) for a, w in zip(align, widths, strict=True)]
    sep = "| " + " | ".join(dashes) + " |"
    return "\n".join([line(cells[0]), sep, *(line(r) for r in cells[1:])])


def write_section(doc_path: Path, name: str, markdown: str) -> None:
    """Replace the text between ``<!-- bench:{name}:start -->`` and ``<!-- bench:{name}:end -->``
    in ``doc_path`` with ``markdown`` (appending the markers at the end if they are absent)."""
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    body = f"{start}\n{markdown.strip()}\n{end}"
    text = doc_path.read_text(encoding="utf-8") if doc_path.exists() else ""
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: body, text, count=1)
    else:
        text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + body + "\n"
    doc_path.parent.mkdir(parents=True, exist_ok=True)
    doc_path.write_text(text, encoding="utf-8")


def publish(name: str, markdown: str, *, doc_path: Path = DOC_PATH, write: bool = False) -> None:
    """Print a section to stdout and, if ``write`` (the bench's ``--write-docs``), store it in the
    docs."""
    print(markdown)
    if write:
        write_section(doc_path, name, markdown)
        progress(f"section {name!r} written to {doc_path.parent.name}/{doc_path.name}")


# --------------------------------------------------------------------------------------------------
# backends
# --------------------------------------------------------------------------------------------------


def bench_settings(**overrides: Any) -> Settings:
    """Settings for a :class:`Memory` built over a store given explicitly (the backend settings
    are then unused)."""
    return Settings(**overrides)


MOTO_CALL_TIMEOUT_S = 3600.0
"""The call deadline of the benches' DynamoDB engine (the largest the settings allow): the client
waits up to a quarter of it for an answer before it retries. With the default (30 s: a 7.5 s read
timeout), moto on a loaded machine sometimes takes longer than that over one TransactWriteItems,
so botocore sends the same transaction again while moto is still running the first. moto runs
overlapping transactions without isolation: each backs up the tables it touches and restores its
backup when it fails, so the retry, cancelled by the first attempt's items (which the store reads
as its own write, answered once), restores tables from before them. The acknowledged decision is
then gone and the next get_decision finds nothing (or moto answers 500 when a table changes during
the backup copy). DynamoDB itself makes such a retry idempotent (the client request token).
Waiting for moto's answer keeps its requests one at a time, as the benches send them."""


@asynccontextmanager
async def open_store(
    backend: Backend,
    *,
    workdir: Path | None = None,
    endpoint: str | None = None,
    clock: Callable[[], datetime] = utcnow,
    sqlite_path: Path | None = None,
) -> AsyncIterator[MemoryStore]:
    """A :class:`MemoryStore` on a fresh SQLite file (under ``workdir``, or ``sqlite_path``) or
    on fresh DynamoDB tables at ``endpoint`` (a random table prefix; deleted afterwards)."""
    if backend == "sqlite":
        from agent_memory.storage.sqlite import SqliteEngine

        if sqlite_path is None:
            if workdir is None:
                raise ValueError("the sqlite backend needs workdir or sqlite_path")
            sqlite_path = workdir / f"bench-{uuid.uuid4().hex[:8]}.db"
        engine = await SqliteEngine.open(sqlite_path)
        try:
            yield MemoryStore(engine, clock)
        finally:
            await engine.close()
        return
    if endpoint is None:
        raise ValueError("the dynamodb backend needs the endpoint of a moto server")
    from agent_memory.storage.dynamodb.admin import create_tables, delete_tables
    from agent_memory.storage.dynamodb.engine import DynamoEngine

    settings = Settings(
        backend="dynamodb",
        dynamodb_endpoint_url=endpoint,
        aws_region="us-east-1",
        table_prefix=f"bench{uuid.uuid4().hex[:8]}_",
        call_timeout_seconds=MOTO_CALL_TIMEOUT_S,
    )
    await create_tables(settings)
    try:
        dynamo = await DynamoEngine.open(settings)
        try:
            yield MemoryStore(dynamo, clock)
        finally:
            await dynamo.close()
    finally:
        await delete_tables(settings)


@dataclass
class ManualClock:
    """A clock the loader sets by hand (``now``); every reading advances by ``step`` so that
    records written in a row keep their order."""

    now: datetime = field(default_factory=utcnow)
    step: timedelta = timedelta(microseconds=1)

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


# --------------------------------------------------------------------------------------------------
# bulk loading of decisions into the embedded store
# --------------------------------------------------------------------------------------------------


class _CaptureEngine:
    """An item engine that keeps the writes the store sends instead of applying them.

    A fresh decision (no pattern refs, no parent) only writes, except for the per-agent quota
    counters (:mod:`agent_memory.storage.records.quotas`), which the store reads once per agent and
    day to prune expired buckets: those reads are answered from the counters as the loader has
    them so far (``counters``), so the store prunes exactly as it would on the real file."""

    def __init__(self, counters: dict[tuple[str, str, str], Item]) -> None:
        self.ops: list[WriteOp] = []
        self._counters = counters

    async def write(self, ops: Sequence[WriteOp]) -> None:
        self.ops.extend(ops)

    async def get(self, table: Any, pk: str, sk: str, *, consistent: bool = True) -> Item | None:
        item = self._counters.get((table, pk, sk))
        if is_quota_item(table, item or {"pk": pk, "sk": sk}):
            return dict(item) if item is not None else None
        raise AssertionError(f"the bulk loader only captures writes (and reads quota counters), not {pk!r}")

    async def query(self, *args: Any, **kwargs: Any) -> QueryPage:
        raise AssertionError("the bulk loader only captures writes")

    async def update(self, op: Update) -> Item:
        raise AssertionError("the bulk loader only captures writes")

    def scan(self, table: Any) -> AsyncIterator[Item]:
        raise AssertionError("the bulk loader only captures writes")

    async def close(self) -> None:
        return None


@dataclass(frozen=True)
class DecisionSpec:
    """One decision to load: who, what, when, and its context and outcome (None = no outcome)."""

    agent_id: str
    decision_type: str
    created_at: datetime
    context: dict[str, Any]
    reasoning: dict[str, Any]
    success: bool | None
    quality: float | None = None
    latency_ms: float | None = None


class BulkLoader:
    """Fills an embedded store with decisions quickly, with rows identical to real ones.

    Every decision goes through the real write path, ``Memory.log_decision`` ->
    ``MemoryStore.put_decision`` (validation, the store's item builders, the quota charge), on an
    engine that captures the transaction instead of applying it. What is skipped is the engine's
    per-call work: the captured puts become rows with the SQLite engine's own row builder
    (``items.row``: table layout, compression, index columns), inserted in large transactions on a
    second thread (SQLite works outside the GIL) while the next batch is built; the captured
    updates (rollup counters and the per-agent quota counters) are applied in order, in memory,
    with the engine's own update semantics (``items.updated``, their conditions checked with
    ``items.holds``: a quota that would refuse a decision stops loading) and written once at the
    end. So the quota counters count every loaded decision, as if each had been logged.

    Verification: the first ``verify_first`` decisions and every ``verify_every``-th one are also
    logged through a real :class:`SqliteEngine` on a scratch file (same clock, same request
    token; the file is opened for each check); the decision's two rows read back from that file
    must be byte-identical to the rows the loader inserts, or loading stops. ``verified`` counts
    them.

    The file must have been created by ``SqliteEngine.open`` (schema) and must not be used by
    anyone else while loading; it is left in WAL mode, as the engine keeps it.
    """

    def __init__(
        self,
        path: Path,
        *,
        settings: Settings | None = None,
        batch_rows: int = 100_000,
        verify_first: int = 50,
        verify_every: int = 10_000,
    ) -> None:
        self.path = path
        self.settings = settings or bench_settings()
        self.batch_rows = batch_rows
        self.verify_first = verify_first
        self.verify_every = verify_every
        self._clock = ManualClock()
        self._counters: dict[tuple[str, str, str], Item] = {}
        self._capture = _CaptureEngine(self._counters)
        self._memory = Memory(MemoryStore(self._capture, self._clock), self.settings, self._clock)
        self._check_clock = ManualClock()
        self._check_path = path.with_name(path.name + ".verify")
        self._rows: list[tuple[Any, ...]] = []
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-loader")
        self._pending: Future[None] | None = None
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # Loader-only settings: a big page cache, no fsync, no journal (a crash loses a temp file).
        self._conn.execute("PRAGMA cache_size=-1000000")
        self._conn.execute("PRAGMA synchronous=OFF")
        self._conn.execute("PRAGMA journal_mode=OFF")
        self.decisions = 0
        self.per_agent: dict[str, int] = {}
        self.verified = 0
        self.rows_written = 0

    # --- the real path ---------------------------------------------------------------------------

    @staticmethod
    def _outcome(spec: DecisionSpec) -> Outcome | None:
        if spec.success is None:
            return None
        return Outcome(
            success=spec.success,
            quality_score=spec.quality,
            latency_ms=spec.latency_ms,
            recorded_at=spec.created_at.astimezone(UTC) + timedelta(minutes=5),
        )

    async def _log(self, memory: Memory, clock: ManualClock, spec: DecisionSpec, decision_id: str) -> None:
        clock.now = spec.created_at.astimezone(UTC) - clock.step
        await memory.log_decision(
            Caller(spec.agent_id),
            spec.decision_type,
            context=spec.context,
            reasoning=spec.reasoning,
            outcome=self._outcome(spec),
            decision_id=decision_id,
        )

    async def _verify(self, spec: DecisionSpec, decision_id: str, puts: list[Put], token: str) -> None:
        """Log the same decision (same request token) on a real engine; compare the stored rows."""
        engine = await SqliteEngine.open(self._check_path)
        try:
            memory = Memory(MemoryStore(engine, self._check_clock), self.settings, self._check_clock)
            with _request_token(token):
                await self._log(memory, self._check_clock, spec, decision_id)
        finally:
            await engine.close()
        mine = [sqlite_items.row(op.table, op.item).params() for op in puts]  # type: ignore[arg-type]
        with sqlite3.connect(self._check_path) as conn:
            real = [
                conn.execute(
                    "SELECT tbl, pk, sk, data, ttl, gsi1pk, gsi1sk, gsi2pk, gsi2sk, gsi3pk, gsi3sk "
                    "FROM items WHERE tbl = ? AND pk = ? AND sk = ?",
                    row[:3],
                ).fetchone()
                for row in mine
            ]
        if real != mine:
            raise AssertionError(
                f"the bulk loader's rows differ from the engine's own write of the same decision; "
                f"loader: {mine!r}; engine: {real!r}"
            )
        self.verified += 1

    # --- loading ---------------------------------------------------------------------------------

    async def add(self, spec: DecisionSpec) -> str:
        """Log one decision through the store (captured) and queue its rows; returns its id."""
        decision_id = new_id("dec")
        check = self.decisions < self.verify_first or self.decisions % self.verify_every == 0
        token = uuid.uuid4().hex
        if check:
            with _request_token(token):
                await self._log(self._memory, self._clock, spec, decision_id)
        else:
            await self._log(self._memory, self._clock, spec, decision_id)
        ops, self._capture.ops = self._capture.ops, []
        puts = [op for op in ops if isinstance(op, Put)]
        for op in ops:
            if isinstance(op, Update):
                key = sqlite_items.target(op)
                current = self._counters.get(key)
                refused = [c for c in op.conditions if not sqlite_items.holds(c, current)]
                if refused:
                    raise AssertionError(f"the store refuses this decision ({refused!r} on {op.pk!r})")
                self._counters[key] = sqlite_items.updated(op, current)
            elif not isinstance(op, Put):
                raise AssertionError(f"a fresh decision writes puts and updates, not {op!r}")
        if check:
            await self._verify(spec, decision_id, puts, token)
        self._rows += [sqlite_items.row(op.table, op.item, values_checked=True).params() for op in puts]  # type: ignore[arg-type]
        self.decisions += 1
        self.per_agent[spec.agent_id] = self.per_agent.get(spec.agent_id, 0) + 1
        if len(self._rows) >= self.batch_rows:
            self._flush()
        return decision_id

    def _insert(self, rows: list[tuple[Any, ...]]) -> None:
        # Key order: each batch walks the primary-key B-tree once instead of jumping around.
        rows.sort(key=lambda r: (r[0], r[1], r[2]))
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(sqlite_engine._PUT_SQL, rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _flush(self) -> None:
        if self._pending is not None:
            self._pending.result()
        rows, self._rows = self._rows, []
        self._pending = self._writer.submit(self._insert, rows)
        self.rows_written += len(rows)

    def finish(self) -> None:
        """Write what is pending (rows, the rollup and quota counters), back to WAL mode, close."""
        if self._memory.quotas.enabled:
            for agent, count in self.per_agent.items():
                quota = self._counters.get(("state", keys.quota_pk(agent), keys.QUOTA_SK), {})
                if quota.get(count_attr("decisions")) != count:
                    raise AssertionError(
                        f"{agent}'s quota counters do not count its {count} decisions: {quota}"
                    )
        self._rows += [
            sqlite_items.row(table, item, compress=False).params()  # type: ignore[arg-type]
            for (table, _, _), item in sorted(self._counters.items())
        ]
        self._counters.clear()
        self._flush()
        assert self._pending is not None
        self._pending.result()
        self._writer.shutdown()
        # The engine keeps the file in WAL mode. No ANALYZE: a real file has no planner statistics.
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.close()
        for scratch in self._check_path.parent.glob(self._check_path.name + "*"):
            scratch.unlink()
        # The load ran without fsync: flush it to disk now, or the first checkpoint of the measured
        # writes would pay for writing back the whole file.
        with self.path.open("rb+") as db:
            os.fsync(db.fileno())


@contextmanager
def _request_token(token: str) -> Iterator[None]:
    """The store draws a random token per write (it tells a retried write from another): two
    writes compared byte for byte draw the same one."""
    from agent_memory.storage.records import decisions

    saved = decisions.new_request_token  # type: ignore[attr-defined]
    decisions.new_request_token = lambda: token  # type: ignore[attr-defined]
    try:
        yield
    finally:
        decisions.new_request_token = saved  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------------
# server processes: CPU time from /proc, py-spy profiles
# --------------------------------------------------------------------------------------------------


def child_pid(marker: str) -> int:
    """The pid of this process's child whose command line contains ``marker`` (a stdio server
    started by ``mcp.Client``). Linux only (reads /proc)."""
    found = child_pids(marker)
    if len(found) != 1:
        raise RuntimeError(f"expected one child process running {marker!r}, found {found}")
    return found.pop()


def child_pids(marker: str) -> set[int]:
    """The pids of this process's children whose command line contains ``marker``."""
    me = os.getpid()
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == me and marker in cmdline:
            found.add(int(entry.name))
    return found


def cpu_ns(pid: int) -> int:
    """CPU time (user + system) used so far by every live thread of ``pid``, in ns, from
    ``/proc/PID/task/*/schedstat`` (nanosecond resolution, unlike the 10 ms ticks of
    ``/proc/PID/stat``)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended between listing and reading
    return total


@dataclass
class PySpy:
    """``py-spy record`` attached to a running process, writing raw (collapsed) stacks.

    Needs the ``py-spy`` binary (``pip install py-spy``) and permission to ptrace the target.
    """

    pid: int
    out: Path
    rate: int = 1000
    proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PySpy:
        self.proc = subprocess.Popen(
            [
                "py-spy",
                "record",
                "--pid",
                str(self.pid),
                "--rate",
                str(self.rate),
                "--format",
                "raw",
                "--output",
                str(self.out),
                "--nonblocking",
                "--threads",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)  # py-spy attaches asynchronously
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        assert self.proc is not None
        time.sleep(0.2)
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def collapsed_stacks(path: Path) -> list[tuple[list[str], int]]:
    """py-spy's raw output: (frames root first, sample count) per distinct stack."""
    stacks: list[tuple[list[str], int]] = []
    if not path.exists():
        return stacks
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        body, _, count = line.rpartition(" ")
        if body and count.isdigit():
            stacks.append((body.split(";"), int(count)))
    return stacks
