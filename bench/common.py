"""Shared helpers of the benchmarks: timing and percentiles, markdown tables, the sections of
docs/BENCHMARKS.md, a moto server (DynamoDB emulator), stores on both backends, and a bulk loader
that fills an embedded store with decisions whose rows are identical to the store's own writes.

Benchmarks are scripts, not tests: each prints a markdown table and, when given ``--write-docs``,
writes it into its section of docs/BENCHMARKS.md (between ``<!-- bench:{name}:start -->`` and
``<!-- bench:{name}:end -->``).
"""

from __future__ import annotations

import json
import os
import platform
import re
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

# The emulator launchers are the test suite's (one home): DynamoDB Local and moto.
from tests.fixtures.emulators import FAKE_AWS_ENV, aws_test_env, dynamodb_local, moto_server

from agent_memory import rollups
from agent_memory.config import Settings
from agent_memory.memory.identity import Caller
from agent_memory.memory.service import Memory, new_id
from agent_memory.models import Outcome, normalize_json, utcnow
from agent_memory.storage import keys
from agent_memory.storage.engine import Item, Put, QueryPage, Update, WriteOp
from agent_memory.storage.records.base import REQUEST_TOKEN
from agent_memory.storage.sqlite import items as sqlite_items
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

    ``MemoryStore.put_decision`` of a fresh decision (no pattern refs, no parent) only writes:
    that is all the loader sends through it."""

    def __init__(self) -> None:
        self.ops: list[WriteOp] = []

    async def write(self, ops: Sequence[WriteOp]) -> None:
        self.ops.extend(ops)

    async def get(self, table: Any, pk: str, sk: str, *, consistent: bool = True) -> Item | None:
        raise AssertionError("the bulk loader only captures writes")

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


def _json_time(ts: datetime) -> str:
    """A UTC datetime as pydantic serialises it in JSON mode (what ``model_dump`` stores)."""
    ts = ts.astimezone(UTC)
    text = f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d}T{ts.hour:02d}:{ts.minute:02d}:{ts.second:02d}"
    return f"{text}.{ts.microsecond:06d}Z" if ts.microsecond else f"{text}Z"


class BulkLoader:
    """Fills an embedded store with decisions quickly, with rows identical to real ones.

    The store's own write path costs about a millisecond of Python per decision on a slow core
    (pydantic validation, the engine's value checks), too slow for a million decisions. So each
    decision's two items (decision + id item) are built from the store's key builders
    (:mod:`agent_memory.storage.keys`) exactly as ``MemoryStore.put_decision`` builds them, and
    inserted with the SQLite engine's table layout and serialisation, in large transactions on a
    second thread (SQLite works outside the GIL) while the next batch is built. The rollup counters
    are summed per (agent, type, hour) with :mod:`agent_memory.rollups` and written at the end
    through the store's own ``_rollup_ops`` and the engine's update semantics (quality scores are
    binary fractions, so the float sums are exact in any order).

    Verification: the first ``verify_first`` decisions and every ``verify_every``-th one are also
    sent through the real path (``Memory.log_decision`` -> ``MemoryStore.put_decision`` on an
    engine that captures the writes, then the engine's ``_row``); the two item rows must be
    identical and the rollup deltas equal, or loading stops. ``verified`` counts them.

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
        from agent_memory.storage.sqlite import engine as sqlite_engine

        self._sql = sqlite_engine
        self.path = path
        self.settings = settings or bench_settings()
        self.batch_rows = batch_rows
        self.verify_first = verify_first
        self.verify_every = verify_every
        self._clock = ManualClock()
        self._capture = _CaptureEngine()
        self._store = MemoryStore(self._capture, self._clock)
        self._memory = Memory(self._store, self.settings, self._clock)
        self._rows: list[tuple[Any, ...]] = []
        self._deltas: dict[tuple[str, str, datetime], rollups.Delta] = {}
        self._ttl = timedelta(days=self.settings.decision_ttl_days)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-loader")
        self._pending: Future[None] | None = None
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # Loader-only settings: a big page cache, no fsync, no journal (a crash loses a temp file).
        self._conn.execute("PRAGMA cache_size=-1000000")
        self._conn.execute("PRAGMA synchronous=OFF")
        self._conn.execute("PRAGMA journal_mode=OFF")
        self.decisions = 0
        self.verified = 0
        self.rows_written = 0

    # --- items -----------------------------------------------------------------------------------

    def _items(self, spec: DecisionSpec, decision_id: str) -> tuple[list[Item], rollups.Delta]:
        """The decision item and its id item as put_decision writes them, and the rollup delta."""
        created = spec.created_at.astimezone(UTC)
        expires = created + self._ttl
        agent, dtype = spec.agent_id, spec.decision_type
        pk, sk = keys.decision_pk(agent, dtype), keys.decision_sk(created, decision_id)
        ttl = keys.epoch(expires)
        # Fields holding their default are not stored (``dump_compact``).
        item: Item = {
            "decision_id": decision_id,
            "agent_id": agent,
            **({"agent_version": self.settings.agent_version} if self.settings.agent_version else {}),
            "decision_type": dtype,
            "created_at": _json_time(created),
            "expires_at": _json_time(expires),
        }
        # The payload validator's canonical form (integral floats become ints).
        if spec.context:
            item["context"] = normalize_json(spec.context, "payload")
        if spec.reasoning:
            item["reasoning"] = normalize_json(spec.reasoning, "payload")
        item |= {
            "pk": pk,
            "sk": sk,
            "ttl": ttl,
            "gsi2pk": keys.decision_type_pk(dtype),
            "gsi2sk": keys.decision_type_sk(created, agent, decision_id),
            "gsi3pk": keys.decision_timeline_pk(agent),
            "gsi3sk": sk,
        }
        delta = rollups.decision_logged(False)
        if spec.success is not None:
            outcome = self._outcome(spec, construct=True)
            item["outcome"] = {
                "success": outcome.success,
                **({"quality_score": outcome.quality_score} if outcome.quality_score is not None else {}),
                **({"latency_ms": outcome.latency_ms} if outcome.latency_ms is not None else {}),
                "recorded_at": _json_time(outcome.recorded_at),
            }
            item["gsi1pk"] = keys.decision_success_pk(agent, outcome.success)
            item["gsi1sk"] = sk
            delta = rollups.merge(delta, rollups.outcome_recorded(outcome, False))
        id_item: Item = {
            "pk": keys.decision_id_pk(agent, decision_id),
            "sk": keys.ID_SK,
            "ttl": ttl,
            "agent_id": agent,
            "decision_type": dtype,
            "created_at": keys.iso(created),
            # A random token per write (it tells a retried write from another): _verify compares
            # the store's own items with this one put in place of theirs.
            REQUEST_TOKEN: uuid.uuid4().hex,
        }
        return [id_item, item], delta

    @staticmethod
    def _outcome(spec: DecisionSpec, *, construct: bool = False) -> Outcome:
        assert spec.success is not None
        fields: dict[str, Any] = dict(
            success=spec.success,
            quality_score=spec.quality,
            latency_ms=spec.latency_ms,
            signals_generated=0,
            errors=[],
            recorded_at=spec.created_at.astimezone(UTC) + timedelta(minutes=5),
        )
        # model_construct skips validation (the verified decisions go through validation).
        return Outcome.model_construct(**fields) if construct else Outcome(**fields)

    @staticmethod
    def _params(item: Item) -> tuple[Any, ...]:
        """Row parameters as the engine's ``_row(...).params()`` for a decisions-table item."""
        return sqlite_items.row("decisions", item, values_checked=True).params()

    async def _verify(
        self, spec: DecisionSpec, decision_id: str, rows: list[tuple[Any, ...]], delta: rollups.Delta
    ) -> None:
        """Send the same decision through the store's own write path; compare."""
        self._clock.now = spec.created_at.astimezone(UTC) - self._clock.step
        await self._memory.log_decision(
            Caller(spec.agent_id),
            spec.decision_type,
            context=spec.context,
            reasoning=spec.reasoning,
            outcome=self._outcome(spec) if spec.success is not None else None,
            decision_id=decision_id,
        )
        ops, self._capture.ops = self._capture.ops, []
        token = json.loads(sqlite_items.decode_data(rows[0][3])).get(REQUEST_TOKEN)
        real_rows = [
            self._sql._row(
                op.table, {**op.item, REQUEST_TOKEN: token} if REQUEST_TOKEN in op.item else op.item
            ).params()
            for op in ops
            if isinstance(op, Put)
        ]
        created = spec.created_at.astimezone(UTC)
        expected = self._store._rollup_ops(spec.agent_id, created, spec.decision_type, delta)
        real_updates = [op for op in ops if isinstance(op, Update)]
        if rows != real_rows or expected != real_updates or len(ops) != len(real_rows) + len(real_updates):
            raise AssertionError(
                "the bulk loader's items differ from the store's own put_decision; "
                f"loader: {rows!r} {expected!r}; store: {ops!r}"
            )
        self.verified += 1

    # --- loading ---------------------------------------------------------------------------------

    async def add(self, spec: DecisionSpec) -> str:
        """Queue one decision; returns its decision_id."""
        decision_id = new_id("dec")
        items, delta = self._items(spec, decision_id)
        rows = [self._params(item) for item in items]
        if self.decisions < self.verify_first or self.decisions % self.verify_every == 0:
            await self._verify(spec, decision_id, rows, delta)
        self._rows += rows
        created = spec.created_at.astimezone(UTC)
        group = (spec.agent_id, spec.decision_type, created.replace(minute=0, second=0, microsecond=0))
        summed = self._deltas.setdefault(group, {})
        for name, value in delta.items():
            # Zeros kept (unlike rollups.merge): put_decision's Update adds them, creating the attribute.
            summed[name] = summed.get(name, 0) + value
        self.decisions += 1
        if len(self._rows) >= self.batch_rows:
            self._flush()
        return decision_id

    def _insert(self, rows: list[tuple[Any, ...]]) -> None:
        # Key order: each batch walks the primary-key B-tree once instead of jumping around.
        rows.sort(key=lambda r: (r[0], r[1], r[2]))
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(self._sql._PUT_SQL, rows)
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
        """Write what is pending (rows and the rollups), back to WAL mode, close."""
        updated: dict[tuple[str, str, str], Item] = {}
        for (agent, dtype, hour), delta in sorted(self._deltas.items()):
            for op in self._store._rollup_ops(agent, hour, dtype, delta):
                key = (op.table, op.pk, op.sk)
                updated[key] = self._sql._updated(op, updated.get(key))
        self._deltas.clear()
        self._rows += [self._sql._row(table, item).params() for (table, _, _), item in updated.items()]  # type: ignore[arg-type]
        self._flush()
        assert self._pending is not None
        self._pending.result()
        self._writer.shutdown()
        # The engine keeps the file in WAL mode. No ANALYZE: a real file has no planner statistics.
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.close()
        # The load ran without fsync: flush it to disk now, or the first checkpoint of the measured
        # writes would pay for writing back the whole file.
        with self.path.open("rb+") as db:
            os.fsync(db.fileno())


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
