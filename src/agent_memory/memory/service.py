"""Domain services: what an agent can do with its memory, with the access rules applied once.

No MCP here and no storage details: this is usable from plain Python (the demo, Lambda jobs).
The server stamps author and time on every record from the :class:`Caller`; arguments never
decide whose memory is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from agent_memory.api.requests import new_id
from agent_memory.api.results import DecisionSummary, NoteSummary, PublishResult, ShortTermResult
from agent_memory.config import Settings
from agent_memory.errors import AccessDenied, Conflict, InvalidInput, NotFound
from agent_memory.limits import MAX_SIGNAL_TTL_HOURS
from agent_memory.memory.identity import Caller
from agent_memory.memory.ratelimit import RateLimiter
from agent_memory.memory.stats import wilson_interval
from agent_memory.models import (
    MAX_PAYLOAD_BYTES,
    STATE_SECTIONS,
    AgentProfile,
    AgentState,
    Decision,
    DeliveryStatus,
    InboxEntry,
    Note,
    Outcome,
    Page,
    Pattern,
    PatternCondition,
    PatternEvidence,
    Severity,
    Signal,
    StateCheckpoint,
    bounded_json,
)
from agent_memory.storage import cursor as cursors
from agent_memory.storage.store import DecisionQuery, MemoryStore

NOTES_SHOWN = 5
"""Most notes recall_stm shows (on its first page, taking slots of the page)."""
PENDING_CAP = 100
"""recall_stm counts pending signals up to this many."""


LEARNED_PREFIX = "lp_"
"""Prefix of learned pattern ids (see learner.learned_pattern_id); reserved for the learner."""


SHARED_SCAN = 200
"""Index entries of patterns shared with a reader examined per recall (per partition: by name,
and with everyone); each author contributes at most limits.MAX_SHARED_PATTERNS."""
SHARED_EXTRA = 10
"""Candidates fetched beyond ``limit`` so that evidence can reorder the top of the list."""


def with_evidence(pattern: Pattern) -> Pattern:
    """Another agent's pattern with what the memory measured about it (its stated confidence,
    success rate and sample size stay as the author's claims)."""
    fb = pattern.feedback
    if pattern.source == "learned":
        evidence = PatternEvidence(measured_confidence=pattern.confidence, basis="learned")
    else:
        lower = wilson_interval(fb.applied_successes, fb.applied_count)[0] if fb.applied_count else 0.0
        evidence = PatternEvidence(measured_confidence=round(lower, 6), basis="applications")
    return pattern.model_copy(update={"evidence": evidence})


def _delivery_view(caller: Caller, signal: Signal) -> Signal:
    """A signal as ``caller`` may see it: its publisher and observers see every delivery; a target
    sees its own only (another target's status and linked decision are that target's business)."""
    if caller.is_observer or caller.agent_id == signal.source_agent:
        return signal
    own = {a: d for a, d in signal.processing_status.items() if a == caller.agent_id}
    return signal.model_copy(update={"processing_status": own})


T = TypeVar("T")


async def off_loop(build: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Build (validate, normalise) a record in a worker thread: a record carrying up to 64 KiB per
    free-form field costs milliseconds of CPU, and other agents' calls must be answered meanwhile
    (issue #12: large payloads stalled another agent's get_state for seconds)."""
    return await asyncio.to_thread(build, *args, **kwargs)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


class Memory:
    """The memory of a team of agents, as one caller sees it."""

    def __init__(self, store: MemoryStore, settings: Settings, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self._seen: dict[str, datetime] = {}
        self._known_agents: set[str] = set()
        """Agent ids seen in the registry (see :meth:`_unregistered`)."""
        self._limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)

    # ------------------------------------------------------------------------------------------
    # registry
    # ------------------------------------------------------------------------------------------

    async def register(self, caller: Caller, agent_version: str | None = None) -> None:
        """Register a caller first seen, and refresh ``last_seen`` at most once a minute per
        process (the registry is informative; this keeps it off every call's cost).

        Every tool call passes here first, so this is also where the caller's rate limit is taken.
        """
        self._limiter.admit(caller.agent_id)
        if self.settings.read_only:
            return  # a read-only server writes nothing, not even the registry
        now = self.clock()
        last = self._seen.get(caller.agent_id)
        if last is not None and now - last < timedelta(minutes=1):
            return
        await self.store.register_agent(
            AgentProfile(
                agent_id=caller.agent_id,
                role=caller.role,
                agent_version=agent_version or self.settings.agent_version,
                first_seen=now,
                last_seen=now,
            )
        )
        self._seen[caller.agent_id] = now
        self._known_agents.add(caller.agent_id)

    async def list_agents(self, limit: int = 100, cursor: str | None = None) -> Page[AgentProfile]:
        return await self.store.list_agents(limit=limit, cursor=cursor)

    # ------------------------------------------------------------------------------------------
    # decisions
    # ------------------------------------------------------------------------------------------

    async def _resolve_patterns(self, caller: Caller, pattern_ids: list[str]) -> list[tuple[str, str]]:
        async def resolve(pattern_id: str) -> tuple[str, str]:
            author = await self.store.pattern_author(pattern_id)
            pattern = await self.store.get_own_pattern(author, pattern_id) if author else None
            if pattern is None or not pattern.visible_to(caller.agent_id):
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
        patterns_applied: list[str] | None = None,
        memory_influenced: bool | None = None,
        agent_version: str | None = None,
    ) -> tuple[Decision, bool]:
        caller.require_write("log decisions")
        now = self.clock()
        applied = list(dict.fromkeys(patterns_applied or []))
        decision = await off_loop(
            Decision,
            decision_id=decision_id or new_id("dec"),
            agent_id=caller.agent_id,
            agent_version=agent_version or self.settings.agent_version,
            decision_type=decision_type,
            created_at=now,
            expires_at=now + timedelta(days=self.settings.decision_ttl_days),
            context=dict(context or {}),
            reasoning=dict(reasoning or {}),
            parent_decision_id=parent_decision_id,
            patterns_applied=applied,
            memory_influenced=bool(applied) if memory_influenced is None else memory_influenced,
            outcome=outcome,
        )
        if parent_decision_id is not None and await self.store.get_decision_ref(parent_decision_id) is None:
            raise NotFound(
                f"parent_decision_id {parent_decision_id!r} does not exist (or has expired): "
                "pass the decision_id returned by log_decision"
            )
        refs = await self._resolve_patterns(caller, applied) if applied else []
        return await self.store.put_decision(decision, refs)

    async def record_outcome(
        self, caller: Caller, decision_id: str, outcome: Outcome
    ) -> tuple[Decision, bool]:
        caller.require_write("record outcomes")
        ref = await self.store.get_decision_ref(decision_id)
        if ref is None or ref.agent_id != caller.agent_id:
            raise NotFound(
                f"no decision {decision_id!r} of yours: record outcomes only for decision_ids that "
                "log_decision returned to you (decisions expire after "
                f"{self.settings.decision_ttl_days} days)"
            )
        return await self.store.set_outcome(ref, outcome)

    async def get_decision(self, caller: Caller, decision_id: str) -> Decision:
        decision = await self.store.get_decision(decision_id)
        if decision is None or not caller.may_read_agent(decision.agent_id):
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
        notes: list[Note] = []
        more_notes = False
        if cursor is None:
            page = (
                await self.store.query_notes(caller.agent_id, limit=min(NOTES_SHOWN, limit - 1), cursor=None)
                if limit > 1
                else None
            )
            if page is not None:
                notes, more_notes = page.items, page.next_cursor is not None
        decisions, pending = await asyncio.gather(
            self.store.query_decisions(
                DecisionQuery(caller.agent_id, decision_type=decision_type, since=since),
                limit=limit - len(notes),
                cursor=inner,
            ),
            self.store.count_pending(caller.agent_id, cap=PENDING_CAP),
        )
        return ShortTermResult(
            window_hours=self.settings.stm_window_hours,
            decisions=[DecisionSummary.of(d, caller.agent_id) for d in decisions.items],
            notes=[NoteSummary.of(n) for n in notes],
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
        return await self.store.query_decisions(
            DecisionQuery(
                target,
                decision_type=decision_type,
                since=since,
                until=until,
                success=success,
                newest_first=newest_first,
                # The LTM side tolerates staleness: with DAX configured it may be served cached.
                consistent=False,
            ),
            limit=limit,
            cursor=cursor,
        )

    # ------------------------------------------------------------------------------------------
    # notes
    # ------------------------------------------------------------------------------------------

    async def store_note(self, caller: Caller, key: str, value: Any, ttl_minutes: int | None = None) -> Note:
        caller.require_write("store notes")
        limit = self.settings.note_max_ttl_minutes
        minutes = limit if ttl_minutes is None else ttl_minutes
        if not 1 <= minutes <= limit:
            raise InvalidInput(
                f"ttl_minutes must be between 1 and {limit} (short-term notes live at most 24 h)"
            )
        now = self.clock()
        note = await off_loop(
            Note,
            agent_id=caller.agent_id,
            key=key,
            value=value,
            created_at=now,
            expires_at=now + timedelta(minutes=minutes),
        )
        return await self.store.put_note(note)

    # ------------------------------------------------------------------------------------------
    # patterns
    # ------------------------------------------------------------------------------------------

    async def store_pattern(
        self,
        caller: Caller,
        *,
        description: str,
        conditions: list[PatternCondition],
        outcomes: Mapping[str, Any],
        confidence: float,
        success_rate: float,
        sample_size: int,
        pattern_id: str | None = None,
        domain: str = "general",
        decision_type: str | None = None,
        shared_with: list[str] | None = None,
        expected_version: int | None = None,
        status: Literal["active", "superseded", "decayed"] = "active",
        source: Literal["manual", "learned"] = "manual",
        stats: Mapping[str, Any] | None = None,
        superseded_by: str | None = None,
    ) -> Pattern:
        caller.require_write("store patterns")
        if source != "learned" and pattern_id is not None and pattern_id.startswith(LEARNED_PREFIX):
            # Learned ids are a public function of (agent, type, rule): only the learner, acting
            # for the author, may create them, or anyone could squat another agent's next rule.
            raise InvalidInput(
                f"pattern ids starting with {LEARNED_PREFIX!r} are reserved for learned patterns: "
                "omit pattern_id or choose another"
            )
        now = self.clock()
        fields: dict[str, Any] = dict(
            agent_id=caller.agent_id,
            domain=domain,
            description=description,
            conditions=conditions,
            outcomes=dict(outcomes),
            confidence=confidence,
            success_rate=success_rate,
            sample_size=sample_size,
            decision_type=decision_type,
            shared_with=shared_with or [],
            status=status,
            source=source,
            stats=dict(stats or {}),
            superseded_by=superseded_by,
            updated_at=now,
        )
        if expected_version is None:
            return await self.store.create_pattern(
                Pattern(pattern_id=pattern_id or new_id("pat"), version=1, created_at=now, **fields)
            )
        if pattern_id is None:
            raise InvalidInput("expected_version needs the pattern_id of the pattern to update")
        current = await self._own_pattern_for_write(caller, pattern_id)
        updated = Pattern(
            pattern_id=pattern_id, version=expected_version + 1, created_at=current.created_at, **fields
        )
        return await self.store.update_pattern(updated, expected_version)

    async def _own_pattern_for_write(
        self, caller: Caller, pattern_id: str, missing_hint: str = "omit expected_version to create it"
    ) -> Pattern:
        current = await self.store.get_own_pattern(caller.agent_id, pattern_id)
        if current is not None:
            return current
        author = await self.store.pattern_author(pattern_id)
        if author is not None:
            other = await self.store.get_own_pattern(author, pattern_id)
            if other is not None and other.visible_to(caller.agent_id):
                raise AccessDenied(
                    f"pattern {pattern_id!r} belongs to agent {author!r}; shared patterns are read-only "
                    "to others: store your own pattern (omit pattern_id) instead"
                )
        raise NotFound(f"no pattern {pattern_id!r} of yours: {missing_hint}")

    async def share_pattern(self, caller: Caller, pattern_id: str, shared_with: list[str]) -> Pattern:
        """Promote a pattern to shared (['*'] = every agent) or change who it is shared with."""
        caller.require_write("share patterns")
        current = await self._own_pattern_for_write(
            caller, pattern_id, "pass one of your pattern_ids (recall_patterns lists them)"
        )
        updated = current.model_copy(
            update={"shared_with": shared_with, "version": current.version + 1, "updated_at": self.clock()}
        )
        return await self.store.update_pattern(Pattern.model_validate(updated.model_dump()), current.version)

    async def get_pattern(self, caller: Caller, pattern_id: str) -> Pattern:
        author = await self.store.pattern_author(pattern_id)
        pattern = await self.store.get_own_pattern(author, pattern_id) if author else None
        if pattern is None or not (pattern.visible_to(caller.agent_id) or caller.is_observer):
            raise NotFound(f"no pattern {pattern_id!r} visible to you")
        return pattern

    async def pattern_history(self, caller: Caller, pattern_id: str, limit: int = 20) -> list[Pattern]:
        pattern = await self.get_pattern(caller, pattern_id)
        page = await self.store.pattern_history(pattern.agent_id, pattern_id, limit=limit, cursor=None)
        # Each version carries the sharing it had: a reader sees only the versions that were
        # visible to it (a pattern written privately and shared later keeps its past private).
        return [p for p in page.items if caller.is_observer or p.visible_to(caller.agent_id)]

    async def recall_patterns(
        self,
        caller: Caller,
        *,
        context: Mapping[str, Any] | None = None,
        domain: str | None = None,
        decision_type: str | None = None,
        min_confidence: float = 0.0,
        include_shared: bool = True,
        limit: int = 10,
        agent_id: str | None = None,
    ) -> list[Pattern]:
        """Active patterns ranked by confidence: the caller's own and, if asked, those shared
        with it. With ``context``, only patterns whose every condition holds for it."""
        owner = agent_id or caller.agent_id
        caller.require_read(owner, "patterns")
        ctx = await off_loop(bounded_json, dict(context), "context") if context is not None else None

        def keep_item(item: Mapping[str, Any]) -> bool:
            if domain is not None and item.get("domain") != domain:
                return False
            if decision_type is not None and item.get("decision_type") not in (None, decision_type):
                return False
            if owner != caller.agent_id or item.get("agent_id") == caller.agent_id:
                visible = True
            else:
                shared = item.get("shared_with") or []
                visible = "*" in shared or caller.agent_id in shared
            if not visible:
                return False
            if ctx is None:
                return True
            conditions = [PatternCondition.model_validate(c) for c in item.get("conditions") or []]
            return all(c.holds(ctx) for c in conditions)

        own = self.store.query_own_patterns(
            owner, min_confidence=min_confidence, limit=limit, cursor=None, keep=keep_item
        )
        if not (include_shared and owner == caller.agent_id):
            found = (await own).items
            found.sort(key=lambda p: (-p.confidence, -p.sample_size, p.pattern_id))
            return found[:limit]

        def keep_foreign(item: Mapping[str, Any]) -> bool:
            return item.get("agent_id") != caller.agent_id and keep_item(item)

        own_page, (named, everyone) = await asyncio.gather(
            own, self.store.query_shared_with(caller.agent_id, limit=SHARED_SCAN, keep=keep_foreign)
        )
        # Candidates by rank (learned confidence; claims rank 0), those shared with the caller by
        # name before those shared with everyone; then the memory's evidence decides the order.
        entries = {(e["agent_id"], e["pattern_id"]): e for e in [*everyone, *named]}
        named_keys = {(e["agent_id"], e["pattern_id"]) for e in named}
        ranked = sorted(
            entries.values(),
            key=lambda e: (-float(e["rank"]), (e["agent_id"], e["pattern_id"]) not in named_keys),
        )[: limit + SHARED_EXTRA]
        fetched = await asyncio.gather(
            *(self.store.get_own_pattern(e["agent_id"], e["pattern_id"], consistent=False) for e in ranked)
        )
        foreign = []
        for pattern in fetched:
            if pattern is None or pattern.status != "active" or not pattern.visible_to(caller.agent_id):
                continue  # changed since the index entry was read
            seen = with_evidence(pattern)
            if seen.evidence is not None and seen.evidence.measured_confidence >= min_confidence:
                foreign.append(seen)

        def rank(p: Pattern) -> tuple[float, bool, int, str, str]:
            if p.evidence is None:  # the caller's own: its own figures
                return (-p.confidence, False, -p.sample_size, p.agent_id, p.pattern_id)
            # Another agent's: measured evidence only, never its stated sample size; shared with
            # the caller by name before shared with everyone.
            named = (p.agent_id, p.pattern_id) in named_keys
            score = p.evidence.measured_confidence
            return (-score, not named, -p.feedback.applied_count, p.agent_id, p.pattern_id)

        found = sorted([*own_page.items, *foreign], key=rank)
        return found[:limit]

    # ------------------------------------------------------------------------------------------
    # state
    # ------------------------------------------------------------------------------------------

    async def get_state(self, caller: Caller, agent_id: str | None = None) -> AgentState:
        owner = agent_id or caller.agent_id
        caller.require_read(owner, "state")
        return await self.store.get_state(owner)

    async def update_state(
        self,
        caller: Caller,
        patch: Mapping[str, Any],
        expected_version: int,
        checkpoint: str | None = None,
        agent_version: str | None = None,
        request_id: str | None = None,
    ) -> AgentState:
        """``request_id`` names this update: a retry with the same id and patch after a lost answer
        gets the first answer instead of ``version_conflict`` (see docs/RELIABILITY.md)."""
        caller.require_write("update state")
        unknown = sorted(set(patch) - set(STATE_SECTIONS))
        if unknown:
            raise InvalidInput(
                f"patch has unknown section(s) {unknown}: patch is a JSON merge patch over "
                f'{list(STATE_SECTIONS)}, e.g. {{"current": {{"cycle": 143}}}}'
            )
        # A patch may touch four sections of at most 64 KiB each.
        patch = await off_loop(
            bounded_json, dict(patch), "patch", limit=len(STATE_SECTIONS) * MAX_PAYLOAD_BYTES
        )
        current = await self.store.get_state(caller.agent_id)
        now = self.clock()
        data = current.model_dump()
        for section in STATE_SECTIONS:
            if section not in patch:
                continue
            if patch[section] is None:  # merge-patch null: clear the section
                data[section] = {}
            elif isinstance(patch[section], dict):
                data[section] = merge_patch(data[section], patch[section])
            else:
                raise InvalidInput(f"patch.{section} must be an object (or null to clear it)")
        data.update(
            version=expected_version + 1,
            updated_at=now,
            updated_by=caller.agent_id,
            agent_version=agent_version or self.settings.agent_version or current.agent_version,
        )
        new_state = AgentState.model_validate(data)
        return await self.store.put_state(new_state, expected_version, checkpoint, request_id)
        new_state = await off_loop(AgentState.model_validate, data)
        return await self.store.put_state(new_state, expected_version, checkpoint)

    async def list_checkpoints(
        self, caller: Caller, agent_id: str | None = None, limit: int = 10, cursor: str | None = None
    ) -> Page[StateCheckpoint]:
        """Checkpoints newest first (an agent's own; the observer role reads any agent's)."""
        owner = agent_id or caller.agent_id
        caller.require_read(owner, "checkpoints")
        return await self.store.list_checkpoints(owner, limit=limit, cursor=cursor)

    async def get_checkpoint(
        self, caller: Caller, version: int, agent_id: str | None = None
    ) -> StateCheckpoint:
        """The checkpoint kept at ``version`` (pages through the checkpoints, newest first)."""
        cursor: str | None = None
        while True:
            page = await self.list_checkpoints(caller, agent_id, limit=50, cursor=cursor)
            for checkpoint in page.items:
                if checkpoint.version == version:
                    return checkpoint
            if page.next_cursor is None or (page.items and page.items[-1].version < version):
                raise NotFound(
                    f"no checkpoint at version {version}: list them at memory://agents/{{agent_id}}/checkpoints"
                )
            cursor = page.next_cursor

    # ------------------------------------------------------------------------------------------
    # signals
    # ------------------------------------------------------------------------------------------

    async def publish_signal(
        self,
        caller: Caller,
        *,
        signal_type: str,
        data: Mapping[str, Any],
        target_agents: list[str],
        confidence: float,
        severity: Severity = "medium",
        recommended_action: str | None = None,
        context: Mapping[str, Any] | None = None,
        ttl_hours: float | None = None,
        signal_id: str | None = None,
    ) -> PublishResult:
        """Publish to every target in one transaction; answers ids and flags, not the signal."""
        caller.require_write("publish signals")
        hours = self.settings.signal_ttl_hours if ttl_hours is None else ttl_hours
        if not 0 < hours <= MAX_SIGNAL_TTL_HOURS:
            raise InvalidInput(
                f"ttl_hours must be greater than 0 and at most {MAX_SIGNAL_TTL_HOURS} "
                f"({MAX_SIGNAL_TTL_HOURS // 24} days)"
            )
        if target_agents == ["*"]:
            targets = sorted(a for a in await self._registered_ids() if a != caller.agent_id)
            if not targets:
                raise InvalidInput("no other agent is registered yet: name the target_agents explicitly")
            unregistered: list[str] = []
        elif "*" in target_agents:
            raise InvalidInput("use ['*'] alone to target every registered agent")
        else:
            targets = list(dict.fromkeys(target_agents))
            unregistered = await self._unregistered(targets)
        now = self.clock()
        signal = await off_loop(
            Signal,
            signal_id=signal_id or new_id("sig"),
            signal_type=signal_type,
            source_agent=caller.agent_id,
            target_agents=targets,
            severity=severity,
            confidence=confidence,
            data=dict(data),
            context=dict(context or {}),
            recommended_action=recommended_action,
            created_at=now,
            expires_at=now + timedelta(hours=hours),
        )
        stored, created = await self.store.publish_signal(signal)
        return PublishResult(
            signal_id=stored.signal_id,
            created=created,
            targets=len(stored.target_agents),
            unregistered_targets=unregistered or None,
            expires_at=stored.expires_at,
        )

    async def _registered_ids(self) -> set[str]:
        ids = {p.agent_id for p in await self.store.all_agents()}
        self._known_agents |= ids
        return ids

    async def _unregistered(self, targets: list[str]) -> list[str]:
        """The targets not in the registry. An agent, once registered, stays registered, so the
        ids seen registered are remembered per process and only the others are looked up (one
        consistent get each, in parallel): a team publishing to its usual peers reads nothing."""
        unknown = [t for t in targets if t not in self._known_agents]
        found = await asyncio.gather(*(self.store.get_agent(t) for t in unknown))
        self._known_agents.update(p.agent_id for p in found if p is not None)
        return [t for t, p in zip(unknown, found, strict=True) if p is None]

    async def read_inbox(
        self,
        caller: Caller,
        status: DeliveryStatus = "pending",
        signal_type: str | None = None,
        limit: int = 10,
        cursor: str | None = None,
    ) -> Page[InboxEntry]:
        return await self.store.read_inbox(
            caller.agent_id, status=status, signal_type=signal_type, limit=limit, cursor=cursor
        )

    async def ack_signal(
        self,
        caller: Caller,
        signal_id: str,
        status: Literal["processed", "rejected"],
        decision_id: str | None = None,
    ) -> tuple[InboxEntry, bool]:
        caller.require_write("acknowledge signals")
        signal = await self.store.get_signal(signal_id)
        if signal is None or (
            caller.agent_id not in signal.target_agents and signal.source_agent != caller.agent_id
        ):
            raise NotFound(
                f"no signal {signal_id!r} addressed to you (signals expire; read_inbox lists yours)"
            )
        if caller.agent_id not in signal.target_agents:
            raise AccessDenied(
                f"you published signal {signal_id!r}; only its targets acknowledge it: {signal.target_agents}"
            )
        if decision_id is not None:
            ref = await self.store.get_decision_ref(decision_id)
            if ref is None or ref.agent_id != caller.agent_id:
                raise NotFound(f"decision_id {decision_id!r}: no decision of yours with that id")
        try:
            entry, created = await self.store.ack(caller.agent_id, signal, status, decision_id)
        except Conflict as exc:
            if isinstance(exc.current, Signal):
                exc.current = _delivery_view(caller, exc.current)
            raise
        return entry.model_copy(update={"signal": _delivery_view(caller, entry.signal)}), created

    async def get_signal(self, caller: Caller, signal_id: str) -> Signal:
        signal = await self.store.get_signal(signal_id)
        if signal is None or not (
            caller.is_observer
            or caller.agent_id == signal.source_agent
            or caller.agent_id in signal.target_agents
        ):
            raise NotFound(f"no signal {signal_id!r} visible to you")
        return _delivery_view(caller, signal)
