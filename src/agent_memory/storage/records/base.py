"""What every record family shares: the engine and clock, expiry on read, and paged queries."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast, overload

import orjson
from pydantic import BaseModel

from agent_memory.memo import Memo
from agent_memory.models import Page
from agent_memory.storage import cursor as cursors
from agent_memory.storage import keys
from agent_memory.storage.engine import ConditionFailed, IndexName, Item, ItemEngine, Key, TableName
from agent_memory.storage.records.trusted import STORED as STORED
from agent_memory.storage.records.trusted import stored as stored

R = TypeVar("R")
A = TypeVar("A")
B = TypeVar("B")
MAX_SCANNED = 1000
"""Most items one filtered query examines before it returns a partial page with a cursor: keeps
every call's cost bounded even when a filter rejects most of a partition."""

MORE = ""
"""The ``next_cursor`` of a page read with ``resumable=False`` that has a successor: not a cursor
(no page starts there), only "more items exist"."""

REQUEST_TOKEN = "request_token"
"""Attribute a conditional create or versioned write stores with its item, naming the request that
wrote it: when a write's response is lost and the write is retried (by botocore, or by the caller),
its condition fails against the item it wrote itself; finding its own token there, the write
reports success instead of a conflict. Never part of a record."""

QUOTA_MARK = "quota"
"""Attribute of a counted record that may be overwritten (a note): the [bucket, bytes] it was
counted with (storage/records/quotas.py), given back when it is replaced. Never part of a record."""

_KEY_ATTRS = frozenset((
    "pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk", "ttl", REQUEST_TOKEN, QUOTA_MARK
))  # fmt: skip


def new_request_token() -> str:
    """A token for one store call: tells its own retried write from another call's."""
    return os.urandom(16).hex()


def content_token(*parts: Any) -> str:
    """A token derived from a request's content: the same request (a retried tool call) gets the
    same token, so it finds its own earlier write."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def written_by(failure: ConditionFailed, token: str) -> bool:
    """Whether the item a condition failed on was written by the request holding ``token``."""
    return failure.item is not None and failure.item.get(REQUEST_TOKEN) == token


async def write_once(write: Callable[[], Awaitable[None]], token: str, *, index: int = 0) -> Item | None:
    """Run ``write`` (one transaction, e.g. ``lambda: engine.write(ops)`` or a quota-counted write),
    whose operation ``index`` is a conditional write of an item carrying ``token`` as
    :data:`REQUEST_TOKEN`.

    Returns None when the write happened now. When the condition failed on an item that carries
    this very token, the write happened earlier: this is its retry (by botocore, or by the caller
    with the same request), and only the first answer was lost; that item is returned, and the
    caller answers success as the first attempt would have. Any other failure is raised as is
    (:class:`ConditionFailed`), for the caller to explain.
    """
    try:
        await write()
    except ConditionFailed as exc:
        if exc.index == index and written_by(exc, token):
            assert exc.item is not None
            return exc.item
        raise
    return None


_SUMMARIES: Memo[tuple[Any, ...], Any] = Memo(2048)
"""Summaries of stored items (:func:`summary_of`), under the item's content: items of at most
:data:`_SUMMARY_MAX_BYTES` of text, so at most about 16 MB with their summaries."""
_SUMMARY_MAX_BYTES = 4096


def summary_of(make: Callable[[Item, A], R], item: Item, context: A) -> R:
    """``make(item, context)`` (a module's function that summarises a stored item for a list, the
    caller's id or None as ``context``), remembered under the item's content: its orjson text,
    which holds every attribute (keys, ttl and record alike), so a summary is only ever reused for
    an item with exactly the same attributes. Lists return to the same items on every call (an
    agent's recent decisions and notes on each recall_stm), and summarising them was most of a
    list's own work, most of it cold code (issue #14).

    An item orjson does not write (an integer beyond 64 bits), a larger one, or one whose text
    holds ``null`` (where NaN or infinity, which json may have read, would collide with None) is
    summarised afresh. The summaries are shared between answers: result models, which no one
    changes after they are made (their classes are frozen)."""
    try:
        text = orjson.dumps(item)
    except TypeError:  # (orjson.JSONEncodeError)
        return make(item, context)
    if len(text) > _SUMMARY_MAX_BYTES or b"null" in text:
        return make(item, context)
    key = (make, text, context)
    found = _SUMMARIES.get(key)
    if found is None:
        found = _SUMMARIES.keep(key, make(item, context))
    return cast(R, found)


KEY_ATTRS = _KEY_ATTRS
"""Attributes of an item that are not part of its record (keys, ttl, request token, quota mark)."""


def strip_keys(item: Item, *extra: str) -> dict[str, Any]:
    drop = _KEY_ATTRS.union(extra) if extra else _KEY_ATTRS
    return {k: v for k, v in item.items() if k not in drop}


def dump(record: BaseModel, *exclude: str) -> dict[str, Any]:
    return record.model_dump(mode="json", exclude=set(exclude) or None)


def json_time(t: datetime) -> str:
    """A time in UTC (``tzinfo is UTC``) as pydantic's JSON mode writes it (``...T08:01:40.000005Z``,
    no fraction when it is zero): what stored records hold. For the item builders that copy a
    record field by field instead of dumping it (issue #14). Made from the time's key text
    (``keys.iso``, remembered: a write formats the same times for its keys), which differs only in
    writing a zero fraction."""
    text = keys.iso(t)
    if len(text) != 27:  # a year before 1000 (isoformat pads it, the key text does not)
        return t.isoformat()[:-6] + "Z"
    return text if t.microsecond else text[:19] + "Z"


def dump_compact(record: BaseModel, *exclude: str) -> dict[str, Any]:
    """The record without the fields that hold their default (null, [], {}, false, 0): reading
    it back fills them in again. Decisions are stored this way (docs/BENCHMARKS.md, footprint):
    most of a decision's optional fields are empty, and on DynamoDB every byte is paid for."""
    return record.model_dump(mode="json", exclude=set(exclude) or None, exclude_defaults=True)


class RecordBase:
    """Records over an item engine. Construct with the engine and a clock (tests pass a fake).

    Each record family (decisions, patterns, ...) is a subclass; :class:`MemoryStore` combines them.
    """

    def __init__(self, engine: ItemEngine, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.clock = clock

    @overload
    async def together(self, a: Coroutine[Any, Any, A], b: Coroutine[Any, Any, B], /) -> tuple[A, B]: ...

    @overload
    async def together(self, *reads: Coroutine[Any, Any, R]) -> tuple[R, ...]: ...

    async def together(self, *reads: Coroutine[Any, Any, Any]) -> tuple[Any, ...]:
        """The answers of several reads, in order: concurrent (``asyncio.gather``), unless the
        engine answers reads on the event loop's own thread (``reads_on_loop``: the embedded
        store), where a task per read would only add its scheduling (tens of microseconds per
        read, more than a small read's SQL) to reads that never wait for each other."""
        if getattr(self.engine, "reads_on_loop", False):
            return tuple([await read for read in reads])
        return tuple(await asyncio.gather(*reads))

    def _live(self, item: Item | None, now: datetime | None = None) -> bool:
        """Expiry is enforced on read: an item past its ``ttl`` is gone, whether or not the
        backend has deleted it yet (DynamoDB's TTL deletion lags by up to two days)."""
        if item is None:
            return False
        ttl = item.get("ttl")
        return ttl is None or ttl > (now or self.clock()).timestamp()

    async def _page(
        self,
        table: TableName,
        pk: str,
        convert: Callable[[Item], R],
        *,
        limit: int,
        cursor: str | None,
        digest_parts: Sequence[Any],
        index: IndexName | None = None,
        sk_gte: str | None = None,
        sk_lte: str | None = None,
        sk_prefix: str | None = None,
        forward: bool = True,
        consistent: bool = True,
        keep: Callable[[Item], bool] | None = None,
        resumable: bool = True,
    ) -> Page[R]:
        """One page of a (possibly filtered) query with an opaque cursor.

        Expired items are always dropped. The cursor is the key of the last item examined, so a
        filter never makes a page skip or repeat items. ``resumable=False``: the caller only asks
        whether more items exist, and a page with a successor answers :data:`MORE` instead of a
        cursor (which costs a digest and an encoding).
        """

        def digest() -> str:  # needed only to read or write a cursor: most pages are first and last
            return cursors.query_digest(table, index, pk, sk_gte, sk_lte, sk_prefix, forward, *digest_parts)

        def resume_at(key: Key) -> str:
            return cursors.encode(key, digest(), pk) if resumable else MORE

        start = cursors.decode(cursor, digest(), pk) if cursor else None
        now = self.clock().timestamp()
        out: list[R] = []
        scanned = 0
        while True:
            want = min(limit - len(out) + 1 if keep is None else 100, MAX_SCANNED - scanned)
            page = await self.engine.query(
                table,
                pk,
                index=index,
                sk_gte=sk_gte,
                sk_lte=sk_lte,
                sk_prefix=sk_prefix,
                forward=forward,
                limit=max(1, want),
                start=start,
                consistent=consistent,
            )
            # The key of the last item examined is where a next page starts; it is built only
            # when needed (a page's end), not per item.
            last: Item | None = None
            for item in page.items:
                scanned += 1
                ttl = item.get("ttl")  # expired items are dropped, as _live does
                if (ttl is None or ttl > now) and (keep is None or keep(item)):
                    if len(out) == limit:
                        # One more matching item exists: the page is full and has a successor.
                        start = key_of(last, index) if last is not None else start
                        assert start is not None
                        return _page_of(out, resume_at(start))
                    out.append(convert(item))
                last = item
                if scanned >= MAX_SCANNED:
                    return _page_of(out, resume_at(key_of(item, index)))
            if page.last_key is None:
                return _page_of(out, None)
            start = page.last_key


_PAGE_FIELDS = frozenset(("items", "next_cursor"))


def _page_of(items: list[R], next_cursor: str | None) -> Page[R]:
    """``Page(items=items, next_cursor=next_cursor)`` without validating the list this read made
    (a read makes one to three pages; validating each cost more than the rest of the page)."""
    page: Page[R] = object.__new__(Page)
    object.__setattr__(page, "__dict__", {"items": items, "next_cursor": next_cursor})
    object.__setattr__(page, "__pydantic_fields_set__", set(_PAGE_FIELDS))
    object.__setattr__(page, "__pydantic_extra__", None)
    object.__setattr__(page, "__pydantic_private__", None)
    return page


def key_of(item: Item, index: IndexName | None) -> Key:
    key = {"pk": item["pk"], "sk": item["sk"]}
    if index is not None:
        key[f"{index}pk"] = item[f"{index}pk"]
        key[f"{index}sk"] = item[f"{index}sk"]
    return key
