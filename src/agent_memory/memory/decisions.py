"""Decisions (the long-term log, with outcomes) and short-term notes: what an agent did and is
doing, and the short-term view of both (recall_stm)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from agent_memory.api.requests import new_id
from agent_memory.api.results import DecisionPage, NoteResult, NoteSummary, ShortTermResult
from agent_memory.errors import AccessDenied, InvalidInput, NotFound
from agent_memory.memory.core import ServiceBase, checked_record, off_loop
from agent_memory.memory.identity import Caller
from agent_memory.models import Decision, Note, Outcome, Page
from agent_memory.storage import cursor as cursors
from agent_memory.storage.store import DecisionQuery, DecisionRef

NOTES_SHOWN = 5
"""Most notes recall_stm shows (on its first page, taking slots of the page)."""
PENDING_CAP = 100
"""recall_stm counts pending signals up to this many."""


class DecisionService(ServiceBase):
    """Log decisions and their outcomes, read them back, and keep short-term notes."""

    async def _resolve_patterns(self, caller: Caller, pattern_ids: list[str]) -> list[tuple[str, str]]:
        async def resolve(pattern_id: str) -> tuple[str, str]:
            pattern = await self._visible_pattern(caller, pattern_id, counted=False)
            if pattern is None:
                raise NotFound(
                    f"patterns_applied: no pattern {pattern_id!r} visible to you; "
                    "list the ids returned by recall_patterns"
                )
            return pattern.agent_id, pattern_id

        return list(await asyncio.gather(*(resolve(p) for p in dict.fromkeys(pattern_ids))))

    async def log_decision(
        self,
        caller: Caller,
        decision_type: str,
        *,
        context: Mapping[str, Any] | None = None,
        reasoning: Mapping[str, Any] | None = None,
        outcome: Outcome | None = None,
        decision_id: str | None = None,
        parent_decision_id: str | None = None,
        parent_agent_id: str | None = None,
        patterns_applied: list[str] | None = None,
        memory_influenced: bool | None = None,
        agent_version: str | None = None,
        validated: bool = False,
    ) -> tuple[Decision, bool]:
        """``parent_decision_id`` names one of the caller's decisions (checked), or, with
        ``parent_agent_id``, another agent's: that one is not checked, since another agent's
        decisions are private and an answer would tell whether the id exists (issue #12).

        ``validated``: the arguments come from the tool's request model
        (:class:`agent_memory.api.requests.LogDecision`), which validated them with the record's
        own field types (and the outcome is a record): the record is built from them without
        validating them a second time (issue #14). Callers from plain Python leave it False."""
        caller.require_write("log decisions")
        now = self.clock()
        applied = list(dict.fromkeys(patterns_applied or []))
        fields: dict[str, Any] = {
            "decision_id": decision_id or new_id("dec"),
            "agent_id": caller.agent_id,
            "agent_version": agent_version or self.settings.agent_version,
            "decision_type": decision_type,
            "created_at": now,
            "expires_at": now + timedelta(days=self.settings.decision_ttl_days),
            "context": dict(context or {}),
            "reasoning": dict(reasoning or {}),
            "parent_decision_id": parent_decision_id,
            "parent_agent_id": None if parent_agent_id == caller.agent_id else parent_agent_id,
            "patterns_applied": applied,
            "memory_influenced": bool(applied) if memory_influenced is None else memory_influenced,
            "outcome": outcome,
        }
        # The server's own values (id, agent, times, settings) are valid by construction; a time
        # of a clock in another zone is converted to UTC, a naive one refused, by either way.
        decision = checked_record(Decision, fields) if validated else await off_loop(Decision, **fields)
        if parent_agent_id is not None and parent_decision_id is None:
            raise InvalidInput("parent_agent_id names the author of parent_decision_id: pass both")
        if (
            parent_decision_id is not None
            and decision.parent_agent_id is None
            and await self.store.get_decision_ref(caller.agent_id, parent_decision_id) is None
        ):
            raise NotFound(
                f"parent_decision_id {parent_decision_id!r}: no decision of yours with that id (or it "
                "has expired); for another agent's decision, also pass parent_agent_id"
            )
        refs = await self._resolve_patterns(caller, applied) if applied else []
        return await self.store.put_decision(decision, refs, self.quotas.charge(caller.agent_id, "decisions"))

    async def record_outcome(
        self, caller: Caller, decision_id: str, outcome: Outcome
    ) -> tuple[Decision, bool]:
        """Attach ``outcome`` to one of the caller's decisions (once: the same outcome again is a
        no-op, recorded=False; another is a Conflict). Returns the decision as stored."""
        ref = await self._own_decision(caller, decision_id)
        return await self.store.set_outcome(ref, outcome)

    async def attach_outcome(
        self, caller: Caller, decision_id: str, outcome: Outcome
    ) -> tuple[DecisionRef, bool]:
        """:meth:`record_outcome` without reading the decision back: what its id item says of it
        (id, author, type, time), and whether this call recorded the outcome (the tool answers
        no more, so it saves the read; issue #14)."""
        ref = await self._own_decision(caller, decision_id)
        return ref, await self.store.attach_outcome(ref, outcome) is None

    async def _own_decision(self, caller: Caller, decision_id: str) -> DecisionRef:
        caller.require_write("record outcomes")
        ref = await self.store.get_decision_ref(caller.agent_id, decision_id)
        if ref is None:
            raise NotFound(
                f"no decision {decision_id!r} of yours: record outcomes only for decision_ids that "
                "log_decision returned to you (decisions expire after "
                f"{self.settings.decision_ttl_days} days)"
            )
        return ref

    async def get_decision(self, caller: Caller, decision_id: str, agent_id: str | None = None) -> Decision:
        """One decision of ``agent_id`` (default: the caller's own; an observer reads any agent's,
        and without ``agent_id`` looks in every registered agent's id space)."""
        if agent_id is None and caller.is_observer:
            found = [d for d in await self._in_every_space(self.store.get_decision, decision_id) if d]
            if len(found) > 1:
                raise InvalidInput(
                    f"decision_id {decision_id!r} is used by several agents; read "
                    "memory://agents/{agent_id}/decisions/{decision_id}"
                )
            decision = found[0] if found else None
        else:
            owner = agent_id or caller.agent_id
            decision = (
                await self.store.get_decision(owner, decision_id) if caller.may_read_agent(owner) else None
            )
        if decision is None:
            raise NotFound(f"no decision {decision_id!r} visible to you")
        return decision

    async def recall_stm(
        self, caller: Caller, decision_type: str | None = None, limit: int = 10, cursor: str | None = None
    ) -> ShortTermResult:
        """The caller's last ``stm_window_hours``: decisions newest first (strongly consistent on
        the table, never cached), live notes, and the number of pending signals.

        The first page shows up to :data:`NOTES_SHOWN` notes, which take slots of ``limit``. Its
        cursor carries the window start it was issued for, so later pages continue the same
        window however much time has passed (the window does not slide under a reader).
        """
        origin, inner = cursors.split_origin(cursor)
        since = origin or cursors.floor_origin(self.clock() - timedelta(hours=self.settings.stm_window_hours))
        notes: list[NoteSummary] = []
        more_notes = False
        if cursor is None:
            page = (
                await self.store.query_note_summaries(
                    caller.agent_id, limit=min(NOTES_SHOWN, limit - 1), cursor=None, resumable=False
                )
                if limit > 1
                else None
            )
            if page is not None:
                notes, more_notes = page.items, page.next_cursor is not None
        decisions, pending = await self.store.together(
            self.store.query_decision_summaries(
                DecisionQuery(caller.agent_id, decision_type=decision_type, since=since),
                limit=limit - len(notes),
                cursor=inner,
                caller_agent=caller.agent_id,
            ),
            self.store.count_pending(caller.agent_id, cap=PENDING_CAP),
        )
        return ShortTermResult.built(
            window_hours=self.settings.stm_window_hours,
            decisions=decisions.items,
            notes=notes,
            more_notes=more_notes or None,
            pending_signals=pending,
            next_cursor=cursors.with_origin(decisions.next_cursor, since),
        )

    async def search_decisions(
        self,
        caller: Caller,
        *,
        agent_id: str | None = None,
        decision_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        success: bool | None = None,
        all_agents: bool = False,
        newest_first: bool = True,
        limit: int = 20,
        cursor: str | None = None,
    ) -> Page[Decision]:
        query = self._search(caller, agent_id, decision_type, since, until, success, all_agents, newest_first)
        return await self.store.query_decisions(query, limit=limit, cursor=cursor)

    async def search_decision_summaries(
        self,
        caller: Caller,
        *,
        agent_id: str | None = None,
        decision_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        success: bool | None = None,
        all_agents: bool = False,
        newest_first: bool = True,
        limit: int = 20,
        cursor: str | None = None,
    ) -> DecisionPage:
        """:meth:`search_decisions` as the page the tool answers (summaries as ``caller`` sees
        them), made from the stored items without building each decision first."""
        query = self._search(caller, agent_id, decision_type, since, until, success, all_agents, newest_first)
        page = await self.store.query_decision_summaries(
            query, limit=limit, cursor=cursor, caller_agent=caller.agent_id
        )
        return DecisionPage.built(decisions=page.items, next_cursor=page.next_cursor)

    @staticmethod
    def _search(
        caller: Caller,
        agent_id: str | None,
        decision_type: str | None,
        since: datetime | None,
        until: datetime | None,
        success: bool | None,
        all_agents: bool,
        newest_first: bool,
    ) -> DecisionQuery:
        if since and until and since > until:
            raise InvalidInput("since is after until: swap them or widen the range")
        if all_agents:
            if not caller.is_observer:
                raise AccessDenied("searching across agents needs the observer role; omit all_agents")
            if decision_type is None:
                raise InvalidInput("searching across agents needs a decision_type")
            target: str | None = None
        else:
            target = agent_id or caller.agent_id
            caller.require_read(target, "decisions")
        return DecisionQuery(
            target,
            decision_type=decision_type,
            since=since,
            until=until,
            success=success,
            newest_first=newest_first,
            # The LTM side tolerates staleness: with DAX configured it may be served cached.
            consistent=False,
        )

    async def store_note(
        self, caller: Caller, key: str, value: Any, ttl_minutes: int | None = None, *, validated: bool = False
    ) -> NoteResult:
        """``validated``: ``key`` and ``value`` come from the tool's request model
        (:class:`agent_memory.api.requests.StoreStm`), which checked them as the note record does:
        the note is built without checking them again (issue #14)."""
        caller.require_write("store notes")
        limit = self.settings.note_max_ttl_minutes
        minutes = limit if ttl_minutes is None else ttl_minutes
        if not 1 <= minutes <= limit:
            raise InvalidInput(
                f"ttl_minutes must be between 1 and {limit} (short-term notes live at most 24 h)"
            )
        now = self.clock()
        fields = {
            "agent_id": caller.agent_id,
            "key": key,
            "value": value,
            "created_at": now,
            "expires_at": now + timedelta(minutes=minutes),
        }
        note = checked_record(Note, fields) if validated else await off_loop(Note, **fields)
        return NoteResult.of(await self.store.put_note(note, self.quotas.charge(caller.agent_id, "notes")))
