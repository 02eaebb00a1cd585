"""Pattern records: versions with history, owner and shared rank indexes, feedback counters."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from agent_memory.errors import Conflict, NotFound, VersionConflict
from agent_memory.models import Page, Pattern, PatternFeedback
from agent_memory.storage import keys
from agent_memory.storage.engine import Cond, ConditionFailed, Item, Put, Update
from agent_memory.storage.records.base import STORED, RecordBase, dump, strip_keys


class PatternRecords(RecordBase):
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
                **dump(p, "feedback"),
                "pk": keys.pattern_history_pk(p.agent_id),
                "sk": keys.pattern_history_sk(p.pattern_id, p.version),
            },
            (Cond.not_exists(),),
        )

    async def create_pattern(self, p: Pattern) -> Pattern:
        """Create version 1. Requests: 1 transaction (pattern, id item, history entry)."""
        index_set, _ = self._pattern_index_attrs(p)
        item = {**dump(p, "feedback"), **index_set, "pk": keys.pattern_pk(p.agent_id), "sk": p.pattern_id}
        id_item = {"pk": keys.pattern_id_pk(p.pattern_id), "sk": keys.ID_SK, "agent_id": p.agent_id}
        try:
            await self.engine.write(
                [
                    Put("ltm", id_item, (Cond.not_exists(),)),
                    Put("ltm", item, (Cond.not_exists(),)),
                    self._history_put(p),
                ]
            )
        except ConditionFailed as exc:
            owner = await self.engine.get("ltm", keys.pattern_id_pk(p.pattern_id), keys.ID_SK)
            if owner is not None and owner.get("agent_id") != p.agent_id:
                raise Conflict(f"pattern_id {p.pattern_id!r} is already in use: choose another id") from exc
            current = await self.get_own_pattern(p.agent_id, p.pattern_id)
            version = current.version if current else None
            raise VersionConflict(
                f"pattern {p.pattern_id!r} already exists at version {version}: pass "
                f"expected_version={version} to store a new version",
                current=current,
                current_version=version,
            ) from exc
        return p

    async def update_pattern(self, p: Pattern, expected_version: int) -> Pattern:
        """Store ``p`` as the next version if the current one is ``expected_version``.

        Feedback counters are never overwritten (they are added to concurrently).
        Requests: 1 transaction (+1 get on conflict).
        """
        index_set, index_remove = self._pattern_index_attrs(p)
        content = dump(p, "feedback", "agent_id", "pattern_id", "created_at")
        try:
            await self.engine.write(
                [
                    Update(
                        "ltm",
                        keys.pattern_pk(p.agent_id),
                        p.pattern_id,
                        set={**content, **index_set},
                        remove=index_remove,
                        conditions=(Cond.eq("version", expected_version),),
                    ),
                    self._history_put(p),
                ]
            )
        except ConditionFailed as exc:
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
        stored = await self.get_own_pattern(p.agent_id, p.pattern_id)
        assert stored is not None
        return stored

    async def get_own_pattern(
        self, agent: str, pattern_id: str, *, consistent: bool = True
    ) -> Pattern | None:
        """Requests: 1 get."""
        item = await self.engine.get("ltm", keys.pattern_pk(agent), pattern_id, consistent=consistent)
        return _pattern(item) if item is not None else None

    async def pattern_author(self, pattern_id: str) -> str | None:
        """Requests: 1 consistent get."""
        item = await self.engine.get("ltm", keys.pattern_id_pk(pattern_id), keys.ID_SK)
        return str(item["agent_id"]) if item else None

    async def query_own_patterns(
        self,
        agent: str,
        *,
        min_confidence: float,
        limit: int,
        cursor: str | None,
        keep: Callable[[Item], bool] | None,
    ) -> Page[Pattern]:
        """Active patterns of one author by confidence, highest first (gsi1; DAX-cacheable)."""
        return await self._page(
            "ltm",
            keys.pattern_pk(agent),
            _pattern,
            limit=limit,
            cursor=cursor,
            digest_parts=("own",),
            index="gsi1",
            sk_gte=keys.score(min_confidence),
            forward=False,
            consistent=False,
            keep=keep,
        )

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

    async def list_patterns(self, agent: str, *, limit: int, cursor: str | None) -> Page[Pattern]:
        """Every pattern of an author, any status, by id. Requests: 1+ consistent queries."""
        return await self._page(
            "ltm", keys.pattern_pk(agent), _pattern, limit=limit, cursor=cursor, digest_parts=()
        )

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
    refs: Sequence[tuple[str, str]], *, applied: bool, success: bool | None, now: datetime
) -> list[Update]:
    """Counter updates on applied patterns. At log time: an access; at outcome time: one
    application and its success. Conditional on the pattern existing (never resurrects)."""
    ops = []
    for author, pattern_id in refs:
        add: dict[str, int | float] = (
            {"fb_applied": 1, "fb_successes": 1 if success else 0} if applied else {"fb_access": 1}
        )
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
    return ops


def _pattern(item: Item) -> Pattern:
    data = strip_keys(item, "fb_applied", "fb_successes", "fb_access", "fb_last")
    data["feedback"] = PatternFeedback(
        applied_count=int(item.get("fb_applied", 0)),
        applied_successes=int(item.get("fb_successes", 0)),
        access_count=int(item.get("fb_access", 0)),
        last_accessed=item.get("fb_last"),
    )
    return Pattern.model_validate(data, context=STORED)
