"""Agent state (versioned), its checkpoints, and short-term notes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from typing import Any, TypeVar

from agent_memory.api.results import NoteSummary
from agent_memory.errors import Conflict, VersionConflict
from agent_memory.models import AgentState, Note, Page, StateCheckpoint
from agent_memory.storage import keys
from agent_memory.storage.engine import Cond, ConditionFailed, Item, Put, WriteOp
from agent_memory.storage.records.base import (
    KEY_ATTRS,
    QUOTA_MARK,
    REQUEST_TOKEN,
    content_token,
    dump,
    json_time,
    new_request_token,
    stored,
    strip_keys,
    summary_of,
    write_once,
)
from agent_memory.storage.records.quotas import Charge, Counted, QuotaRecords

R = TypeVar("R")

NOTE_ATTEMPTS = 3
"""Writes of one note key that may overtake a counted note write before it gives up (retryable)."""


class StateRecords(QuotaRecords):
    async def get_state(self, agent: str) -> AgentState:
        """The current state (version 0 and empty when never written). Requests: 1 consistent get."""
        item = await self.engine.get("state", keys.state_pk(agent), keys.STATE_SK)
        return stored(AgentState, strip_keys(item)) if item else AgentState(agent_id=agent)

    async def put_state(
        self,
        state: AgentState,
        expected_version: int,
        checkpoint_label: str | None = None,
        request_id: str | None = None,
        charge: Charge | None = None,
    ) -> AgentState:
        """Write ``state`` (whose version is expected_version + 1) if the stored version is
        ``expected_version`` (0 = never written). A checkpoint, if asked, is written in the same
        transaction. Requests: 1 write or transaction (+1 get on conflict).

        Idempotent: the item carries a request token, so a write whose response was lost and that
        is retried (by botocore) finds its own write in place and answers as the first attempt
        would have, not ``version_conflict``. The token is this call's own, unless the caller names
        the request (``request_id``): then it is derived from that id and the content, so the
        caller's own retry of a call whose answer it lost gets the first answer too. Two different
        calls never share a token, so of concurrent identical updates exactly one wins.
        """
        token = (
            content_token("state", expected_version, request_id, dump(state, "updated_at"), checkpoint_label)
            if request_id is not None
            else new_request_token()
        )
        item = {
            **_state_fields(state),
            "pk": keys.state_pk(state.agent_id),
            "sk": keys.STATE_SK,
            REQUEST_TOKEN: token,
        }
        cond = Cond.not_exists() if expected_version == 0 else Cond.eq("version", expected_version)
        ops: list[WriteOp] = [Put("state", item, (cond,))]
        counted = Counted(0, [])  # the state replaces itself (bounded by the item size): a checkpoint adds
        if checkpoint_label is not None:
            assert state.updated_at is not None
            cp = StateCheckpoint(
                agent_id=state.agent_id,
                version=state.version,
                label=checkpoint_label,
                created_at=state.updated_at,
                state=state,
            )
            cp_item = {**dump(cp), "pk": keys.state_pk(state.agent_id), "sk": keys.checkpoint_sk(cp.version)}
            ops.append(Put("state", cp_item))
            counted = Counted(1, [cp_item])
        try:
            mine = await write_once(
                lambda: self.counted_write(ops, charge if counted.count else None, counted), token
            )
        except ConditionFailed as exc:
            current = await self.get_state(state.agent_id)
            raise VersionConflict(
                f"state version {expected_version} is stale; current version is {current.version}: "
                f"re-read the state, re-apply your change and retry with expected_version={current.version}",
                current=current,
                current_version=current.version,
            ) from exc
        if mine is not None:  # this very request wrote it; only its first answer was lost
            return stored(AgentState, strip_keys(mine))
        return state

    async def list_checkpoints(self, agent: str, *, limit: int, cursor: str | None) -> Page[StateCheckpoint]:
        """Checkpoints newest first. Requests: 1+ consistent queries."""
        return await self._page(
            "state",
            keys.state_pk(agent),
            lambda item: stored(StateCheckpoint, strip_keys(item)),
            limit=limit,
            cursor=cursor,
            digest_parts=(),
            sk_prefix=keys.CHECKPOINT_PREFIX,
            forward=False,
        )

    async def put_note(self, note: Note, charge: Charge | None = None) -> Note:
        """Upsert a note (last writer wins: a note is a scratch value). Requests: 1 put.

        Counted (``charge``): the note replaced gives back what it was counted for, so the put is
        conditional on the note read being the one replaced (its request token). Requests: 1 get
        + 1 transaction (+1 get and 1 transaction per concurrent write of the same key it loses).
        """
        item: Item = {
            **_note_fields(note),
            "pk": keys.note_pk(note.agent_id),
            "sk": note.key,
            "ttl": keys.epoch(note.expires_at),
        }
        if charge is None:
            await self.engine.write([Put("state", item)])
            return note
        for _ in range(NOTE_ATTEMPTS):
            old = await self.engine.get("state", item["pk"], item["sk"])
            item[REQUEST_TOKEN] = new_request_token()
            counted = Counted(1, [dict(item)], note.expires_at)
            item[QUOTA_MARK] = self.quota_mark(counted, charge)
            if old is None:
                conds: tuple[Cond, ...] = (Cond.not_exists(),)
            elif REQUEST_TOKEN in old:
                conds = (Cond.eq(REQUEST_TOKEN, old[REQUEST_TOKEN]),)
            else:
                conds = (Cond.exists(), Cond.lacks(REQUEST_TOKEN))
            try:
                await self.counted_write([Put("state", item, conds)], charge, counted, replaced=old)
            except ConditionFailed as exc:
                if exc.index != 0:
                    raise
                continue  # another write of this key landed between the read and this write
            return note
        raise Conflict(f"note {note.key!r} is being written concurrently by your other calls: retry")

    async def query_notes(
        self, agent: str, *, limit: int, cursor: str | None, resumable: bool = True
    ) -> Page[Note]:
        """Live notes by key. ``resumable=False``: ``next_cursor`` only says whether more exist
        (:data:`~agent_memory.storage.records.base.MORE`, not a cursor). Requests: 1+ queries."""
        return await self._note_page(agent, _note, limit, cursor, resumable)

    async def query_note_summaries(
        self, agent: str, *, limit: int, cursor: str | None, resumable: bool = True
    ) -> Page[NoteSummary]:
        """:meth:`query_notes` as the summaries recall_stm shows (``NoteSummary.of`` of each note),
        made from the stored items without building each :class:`Note` first (an item of another
        shape is built, so validated, as before)."""

        def summary(item: Item) -> NoteSummary:
            return summary_of(_note_summary, item, None)

        return await self._note_page(agent, summary, limit, cursor, resumable)

    async def _note_page(
        self, agent: str, convert: Callable[[Item], R], limit: int, cursor: str | None, resumable: bool
    ) -> Page[R]:
        return await self._page(
            "state",
            keys.note_pk(agent),
            convert,
            limit=limit,
            cursor=cursor,
            digest_parts=(),
            resumable=resumable,
        )


def _note(item: Item) -> Note:
    return stored(Note, strip_keys(item))


def _note_summary(item: Item, _: None) -> NoteSummary:
    if item.keys() <= _NOTE_ITEM_KEYS:
        try:
            return NoteSummary.of_stored(item)
        except (KeyError, ValueError):
            pass
    return NoteSummary.of(_note(item))


def _state_fields(s: AgentState) -> dict[str, Any]:
    """``dump(s)``, copied field by field (pydantic's dump was a twentieth of an update's CPU;
    issue #14); a record of another shape (a subclass, a time not in UTC, a section that is not
    a dict, which validation never leaves) is dumped by pydantic. Test: tests/storage/
    test_write_encoding.py."""
    if (
        type(s) is not AgentState
        or (s.updated_at is not None and s.updated_at.tzinfo is not UTC)
        or type(s.current) is not dict
        or type(s.configuration) is not dict
        or type(s.source_metrics) is not dict
        or type(s.context_performance) is not dict
    ):
        return dump(s)
    return {
        "agent_id": s.agent_id,
        "version": s.version,
        "current": s.current,
        "configuration": s.configuration,
        "source_metrics": s.source_metrics,
        "context_performance": s.context_performance,
        "agent_version": s.agent_version,
        "updated_at": None if s.updated_at is None else json_time(s.updated_at),
        "updated_by": s.updated_by,
    }


def _note_fields(n: Note) -> dict[str, Any]:
    """``dump(n)``, copied field by field (see :func:`_state_fields`); a value of a type JSON
    does not hold as is (a tuple: validation leaves lists) is dumped by pydantic."""
    kind = type(n.value)
    if (
        type(n) is not Note
        or n.created_at.tzinfo is not UTC
        or n.expires_at.tzinfo is not UTC
        or kind not in _PLAIN_VALUE_TYPES
    ):
        return dump(n)
    return {
        "agent_id": n.agent_id,
        "key": n.key,
        "value": n.value,
        "created_at": json_time(n.created_at),
        "expires_at": json_time(n.expires_at),
    }


_PLAIN_VALUE_TYPES = frozenset((dict, list, str, int, float, bool, type(None)))


_NOTE_ITEM_KEYS = frozenset(Note.model_fields) | KEY_ATTRS
"""What a note's item holds: its fields and key attributes (request token, quota mark)."""
