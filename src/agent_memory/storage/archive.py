"""The archive of decisions past retention: gzip JSON Lines, one object per agent and day.

Nothing leaves the memory silently: before an expired decision is deleted it is written here.

- On DynamoDB, TTL deletes the items and DynamoDB Streams hands their old images to
  :func:`agent_memory.storage.dynamodb.stream.lambda_handler`, which calls :func:`write_archive`.
- On the embedded store (with ``AGENT_MEMORY_ARCHIVE_URL`` set, the lazy purge leaves the decisions
  table alone), ``agent-memory archive`` calls :func:`archive_expired`: it writes the expired items
  and only then deletes them.
- ``agent-memory import`` reads an archive back with :func:`import_archive`.

Layout under the archive URL (a folder or ``s3://bucket/prefix/``)::

    agent={agent_id}/day={YYYY-MM-DD}/{sha256 of the content, 16 hex}.jsonl.gz

where the day is the decision's ``created_at`` (UTC). The content is the export format of
:mod:`agent_memory.storage.transfer` (a header line, then ``{"table": "decisions", "item": ...}``
lines sorted by key), gzip-compressed with a zero timestamp, so the same items always make the same
object: an archive step retried after a failure rewrites identical objects instead of adding
copies. Batches split differently on a retry (the stream's bisection) can put one item into two
objects; import writes by key, so it still restores one record.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from agent_memory.errors import ConfigurationError, InvalidInput, StorageUnavailable
from agent_memory.storage import keys
from agent_memory.storage.engine import Cond, ConditionFailed, Delete, Item, ItemEngine, Put, TableName
from agent_memory.storage.transfer import HEADER, item_line, parse_lines

ARCHIVED_TABLE: TableName = "decisions"
SUFFIX = ".jsonl.gz"
BATCH = 1000
"""Expired items archived (then deleted) per step of :func:`archive_expired`."""


def partition_of(item: Item) -> tuple[str, str]:
    """(agent, day) of an archived item: decisions and their id items both carry them."""
    agent = str(item.get("agent_id") or "_unknown")
    day = str(item.get("created_at") or "")[:10] or "_unknown"
    return agent, day


def encode(items: Iterable[Item]) -> bytes:
    ordered = sorted(items, key=lambda item: (item["pk"], item["sk"]))
    text = "\n".join([HEADER, *(item_line(ARCHIVED_TABLE, item) for item in ordered)]) + "\n"
    return gzip.compress(text.encode("utf-8"), mtime=0)


def decode(data: bytes, name: str) -> list[tuple[TableName, Item]]:
    try:
        text = gzip.decompress(data).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{name} is not a gzip-compressed archive: {exc}") from exc
    try:
        return list(parse_lines(text.splitlines()))
    except InvalidInput as exc:
        raise InvalidInput(f"{name}: {exc.message}") from exc


def object_key(agent: str, day: str, body: bytes) -> str:
    return f"agent={agent}/day={day}/{hashlib.sha256(body).hexdigest()[:16]}{SUFFIX}"


# --------------------------------------------------------------------------------------------------
# where archives live
# --------------------------------------------------------------------------------------------------


class ArchiveLocation(Protocol):
    def describe(self) -> str: ...

    async def put(self, key: str, body: bytes) -> None: ...

    async def keys(self) -> list[str]:
        """Every archive object (``*.jsonl.gz``) under the location, sorted."""
        ...

    async def get(self, key: str) -> bytes: ...


@dataclass
class FolderLocation:
    root: Path

    def describe(self) -> str:
        return str(self.root)

    async def put(self, key: str, body: bytes) -> None:
        await asyncio.to_thread(self._put, key, body)

    def _put(self, key: str, body: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a crash never leaves a truncated archive under the final name.
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(body)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def keys(self) -> list[str]:
        if self.root.is_file():
            return [""]
        if not self.root.is_dir():
            raise InvalidInput(f"archive folder {self.root} does not exist")
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob(f"*{SUFFIX}"))

    async def get(self, key: str) -> bytes:
        path = self.root / key if key else self.root
        return await asyncio.to_thread(path.read_bytes)


@dataclass
class S3Location:
    bucket: str
    prefix: str
    session: Any = None

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _client(self) -> Any:
        import aioboto3

        session = self.session if self.session is not None else aioboto3.Session()
        return session.client("s3")

    async def _call(self, what: str, method: str, **params: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            async with self._client() as client:
                return await getattr(client, method)(**params)
        except (ClientError, BotoCoreError, OSError) as exc:
            raise StorageUnavailable(f"{what} {self.describe()} failed: {exc}") from exc

    async def put(self, key: str, body: bytes) -> None:
        await self._call(
            "writing to",
            "put_object",
            Bucket=self.bucket,
            Key=self.prefix + key,
            Body=body,
            ContentType="application/x-ndjson",
            ContentEncoding="gzip",
        )

    async def keys(self) -> list[str]:
        if self.prefix.endswith(SUFFIX):
            return [""]
        found: list[str] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix}
            if token:
                params["ContinuationToken"] = token
            page = await self._call("listing", "list_objects_v2", **params)
            found += [
                o["Key"][len(self.prefix) :] for o in page.get("Contents", []) if o["Key"].endswith(SUFFIX)
            ]
            token = page.get("NextContinuationToken")
            if not token:
                return sorted(found)

    async def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            async with self._client() as client:
                response = await client.get_object(Bucket=self.bucket, Key=self.prefix + key)
                # The body streams over the client's connection: read it before the client closes.
                async with response["Body"] as body:
                    data: bytes = await body.read()
                    return data
        except (ClientError, BotoCoreError, OSError) as exc:
            raise StorageUnavailable(f"reading from {self.describe()}{key} failed: {exc}") from exc


def is_archive(source: str) -> bool:
    """Whether ``agent-memory import`` should read ``source`` as an archive (not an export file)."""
    return source.startswith("s3://") or source.endswith(".gz") or Path(source).is_dir()


def location(url: str, *, session: Any = None) -> ArchiveLocation:
    """The archive at ``url``: ``s3://bucket/prefix/`` or a folder (or one ``.jsonl.gz`` file to
    import). S3 uses the default AWS credentials; ``AWS_ENDPOINT_URL_S3`` points it elsewhere."""
    if url.startswith("s3://"):
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise ConfigurationError(f"archive URL {url!r} names no bucket: use s3://bucket/prefix/")
        if prefix and not prefix.endswith(("/", SUFFIX)):
            prefix += "/"
        return S3Location(bucket, prefix, session)
    if "://" in url:
        raise ConfigurationError(f"archive URL {url!r}: use a folder or s3://bucket/prefix/")
    return FolderLocation(Path(url))


# --------------------------------------------------------------------------------------------------
# writing and reading
# --------------------------------------------------------------------------------------------------


async def write_archive(target: ArchiveLocation, items: Sequence[Item]) -> list[str]:
    """Write ``items`` (of the decisions table) as one object per agent and day. Returns the keys."""
    groups: dict[tuple[str, str], list[Item]] = defaultdict(list)
    for item in items:
        groups[partition_of(item)].append(item)
    written = []
    for (agent, day), group in sorted(groups.items()):
        body = encode(group)
        key = object_key(agent, day, body)
        await target.put(key, body)
        written.append(key)
    return written


@dataclass
class ArchiveReport:
    archived: int = 0
    """Expired items written to the archive."""
    deleted: int = 0
    """Of those, deleted from the store (an item rewritten meanwhile is archived but kept)."""
    objects: list[str] = field(default_factory=list)


async def archive_expired(
    engine: ItemEngine, target: ArchiveLocation, now: datetime, *, batch: int = BATCH
) -> ArchiveReport:
    """Archive, then delete, every decision-table item whose ``ttl`` has passed (admin path: one
    pass over the table, like export). Each batch is written before any of it is deleted, and a
    delete is conditional on the ``ttl`` archived, so a failure at any point loses nothing: run it
    again."""
    cutoff = keys.epoch(now)
    report = ArchiveReport()
    pending: list[Item] = []

    async def flush() -> None:
        report.objects += await write_archive(target, pending)
        report.archived += len(pending)
        for item in pending:
            try:
                await engine.write(
                    [Delete(ARCHIVED_TABLE, item["pk"], item["sk"], (Cond.eq("ttl", item["ttl"]),))]
                )
                report.deleted += 1
            except ConditionFailed:
                pass  # rewritten (e.g. restored) since it was read: it is archived and stays
        pending.clear()

    async for item in engine.scan(ARCHIVED_TABLE):
        ttl = item.get("ttl")
        if isinstance(ttl, int | float) and ttl <= cutoff:
            pending.append(item)
            if len(pending) >= batch:
                await flush()
    if pending:
        await flush()
    return report


async def import_archive(
    engine: ItemEngine, source: ArchiveLocation, now: datetime, keep_for: timedelta, *, concurrency: int = 16
) -> int:
    """Write every archived item back (by key: importing twice, or overlapping objects, restore one
    record each). A restored item is kept for ``keep_for`` from ``now`` (its records' own
    ``expires_at`` still says when it first expired); without that it would be expired on arrival.
    Every object is read and validated before anything is written. Returns the items written."""
    records: list[tuple[TableName, Item]] = []
    for key in await source.keys():
        records += decode(await source.get(key), f"{source.describe()}/{key}".rstrip("/"))
    if not records:
        raise InvalidInput(f"no archive objects (*{SUFFIX}) under {source.describe()}")
    until = keys.epoch(now + keep_for)
    gate = asyncio.Semaphore(concurrency)

    async def put(table: TableName, item: Item) -> None:
        restored = {**item, "ttl": max(int(item.get("ttl") or 0), until)}
        async with gate:
            await engine.write([Put(table, restored)])

    await asyncio.gather(*(put(t, i) for t, i in records))
    return len(records)


# --------------------------------------------------------------------------------------------------
# the commands (`agent-memory archive`, and `agent-memory import` of an archive)
# --------------------------------------------------------------------------------------------------


async def archive_command(settings: Any, url: str | None, now: datetime) -> ArchiveReport:
    """``agent-memory archive [--to URL]``: archive and delete the expired decisions of the
    configured store. On DynamoDB the stream function does this continuously; the command is a
    catch-up for items TTL has not deleted yet (it scans the decisions table)."""
    from agent_memory.storage.factory import open_engine

    target_url = url or settings.archive_url
    if not target_url:
        raise ConfigurationError(
            "give --to (a folder or s3://bucket/prefix/) or set AGENT_MEMORY_ARCHIVE_URL"
        )
    target = location(target_url)
    engine = await open_engine(settings)
    try:
        return await archive_expired(engine, target, now)
    finally:
        await engine.close()


async def import_archive_command(settings: Any, source: str, now: datetime, keep_days: int | None) -> int:
    """``agent-memory import -i <archive>``: restore archived decisions into the configured store,
    kept for ``keep_days`` (default: the decision retention) from now."""
    from agent_memory.storage.factory import open_engine

    days = keep_days if keep_days is not None else settings.decision_ttl_days
    engine = await open_engine(settings)
    try:
        return await import_archive(engine, location(source), now, timedelta(days=days))
    finally:
        await engine.close()
