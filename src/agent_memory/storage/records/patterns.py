"""Pattern records: versions with history, owner and shared rank indexes, feedback counters."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from agent_memory.errors import Conflict, LimitExceeded, NotFound, VersionConflict
from agent_memory.limits import MAX_SHARED_PATTERNS
from agent_memory.models import Page, Pattern, PatternCondition, PatternFeedback
from agent_memory.storage import keys
from agent_memory.storage.engine import (
    Cond,
    ConditionFailed,
    Delete,
    IndexName,
    Item,
    Put,
    TableName,
    Update,
    WriteOp,
)
from agent_memory.storage.records.base import (
    KEY_ATTRS,
    REQUEST_TOKEN,
    dump,
    new_request_token,
    stored,
    write_once,
)
from agent_memory.storage.records.quotas import Charge, Counted, QuotaRecords

_NOT_STORED = ("feedback", "evidence")
"""Pattern fields that are not content: counters kept apart, and the reader-side evidence view."""


_SHARED_RACE = "another of your patterns was shared at the same time: retry the call"
MAX_AUTHORS = 1000
"""Most authors of one pattern id a lookup reads (one per agent: bounded by the team's size)."""


def _readers(p: Pattern) -> list[str]:
    """Who finds the pattern in its per-reader index: only active shared patterns are listed."""
    return list(p.shared_with) if p.status == "active" and p.is_shared else []


def share_rank(p: Pattern) -> float:
    """Where a shared pattern ranks for other agents: the learner's confidence is computed by the
    memory from recorded outcomes; a stated confidence is a claim and ranks nothing (issue #12: a
    self-declared 1.0 over 10^12 samples ranked first for every reader)."""
    return p.confidence if p.source == "learned" else 0.0


def _reader_items(p: Pattern) -> dict[tuple[str, str], Item]:
    """One index entry per reader, carrying the pattern's content (every stored field but the
    counters): a reader recalls it from its own partition (``shared_to#{reader}``, or the
    everyone partition), never from the author's, so a per-agent IAM policy can allow recall
    without allowing the author's private patterns (docs/SCALING.md#least-privilege-and-sharing).
    Rewritten with every version the author stores, deleted when it unshares or retires."""
    out: dict[tuple[str, str], Item] = {}
    content = dump(p, *_NOT_STORED)
    for reader in _readers(p):
        pk = keys.shared_reader_pk(reader)
        sk = keys.shared_reader_sk(p.agent_id, p.pattern_id)
        out[(pk, sk)] = {
            **content,
            "pk": pk,
            "sk": sk,
            # recall reads the entries best rank first (gsi1); a citation gets one by key
            "gsi1pk": pk,
            "gsi1sk": keys.shared_reader_rank_sk(share_rank(p), p.agent_id, p.pattern_id),
            "rank": share_rank(p),
        }
    return out


def _earlier_entry_keys(p: Pattern) -> list[tuple[str, str]]:
    """Keys of the entries of ``p`` as stores written before issue #15's citing change kept them
    (sorted by rank in the table itself, so a reader could not get one by the pattern's id)."""
    rank = keys.shared_reader_rank_sk(share_rank(p), p.agent_id, p.pattern_id)
    return [(keys.shared_reader_pk(reader), rank) for reader in _readers(p)]


_SHARED_CONTENT_MIGRATION = "shared_index_content_v2"
_SHARED_BY_ID_MIGRATION = "shared_index_by_id_v3"

READER_REPORTED = "fb_readers"
"""Set on a pattern item once a version with readers is stored: from then on other agents may
cite it, and their applications are counted on its reports item only (their IAM policy does not
reach the author's partition, issue #15), so the author's figures are read from there. A pattern
never shared since has every application on its own item (and the same on its reports item)."""


def current_sharing_item(table: TableName, item: Item) -> Item | None:
    """An item of an export written before issue #15's citing change, as the store keeps it now
    (None when it is current): an index entry keyed by its pattern (its earlier sort key was the
    rank key, which moves to gsi1), a shared pattern flagged :data:`READER_REPORTED`. What the
    start-up migration (:meth:`PatternRecords.backfill_shared_index`) does to a store, import
    does to each line."""
    if table != "ltm" or "agent_id" not in item or "pattern_id" not in item:
        return None
    pk, author, pattern_id = str(item["pk"]), str(item["agent_id"]), str(item["pattern_id"])
    if pk.startswith(keys.shared_reader_pk("")) and item["sk"] != keys.shared_reader_sk(author, pattern_id):
        return {
            **item,
            "sk": keys.shared_reader_sk(author, pattern_id),
            "gsi1pk": pk,
            "gsi1sk": item["sk"],
        }
    shared = item.get("status") == "active" and bool(item.get("shared_with"))
    if pk == keys.pattern_pk(author) and shared and READER_REPORTED not in item:
        return {**item, READER_REPORTED: True}
    return None


class PatternRecords(QuotaRecords):
    def _pattern_index_attrs(self, p: Pattern) -> tuple[dict[str, Any], tuple[str, ...]]:
        """Index keys to set and to remove: only active patterns are ranked; only shared ones
        appear in the shared indexes (sparse indexes keep recall proportional to its result)."""
        set_: dict[str, Any] = {}
        remove: list[str] = []
        if p.status == "active":
            set_["gsi1pk"] = keys.pattern_pk(p.agent_id)
            set_["gsi1sk"] = keys.pattern_rank_sk(p.confidence, p.pattern_id)
        else:
            remove += ["gsi1pk", "gsi1sk"]
        if p.status == "active" and p.is_shared:
            rank = keys.shared_rank_sk(p.confidence, p.agent_id, p.pattern_id)
            set_.update(
                gsi2pk=keys.shared_domain_pk(p.domain), gsi2sk=rank, gsi3pk=keys.SHARED_ALL_PK, gsi3sk=rank
            )
        else:
            remove += ["gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk"]
        return set_, tuple(remove)

    def _history_put(self, p: Pattern) -> Put:
        return Put(
            "ltm",
            {
                **dump(p, *_NOT_STORED),
                "pk": keys.pattern_history_pk(p.agent_id),
                "sk": keys.pattern_history_sk(p.pattern_id, p.version),
            },
            (Cond.not_exists(),),
        )

    async def _shared_count_ops(self, author: str, delta: int) -> list[WriteOp]:
        """The author's shared-pattern counter moved by ``delta``, refused beyond the cap. The
        update is conditional on the value read, so two concurrent shares cannot both pass."""
        if delta == 0:
            return []
        pk = keys.shared_count_pk(author)
        item = await self.engine.get("ltm", pk, keys.COUNT_SK)
        n = int(item["n"]) if item else 0
        if delta > 0 and n + delta > MAX_SHARED_PATTERNS:
            raise LimitExceeded(
                f"you already share {n} patterns, the most one agent may share: unshare some "
                "(share_pattern with shared_with=[]) or keep this one private"
            )
        cond = Cond.eq("n", n) if item else Cond.not_exists()
        return [Update("ltm", pk, keys.COUNT_SK, set={"n": max(0, n + delta)}, conditions=(cond,))]

    def _reader_ops(self, old: Pattern | None, new: Pattern) -> list[WriteOp]:
        """Keep the per-reader index in step: delete the entries the new version drops, write the
        ones it has (an entry is overwritten in place when its key is unchanged)."""
        before = _reader_items(old) if old is not None else {}
        after = _reader_items(new)
        ops: list[WriteOp] = [Delete("ltm", pk, sk) for (pk, sk) in before if (pk, sk) not in after]
        ops += [Put("ltm", item) for item in after.values()]
        return ops

    async def create_pattern(self, p: Pattern, charge: Charge | None = None) -> Pattern:
        """Create version 1 in the author's own space (ids are per author: another agent's
        pattern with the same id is another pattern, and creating this one tells nothing about
        it). Requests: 1 transaction (pattern, history entry, the author's by-id entry, one index
        entry per reader, the author's shared counter) + 1 get when shared."""
        index_set, _ = self._pattern_index_attrs(p)
        token = new_request_token()
        item = {
            **dump(p, *_NOT_STORED),
            **index_set,
            "pk": keys.pattern_pk(p.agent_id),
            "sk": p.pattern_id,
            REQUEST_TOKEN: token,
        }
        if _readers(p):
            item[READER_REPORTED] = True
        by_id = {
            "pk": keys.pattern_id_pk(p.pattern_id),
            "sk": keys.pattern_author_sk(p.agent_id),
            "agent_id": p.agent_id,
        }
        count_ops = await self._shared_count_ops(p.agent_id, 1 if _readers(p) else 0)
        history = self._history_put(p)
        ops: list[WriteOp] = [
            Put("ltm", item, (Cond.not_exists(),)),
            history,
            *count_ops,
            Put("ltm", by_id),
            *self._reader_ops(None, p),
        ]
        try:
            # A retry of this very write (botocore's, after a lost answer) finds its own token in
            # the pattern it created: it answers as the first attempt would have.
            await write_once(lambda: self.counted_write(ops, charge, Counted(1, [item, history.item])), token)
        except ConditionFailed as exc:
            if count_ops and exc.index == 2:
                raise Conflict(_SHARED_RACE) from exc
            current = await self.get_own_pattern(p.agent_id, p.pattern_id)
            version = current.version if current else None
            raise VersionConflict(
                f"pattern {p.pattern_id!r} already exists at version {version}: pass "
                f"expected_version={version} to store a new version",
                current=current,
                current_version=version,
            ) from exc
        return p

    async def update_pattern(
        self, p: Pattern, expected_version: int, charge: Charge | None = None
    ) -> Pattern:
        """Store ``p`` as the next version if the current one is ``expected_version``.

        Feedback counters are never overwritten (they are added to concurrently).
        Requests: 1 get + 1 transaction (+1 get when sharing starts or stops, +1 on conflict).
        """
        index_set, index_remove = self._pattern_index_attrs(p)
        content = dump(p, *_NOT_STORED, "agent_id", "pattern_id", "created_at")
        # The version read here is the one the write is conditional on: the index entries to
        # drop are exactly those of that version.
        old = await self.get_own_pattern(p.agent_id, p.pattern_id, counted=False)
        if old is not None and old.version == expected_version:
            delta = (1 if _readers(p) else 0) - (1 if _readers(old) else 0)
            count_ops = await self._shared_count_ops(p.agent_id, delta)
            history = self._history_put(p)
            try:
                await self.counted_write(
                    [
                        Update(
                            "ltm",
                            keys.pattern_pk(p.agent_id),
                            p.pattern_id,
                            set={**content, **index_set, **({READER_REPORTED: True} if _readers(p) else {})},
                            remove=index_remove,
                            conditions=(Cond.eq("version", expected_version),),
                        ),
                        history,
                        *count_ops,
                        *self._reader_ops(old, p),
                    ],
                    charge,
                    Counted(0, [history.item]),
                )
            except ConditionFailed as exc:
                if not (count_ops and exc.index == 2):
                    return await self._stale(p, expected_version, exc)
                raise Conflict(_SHARED_RACE) from exc
            stored = await self.get_own_pattern(p.agent_id, p.pattern_id)
            assert stored is not None
            return stored
        return await self._stale(p, expected_version, None)

    async def _stale(self, p: Pattern, expected_version: int, exc: Exception | None) -> Pattern:
        """The error for an update whose expected version is not the current one."""
        current = await self.get_own_pattern(p.agent_id, p.pattern_id)
        if current is None:
            raise NotFound(
                f"pattern {p.pattern_id!r} does not exist: omit expected_version to create it"
            ) from exc
        raise VersionConflict(
            f"pattern {p.pattern_id!r}: version {expected_version} is stale; current version is "
            f"{current.version}: re-read the pattern and retry with expected_version={current.version}",
            current=current,
            current_version=current.version,
        ) from exc

    async def get_own_pattern(
        self, agent: str, pattern_id: str, *, consistent: bool = True, counted: bool = True
    ) -> Pattern | None:
        """One of ``agent``'s patterns with every application counted (``counted=False``: its
        content only, counters as they are on its item). Requests: 1 get (+1 get of its reports
        item once it has had readers)."""
        item = await self.engine.get("ltm", keys.pattern_pk(agent), pattern_id, consistent=consistent)
        if item is None:
            return None
        if not counted:
            return _pattern(item)
        (whole,) = await self._with_reports([item], consistent=consistent)
        return _pattern(whole)

    async def _with_reports(self, items: Sequence[Item], *, consistent: bool) -> list[Item]:
        """Pattern items with the counters the author sees: those of the reports item for a
        pattern that has had readers (their applications are counted there only), else its own.
        Requests: 1 get per pattern that has had readers."""
        shared = [i for i, item in enumerate(items) if item.get(READER_REPORTED)]
        reports = await self.together(
            *(
                self.engine.get(
                    "ltm",
                    keys.pattern_reports_pk(str(items[i]["agent_id"]), str(items[i]["pattern_id"])),
                    keys.COUNT_SK,
                    consistent=consistent,
                )
                for i in shared
            )
        )
        out = list(items)
        for i, report in zip(shared, reports, strict=True):
            if report is not None:
                own = {k: v for k, v in items[i].items() if k not in _FEEDBACK_ATTRS}
                out[i] = {**own, **{k: report[k] for k in _FEEDBACK_ATTRS if k in report}}
        return out

    async def _counted_page(self, page: Page[Item], *, consistent: bool) -> Page[Pattern]:
        items = await self._with_reports(page.items, consistent=consistent)
        return Page(items=[_pattern(item) for item in items], next_cursor=page.next_cursor)

    async def pattern_authors(self, pattern_id: str) -> list[str]:
        """The agents that have a pattern with this id (each at most one). Not an answer to give
        anyone: callers keep only the patterns visible to the reader. Requests: 1 consistent query
        per 100 authors (one entry per agent using the id)."""
        authors: list[str] = []
        start = None
        while len(authors) < MAX_AUTHORS:
            page = await self.engine.query("ltm", keys.pattern_id_pk(pattern_id), limit=100, start=start)
            authors += [str(item["agent_id"]) for item in page.items]
            if page.last_key is None:
                break
            start = page.last_key
        return authors

    async def query_own_pattern_items(
        self,
        agent: str,
        *,
        min_confidence: float,
        limit: int,
        cursor: str | None,
        keep: Callable[[Item], bool] | None,
    ) -> Page[Item]:
        """Active patterns of one author by confidence, highest first (gsi1; DAX-cacheable), as
        the items read, each with the counters the author sees (:func:`plain_pattern` or
        :func:`pattern_of` of each is the pattern). Requests: 1+ queries, and 1 get per pattern
        found that has had readers."""
        page = await self._page(
            "ltm",
            keys.pattern_pk(agent),
            _item,
            limit=limit,
            cursor=cursor,
            digest_parts=("own",),
            index="gsi1",
            sk_gte=keys.score(min_confidence),
            forward=False,
            consistent=False,
            keep=keep,
        )
        items = await self._with_reports(page.items, consistent=False)
        return Page(items=items, next_cursor=page.next_cursor)

    async def query_shared_patterns(
        self,
        domain: str | None,
        *,
        min_confidence: float,
        limit: int,
        cursor: str | None,
        keep: Callable[[Item], bool],
    ) -> Page[Pattern]:
        """Active shared patterns (of one domain: gsi2; of all: gsi3) by confidence (DAX-cacheable)."""
        return await self._page(
            "ltm",
            keys.shared_domain_pk(domain) if domain else keys.SHARED_ALL_PK,
            _pattern,
            limit=limit,
            cursor=cursor,
            digest_parts=("shared",),
            index="gsi2" if domain else "gsi3",
            sk_gte=keys.score(min_confidence),
            forward=False,
            consistent=False,
            keep=keep,
        )

    async def query_shared_with(
        self, reader: str, *, limit: int, keep: Callable[[Item], bool]
    ) -> tuple[list[Item], list[Item]]:
        """Index entries of the active patterns shared with ``reader`` by name, and with everyone,
        each best rank first. Patterns shared with other agents are never read, so no volume of
        sharing elsewhere can hide these (issue #12). Requests: 2+ queries (DAX-cacheable)."""

        def entry(item: Item) -> Item:
            return item

        named, everyone = await self.together(
            *(
                self._page(
                    "ltm",
                    keys.shared_reader_pk(r),
                    entry,
                    limit=limit,
                    cursor=None,
                    digest_parts=("shared_to",),
                    index="gsi1",
                    forward=False,
                    consistent=False,
                    keep=keep,
                )
                for r in (reader, "*")
            )
        )
        return named.items, everyone.items

    async def shared_with_reader(
        self, reader: str, authors: Sequence[str], pattern_id: str, *, counted: bool = True
    ) -> list[Pattern]:
        """The patterns ``pattern_id`` names among ``authors``' that are shared with ``reader`` (by
        name or with everyone), from the reader's own index entries and the reports items: never
        a read of an author's partition, so a per-agent IAM policy allows it (issue #15). Only
        active shared patterns have entries: one unshared or retired is not found. Requests: 2
        consistent gets per author, and 1 get per pattern found (``counted=False``: none, the
        patterns come without their application counters)."""
        sks = [keys.shared_reader_sk(author, pattern_id) for author in authors]
        got = await self.together(
            *(self.engine.get("ltm", keys.shared_reader_pk(r), sk) for sk in sks for r in (reader, "*"))
        )
        pairs = zip(got[::2], got[1::2], strict=True)
        entries = [e for e in (named or everyone for named, everyone in pairs) if e is not None]
        if not counted:
            return [_pattern(e, _NOT_ENTRY_PATTERN) for e in entries]
        return await self.shared_entry_patterns(entries)

    async def shared_entry_patterns(self, entries: Sequence[Item]) -> list[Pattern]:
        """The patterns of per-reader index entries, each with its application counters (read
        from its reports item, a partition of no single agent). Requests: 1 get per entry
        (eventually consistent, DAX-cacheable)."""
        return [_pattern(item, _NOT_ENTRY_PATTERN) for item in await self.shared_entry_items(entries)]

    async def shared_entry_items(self, entries: Sequence[Item]) -> list[Item]:
        """:meth:`shared_entry_patterns` as the items (entries under their reports items' counters;
        :func:`plain_pattern` or :func:`pattern_of` of each, ``entry=True``, is the pattern)."""
        reports = await self.together(
            *(
                self.engine.get(
                    "ltm",
                    keys.pattern_reports_pk(str(e["agent_id"]), str(e["pattern_id"])),
                    keys.COUNT_SK,
                    consistent=False,
                )
                for e in entries
            )
        )
        # The entry's content under its reports item's counters; keys and rank are not the pattern's.
        pairs = zip(entries, reports, strict=True)
        return [{**e, **r} if r else e for e, r in pairs]

    async def backfill_shared_index(self) -> int:
        """Migration of the sharing index, run at start-up; marker items record what ran:

        - v1: index the shared patterns of a store written before per-reader indexes existed
          (walks the all-shared index once) and count each author's shares;
        - v2: give the entries the patterns' content, and every pattern with counters its
          reports item (the counters readers see, seeded from the pattern's own);
        - v3 (issue #15): key each entry by its pattern (the rank moves to gsi1), so a reader
          citing a pattern gets its entry by key, and flag every shared pattern
          (:data:`READER_REPORTED`): readers' applications are counted on its reports item only.

        Returns how many shared patterns were indexed. Idempotent."""
        marker = await self.engine.get("ltm", keys.MIGRATIONS_PK, _SHARED_BY_ID_MIGRATION)
        if marker is not None:
            return 0
        first = await self.engine.get("ltm", keys.MIGRATIONS_PK, "shared_index_v1") is None
        seeded = await self.engine.get("ltm", keys.MIGRATIONS_PK, _SHARED_CONTENT_MIGRATION) is not None
        done = 0
        counts: dict[str, int] = {}
        async for item in self._walk("ltm", keys.SHARED_ALL_PK, index="gsi3"):
            p = _pattern(item)
            if not _readers(p):
                continue
            # Seeded before the flag: from then on the author's figures are the reports item's.
            await self._seed_reports(item)
            ops: list[WriteOp] = [Delete("ltm", pk, sk) for pk, sk in _earlier_entry_keys(p)]
            ops += [Put("ltm", entry) for entry in _reader_items(p).values()]
            ops.append(
                Update(
                    "ltm",
                    keys.pattern_pk(p.agent_id),
                    p.pattern_id,
                    set={READER_REPORTED: True},
                    conditions=(Cond.exists(),),
                )
            )
            with contextlib.suppress(ConditionFailed):  # rewritten by its author meanwhile
                await self.engine.write(ops)
            counts[p.agent_id] = counts.get(p.agent_id, 0) + 1
            done += 1
        for author, n in counts.items() if first else ():
            # Counts as found (a store from before the cap may exceed it: nothing is unshared,
            # the author just cannot share more until under the cap).
            await self.engine.write(
                [Update("ltm", keys.shared_count_pk(author), keys.COUNT_SK, set={"n": n})]
            )
        # The counters readers see start from the patterns' own, for every pattern (a private one
        # may be shared later). A reports item already there was written by an application since
        # the upgrade (another instance): it is kept, not overwritten.
        if not seeded:
            async for agent in self._walk("state", keys.REGISTRY_PK):
                async for item in self._walk("ltm", keys.pattern_pk(str(agent["agent_id"]))):
                    await self._seed_reports(item)
        await self.engine.write(
            [
                Put("ltm", {"pk": keys.MIGRATIONS_PK, "sk": name, "n": done})
                for name in ("shared_index_v1", _SHARED_CONTENT_MIGRATION, _SHARED_BY_ID_MIGRATION)
            ]
        )
        return done

    async def _seed_reports(self, pattern_item: Item) -> None:
        counters = {a: pattern_item[a] for a in _FEEDBACK_ATTRS if a in pattern_item}
        if counters:
            pk = keys.pattern_reports_pk(str(pattern_item["agent_id"]), str(pattern_item["pattern_id"]))
            item = {**counters, "pk": pk, "sk": keys.COUNT_SK}
            with contextlib.suppress(ConditionFailed):  # already seeded, or written since the upgrade
                await self.engine.write([Put("ltm", item, (Cond.not_exists(),))])

    async def _walk(self, table: TableName, pk: str, index: IndexName | None = None) -> AsyncIterator[Item]:
        """Every item of one partition (migrations only: never on a tool path)."""
        start = None
        while True:
            page = await self.engine.query(
                table, pk, index=index, limit=100, start=start, consistent=index is None
            )
            for item in page.items:
                yield item
            if page.last_key is None:
                return
            start = page.last_key

    async def list_patterns(self, agent: str, *, limit: int, cursor: str | None) -> Page[Pattern]:
        """Every pattern of an author, any status, by id. Requests: 1+ consistent queries, and 1
        get per pattern that has had readers."""
        page = await self._page(
            "ltm", keys.pattern_pk(agent), _item, limit=limit, cursor=cursor, digest_parts=()
        )
        return await self._counted_page(page, consistent=True)

    async def pattern_history(
        self, agent: str, pattern_id: str, *, limit: int, cursor: str | None
    ) -> Page[Pattern]:
        """Versions of a pattern, newest first."""
        return await self._page(
            "ltm",
            keys.pattern_history_pk(agent),
            _pattern,
            limit=limit,
            cursor=cursor,
            digest_parts=(),
            sk_prefix=f"{pattern_id}#v",
            forward=False,
        )


def feedback_ops(
    refs: Sequence[tuple[str, str]], *, applied: bool, success: bool | None, now: datetime, by: str
) -> list[Update]:
    """Counter updates on applied patterns. At log time: an access; at outcome time: one
    application and its success. Every application is counted on the pattern's reports item,
    where the agents it is shared with, and its author once it has had readers, read them.

    The author's own applications are also counted on its pattern item (conditional on the
    pattern existing: never resurrects), and apart (``fb_author_*``): other agents' reports are
    evidence readers see, but only the author's own outcomes may retire its pattern. Another
    agent's citation writes only the reports item: its IAM policy does not reach the author's
    partition (docs/SCALING.md#least-privilege-and-sharing); it was resolved through the citing
    agent's own sharing index just before."""
    ops = []
    for author, pattern_id in refs:
        add: dict[str, int | float] = (
            {"fb_applied": 1, "fb_successes": 1 if success else 0} if applied else {"fb_access": 1}
        )
        if by == author:
            if applied:
                add.update(fb_author_applied=1, fb_author_successes=1 if success else 0)
            ops.append(
                Update(
                    "ltm",
                    keys.pattern_pk(author),
                    pattern_id,
                    set={} if applied else {"fb_last": keys.iso(now)},
                    add=add,
                    conditions=(Cond.exists(),),
                )
            )
        ops.append(
            Update(
                "ltm",
                keys.pattern_reports_pk(author, pattern_id),
                keys.COUNT_SK,
                set={} if applied else {"fb_last": keys.iso(now)},
                add=add,
            )
        )
    return ops


_FEEDBACK_ATTRS = (
    "fb_applied", "fb_successes", "fb_author_applied", "fb_author_successes", "fb_access", "fb_last"
)  # fmt: skip


def _item(item: Item) -> Item:
    return item


_NOT_PATTERN = KEY_ATTRS.union(_FEEDBACK_ATTRS, (READER_REPORTED,))
"""What a pattern's item holds beside the record's fields."""


_NOT_ENTRY_PATTERN = _NOT_PATTERN.union(("rank",))
"""What a per-reader index entry (with its reports item's counters) holds beside the record's fields."""


def _pattern(item: Item, drop: frozenset[str] = _NOT_PATTERN) -> Pattern:
    data = {k: v for k, v in item.items() if k not in drop}
    data["feedback"] = stored(
        PatternFeedback,
        {
            "applied_count": int(item.get("fb_applied", 0)),
            "applied_successes": int(item.get("fb_successes", 0)),
            "author_applied_count": int(item.get("fb_author_applied", 0)),
            "author_applied_successes": int(item.get("fb_author_successes", 0)),
            "access_count": int(item.get("fb_access", 0)),
            "last_accessed": item.get("fb_last"),
        },
    )
    return stored(Pattern, data)


def pattern_of(item: Item, *, entry: bool = False) -> Pattern:
    """The pattern of a pattern item (``entry``: of a per-reader index entry) with its counters."""
    return _pattern(item, _NOT_ENTRY_PATTERN if entry else _NOT_PATTERN)


class PlainPattern(NamedTuple):
    """A pattern item of the shape the store writes, with the values its :class:`Pattern` would
    hold for what recall ranks and shows (:func:`plain_pattern`)."""

    item: Item
    entry: bool
    confidence: float
    success_rate: float
    sample_size: int
    version: int
    applied: int
    successes: int
    author_applied: int


_PATTERN_FIELDS = frozenset(Pattern.model_fields).difference(("evidence",))
_PATTERN_REQUIRED = frozenset(n for n, info in Pattern.model_fields.items() if info.is_required())
CONDITION_FIELDS = frozenset(PatternCondition.model_fields)
"""The fields of a stored condition of the shape the store writes (a dict of them)."""


def plain_pattern(item: Item, *, entry: bool = False) -> PlainPattern | None:
    """The values :func:`pattern_of` gives for what recall reads of ``item``, without building the
    :class:`Pattern` (building a page of them was most of recall_patterns' own work; issue #14);
    None for an item of another shape, which :func:`pattern_of` builds (so validates) as before.
    A value that :func:`pattern_of` would raise for raises here alike. Tests hold the two paths to
    the same answers (tests/storage/test_pattern_summaries.py)."""
    drop = _NOT_ENTRY_PATTERN if entry else _NOT_PATTERN
    names = {k for k in item if k not in drop}
    if not (_PATTERN_REQUIRED <= names <= _PATTERN_FIELDS):
        return None
    conditions = item.get("conditions")
    if type(conditions) is not list:  # (the store writes every field: a default left out is another shape)
        return None
    for c in conditions:
        if type(c) is not dict or "field" not in c or not c.keys() <= CONDITION_FIELDS:
            return None
    feedback = (
        int(item.get("fb_applied", 0)),
        int(item.get("fb_successes", 0)),
        int(item.get("fb_author_applied", 0)),
        int(item.get("fb_author_successes", 0)),
        int(item.get("fb_access", 0)),
    )
    for name in ("created_at", "updated_at", "fb_last"):
        value = item.get(name)
        if value is None and name == "fb_last":
            continue
        if type(value) is not str:
            return None
        try:
            if datetime.fromisoformat(value).tzinfo is None:
                return None
        except ValueError:
            return None
    confidence, success_rate = item["confidence"], item["success_rate"]
    sample_size, version = item["sample_size"], item.get("version", 1)
    if type(confidence) not in _NUMBERS or type(success_rate) not in _NUMBERS:
        return None
    if type(sample_size) is not int or type(version) is not int:
        return None
    return PlainPattern(
        item, entry, float(confidence), float(success_rate), sample_size, version, *feedback[:3]
    )


_NUMBERS = (int, float)
