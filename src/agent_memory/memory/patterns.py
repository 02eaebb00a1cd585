"""Patterns: an agent's own rules of thumb, shared ones with the evidence the memory measured,
and their version history."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from agent_memory.api.requests import new_id
from agent_memory.api.results import PatternResult, PatternSummary
from agent_memory.errors import AccessDenied, InvalidInput, NotFound
from agent_memory.memory.core import ServiceBase, off_loop
from agent_memory.memory.identity import Caller
from agent_memory.memory.stats import wilson_interval
from agent_memory.models import Pattern, PatternCondition, PatternEvidence, bounded_json, condition_holds
from agent_memory.storage.records.patterns import CONDITION_FIELDS, PlainPattern, pattern_of, plain_pattern
from agent_memory.storage.records.trusted import stored

LEARNED_PREFIX = "lp_"
"""Prefix of learned pattern ids (see learner.learned_pattern_id); reserved for the learner."""


SHARED_SCAN = 200
"""Index entries of patterns shared with a reader examined per recall (per partition: by name,
and with everyone); each author contributes at most limits.MAX_SHARED_PATTERNS."""
SHARED_EXTRA = 10
"""Candidates fetched beyond ``limit`` so that evidence can reorder the top of the list."""


def measured_evidence(source: str, confidence: float, applied: int, successes: int) -> PatternEvidence:
    """What the memory measured about another agent's pattern of these figures (see :func:`with_evidence`)."""
    if source == "learned":
        measured, basis = float(confidence), "learned"
    else:
        lower = wilson_interval(successes, applied)[0] if applied else 0.0
        measured, basis = float(round(lower, 6)), "applications"
    # Built from values computed here (a float and one of the two bases), not validated again.
    return stored(PatternEvidence, {"measured_confidence": measured, "basis": basis})


def with_evidence(pattern: Pattern, evidence: PatternEvidence | None = None) -> Pattern:
    """Another agent's pattern with what the memory measured about it (its stated confidence,
    success rate and sample size stay as the author's claims); ``evidence``: that, computed already."""
    if evidence is None:
        fb = pattern.feedback
        evidence = measured_evidence(
            pattern.source, pattern.confidence, fb.applied_count, fb.applied_successes
        )
    # The copy is ``pattern.model_copy(update={"evidence": evidence})`` less its generic steps.
    seen: Pattern = object.__new__(Pattern)
    object.__setattr__(seen, "__dict__", {**pattern.__dict__, "evidence": evidence})
    object.__setattr__(seen, "__pydantic_fields_set__", {*pattern.__pydantic_fields_set__, "evidence"})
    object.__setattr__(seen, "__pydantic_extra__", None)
    object.__setattr__(seen, "__pydantic_private__", None)
    return seen


Found = tuple[Pattern | PlainPattern, PatternEvidence | None]
"""A pattern recall found: its record, or its item when of the shape the store writes (not built:
:func:`_record` and :func:`_summary` make what the caller needs), and the evidence of another
agent's pattern (None for the caller's own)."""


def _record(found: Found) -> Pattern:
    pattern, evidence = found
    if isinstance(pattern, Pattern):
        return pattern
    record = pattern_of(pattern.item, entry=pattern.entry)
    return record if evidence is None else with_evidence(record, evidence)


def _summary(found: Found, caller_agent: str) -> PatternSummary:
    pattern, evidence = found
    if isinstance(pattern, Pattern):
        return PatternSummary.of(pattern, caller_agent)
    return PatternSummary.of_stored(
        pattern.item,
        caller_agent,
        confidence=pattern.confidence,
        success_rate=pattern.success_rate,
        sample_size=pattern.sample_size,
        version=pattern.version,
        applied=pattern.applied,
        successes=pattern.successes,
        author_applied=pattern.author_applied,
        evidence=evidence,
    )


class PatternService(ServiceBase):
    """Store, share, read and recall patterns."""

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
                Pattern(pattern_id=pattern_id or new_id("pat"), version=1, created_at=now, **fields),
                self.quotas.charge(caller.agent_id, "patterns"),
            )
        if pattern_id is None:
            raise InvalidInput("expected_version needs the pattern_id of the pattern to update")
        current = await self._own_pattern_for_write(caller, pattern_id)
        updated = Pattern(
            pattern_id=pattern_id, version=expected_version + 1, created_at=current.created_at, **fields
        )
        return await self.store.update_pattern(
            updated, expected_version, self.quotas.charge(caller.agent_id, "patterns")
        )

    async def _own_pattern_for_write(
        self, caller: Caller, pattern_id: str, missing_hint: str = "omit expected_version to create it"
    ) -> Pattern:
        current = await self._visible_pattern(caller, pattern_id)
        if current is not None and current.agent_id == caller.agent_id:
            return current
        if current is not None and current.visible_to(caller.agent_id):
            raise AccessDenied(
                f"pattern {pattern_id!r} belongs to agent {current.agent_id!r}; shared patterns are "
                "read-only to others: store your own pattern (omit pattern_id) instead"
            )
        raise NotFound(f"no pattern {pattern_id!r} of yours: {missing_hint}")

    async def share_pattern(self, caller: Caller, pattern_id: str, shared_with: list[str]) -> PatternResult:
        """Promote a pattern to shared (['*'] = every agent) or change who it is shared with."""
        caller.require_write("share patterns")
        current = await self._own_pattern_for_write(
            caller, pattern_id, "pass one of your pattern_ids (recall_patterns lists them)"
        )
        updated = current.model_copy(
            update={"shared_with": shared_with, "version": current.version + 1, "updated_at": self.clock()}
        )
        shared = await self.store.update_pattern(
            Pattern.model_validate(updated.model_dump()),
            current.version,
            self.quotas.charge(caller.agent_id, "patterns"),
        )
        return PatternResult(
            pattern_id=shared.pattern_id, version=shared.version, shared_with=shared.shared_with
        )

    async def get_pattern(self, caller: Caller, pattern_id: str) -> Pattern:
        pattern = await self._visible_pattern(caller, pattern_id)
        if pattern is None:
            raise NotFound(f"no pattern {pattern_id!r} visible to you")
        return pattern

    async def pattern_history(self, caller: Caller, pattern_id: str, limit: int = 20) -> list[Pattern]:
        """Versions newest first: every version to the author (and the observer); to another agent
        the pattern shared with it, its current version only. The history lives in the author's
        partition, which a reader's IAM policy does not reach; the reader's own sharing index
        carries the current version (docs/SECURITY.md, "What a reader of a shared pattern sees")."""
        pattern = await self.get_pattern(caller, pattern_id)
        if pattern.agent_id != caller.agent_id and not caller.is_observer:
            return [pattern]
        page = await self.store.pattern_history(pattern.agent_id, pattern_id, limit=limit, cursor=None)
        return page.items

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
        validated: bool = False,
    ) -> list[Pattern]:
        """Active patterns ranked by confidence: the caller's own and, if asked, those shared
        with it. With ``context``, only patterns whose every condition holds for it.

        ``validated``: ``context`` is a JSON object validated and normalised already (the
        tool's request model did it, as :func:`~agent_memory.models.bounded_json` would), so it
        is not walked again."""
        found = await self._recall(
            caller,
            context=context,
            domain=domain,
            decision_type=decision_type,
            min_confidence=min_confidence,
            include_shared=include_shared,
            limit=limit,
            agent_id=agent_id,
            validated=validated,
        )
        return [_record(f) for f in found]

    async def recall_pattern_summaries(
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
        validated: bool = False,
    ) -> list[PatternSummary]:
        """:meth:`recall_patterns` as the summaries the tool shows (``PatternSummary.of`` of each
        pattern as ``caller`` sees it), made from the stored items without building each
        :class:`Pattern` first (an item of another shape is built, so validated, as before)."""
        found = await self._recall(
            caller,
            context=context,
            domain=domain,
            decision_type=decision_type,
            min_confidence=min_confidence,
            include_shared=include_shared,
            limit=limit,
            agent_id=agent_id,
            validated=validated,
        )
        return [_summary(f, caller.agent_id) for f in found]

    async def _recall(
        self,
        caller: Caller,
        *,
        context: Mapping[str, Any] | None,
        domain: str | None,
        decision_type: str | None,
        min_confidence: float,
        include_shared: bool,
        limit: int,
        agent_id: str | None,
        validated: bool,
    ) -> list[Found]:
        owner = agent_id or caller.agent_id
        caller.require_read(owner, "patterns")
        ctx: dict[str, Any] | None
        if context is None:
            ctx = None
        elif validated and type(context) is dict:
            ctx = context
        else:
            ctx = await off_loop(bounded_json, dict(context), "context")

        def keep_item(item: dict[str, Any]) -> bool:
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
            raw = item.get("conditions") or []
            if all(type(c) is dict and "field" in c and c.keys() <= CONDITION_FIELDS for c in raw):
                # As stored (the record's fields, defaults left out): tested as they are; only the
                # patterns kept are built, their conditions with them.
                return all(condition_holds(c["field"], c.get("op", "eq"), c.get("value"), ctx) for c in raw)
            conditions = [stored(PatternCondition, c) for c in raw]
            # The item is this read's own: the record built from it takes these as they are.
            item["conditions"] = conditions
            return all(c.holds(ctx) for c in conditions)

        own = self.store.query_own_pattern_items(
            owner, min_confidence=min_confidence, limit=limit, cursor=None, keep=keep_item
        )

        def figures(f: Found) -> tuple[float, int, int, str, str]:
            """Confidence, sample size, applications, author and id: what ranks a pattern found."""
            p = f[0]
            if isinstance(p, Pattern):
                return (p.confidence, p.sample_size, p.feedback.applied_count, p.agent_id, p.pattern_id)
            return (p.confidence, p.sample_size, p.applied, p.item["agent_id"], p.item["pattern_id"])

        if not (include_shared and owner == caller.agent_id):
            mine = [_own(item) for item in (await own).items]
            by_figures = [(figures(f), f) for f in mine]
            by_figures.sort(key=lambda x: (-x[0][0], -x[0][1], x[0][4]))
            return [f for _, f in by_figures[:limit]]

        def keep_foreign(item: dict[str, Any]) -> bool:
            return item.get("agent_id") != caller.agent_id and keep_item(item)

        own_page, (named, everyone) = await self.store.together(
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
        # The entries carry the patterns' content; nothing is read from the authors' partitions
        # (a per-agent IAM policy allows this recall: docs/SCALING.md#least-privilege-and-sharing).
        mine = [_own(item) for item in own_page.items]  # (built before the entries, as they were)
        foreign: list[Found] = []
        for item in await self.store.shared_entry_items(ranked):
            seen = _foreign(item, caller.agent_id)
            if seen is not None and seen[1] is not None and seen[1].measured_confidence >= min_confidence:
                foreign.append(seen)

        def rank(f: Found) -> tuple[float, bool, int, str, str]:
            confidence, sample_size, applied, author, pattern_id = figures(f)
            evidence = f[1]
            if evidence is None:  # the caller's own: its own figures
                return (-confidence, False, -sample_size, author, pattern_id)
            # Another agent's: measured evidence only, never its stated sample size; shared with
            # the caller by name before shared with everyone.
            named = (author, pattern_id) in named_keys
            return (-evidence.measured_confidence, not named, -applied, author, pattern_id)

        found = sorted([*mine, *foreign], key=rank)
        return found[:limit]


def _own(item: dict[str, Any]) -> Found:
    """A pattern of the caller's recall from its own item (the reader's own, or the agent it reads)."""
    plain = plain_pattern(item)
    if plain is not None:
        return (plain, None)
    pattern = pattern_of(item)
    return (pattern, pattern.evidence)


def _foreign(item: dict[str, Any], reader: str) -> Found | None:
    """Another agent's pattern from ``reader``'s index entry, with its evidence; None when it is
    not active or not visible to ``reader``."""
    plain = plain_pattern(item, entry=True)
    if plain is None:
        pattern = pattern_of(item, entry=True)
        if pattern.status != "active" or not pattern.visible_to(reader):
            return None
        seen = with_evidence(pattern)
        return (seen, seen.evidence)
    shared = item.get("shared_with", ())
    visible = reader == item["agent_id"] or "*" in shared or reader in shared
    if item.get("status", "active") != "active" or not visible:
        return None
    source = item.get("source", "manual")
    evidence = measured_evidence(source, plain.confidence, plain.applied, plain.successes)
    return (plain, evidence)
