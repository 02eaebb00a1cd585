"""Consolidation: turn decision outcomes into long-term patterns (STM -> LTM promotion).

For one agent and one decision type, the learner reads the decisions with outcomes in a window,
mines context conditions that predict success (:mod:`mining`: Fisher test against the complement,
Benjamini-Hochberg false-discovery control, Wilson lower bound as confidence) and reconciles them
with the agent's learned patterns:

- a new rule becomes a pattern whose id is derived from (agent, type, conditions), so the same rule
  always maps to the same pattern: running twice creates nothing twice;
- a known rule whose statistics changed gets a new version (history kept); unchanged -> untouched;
- a learned pattern that the window tests (at least ``min_samples`` matching decisions) but no
  longer finds significant is marked ``decayed``; one whose conditions a stronger new rule refines
  is marked ``superseded`` (with ``superseded_by``). Nothing is ever deleted;
- any pattern of the agent applied at least ``min_samples`` times whose success when applied has a
  Wilson upper bound below its stated confidence is marked ``decayed`` too (it stopped holding).

Every write is a versioned update, so agents may write concurrently; a crash leaves a consistent
state and the next run completes the work (it is idempotent).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from agent_memory.config import Settings
from agent_memory.errors import VersionConflict
from agent_memory.memory.identity import Caller
from agent_memory.memory.mining import MinedRule, Observation, mine_rules
from agent_memory.memory.service import LEARNED_PREFIX, Memory
from agent_memory.memory.stats import wilson_interval
from agent_memory.models import Decision, LearnResult, Pattern, PatternCondition, parse_window
from agent_memory.storage.store import DecisionQuery, MemoryStore

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], Awaitable[None]]
"""``progress(done, total, label)``: awaited as learning advances."""

REQUEST_PROGRESS: ContextVar[Progress | None] = ContextVar("agent_memory_request_progress", default=None)
"""The progress reporter of the request being served, if its client asked for progress (set by the
server, see server/client_log.py): learning reports to it when no ``progress`` is passed."""

MAX_DECISIONS = 200_000
"""Most decisions one learning run reads for one agent (the newest in the window)."""


@dataclass
class TypeResult:
    decision_type: str
    decisions_examined: int
    baseline_success_rate: float | None
    created: list[Pattern] = field(default_factory=list)
    updated: list[Pattern] = field(default_factory=list)
    unchanged: int = 0
    superseded: list[str] = field(default_factory=list)


def learned_pattern_id(agent: str, decision_type: str, conditions: Sequence[PatternCondition]) -> str:
    """The same rule always maps to the same pattern id: what makes learning idempotent."""
    canon = json.dumps(
        [
            agent,
            decision_type,
            sorted([c.field, c.op, json.dumps(c.value, sort_keys=True)] for c in conditions),
        ]
    )
    return LEARNED_PREFIX + hashlib.sha256(canon.encode()).hexdigest()[:20]


def _storable(p: float) -> float:
    return max(float(f"{p:.6g}"), 1e-130)


def _stats(rule: MinedRule, window: timedelta) -> dict[str, Any]:
    return {
        "n": rule.n,
        "successes": rule.successes,
        "upper": round(rule.upper, 6),
        "baseline_rate": round(rule.baseline_rate, 6),
        "lift": round(rule.lift, 6),
        # Strong rules over many decisions have p-values below the smallest storable number
        # (1e-130, DynamoDB's limit): store that bound instead (the true value is smaller).
        "p_value": _storable(rule.p_value),
        "q_value": _storable(rule.q_value),
        "window_hours": int(window.total_seconds() // 3600),
    }


class Learner:
    def __init__(self, store: MemoryStore, settings: Settings, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.memory = Memory(store, settings, clock)

    async def _decisions(self, agent: str, decision_type: str | None, since: datetime) -> list[Decision]:
        out: list[Decision] = []
        cursor: str | None = None
        while len(out) < MAX_DECISIONS:
            page = await self.store.query_decisions(
                DecisionQuery(agent, decision_type=decision_type, since=since), limit=500, cursor=cursor
            )
            out.extend(d for d in page.items if d.outcome is not None)
            if (cursor := page.next_cursor) is None:
                break
        return out

    async def learn(
        self,
        caller: Caller,
        *,
        decision_type: str | None = None,
        window: timedelta = timedelta(days=7),
        min_samples: int = 20,
        progress: Progress | None = None,
    ) -> LearnResult:
        caller.require_write("learn patterns")
        results = await self.learn_types(
            caller, decision_type=decision_type, window=window, min_samples=min_samples, progress=progress
        )
        examined = sum(r.decisions_examined for r in results)
        successes = sum(
            (r.baseline_success_rate or 0) * r.decisions_examined for r in results if r.baseline_success_rate
        )
        created = [p for r in results for p in r.created]
        updated = [p for r in results for p in r.updated]
        log.info(
            "learn_patterns for %s: %d decisions examined, %d patterns created, %d updated",
            caller.agent_id,
            examined,
            len(created),
            len(updated),
        )
        return LearnResult(
            decisions_examined=examined,
            baseline_success_rate=round(successes / examined, 6) if examined else None,
            created=created,
            updated=updated,
            unchanged=sum(r.unchanged for r in results),
            superseded=[p for r in results for p in r.superseded],
            note=(
                "confidence = 95% Wilson lower bound of the success rate where the conditions hold; "
                "only rules that beat the rest of the decisions with false-discovery rate <= 5% are kept"
                if examined
                else "no decisions with outcomes in the window: record_outcome first"
            ),
        )

    async def learn_types(
        self,
        caller: Caller,
        *,
        decision_type: str | None = None,
        window: timedelta = timedelta(days=7),
        min_samples: int = 20,
        progress: Progress | None = None,
    ) -> list[TypeResult]:
        """Learn for each decision type; ``progress(done, total, decision_type)`` is awaited after
        each type (the learn_patterns tool turns it into MCP progress notifications)."""
        progress = progress or REQUEST_PROGRESS.get()
        since = self.clock() - window
        decisions = await self._decisions(caller.agent_id, decision_type, since)
        by_type: dict[str, list[Decision]] = defaultdict(list)
        for d in decisions:
            by_type[d.decision_type].append(d)
        results = []
        for done, name in enumerate(sorted(by_type), 1):
            results.append(await self._learn_type(caller, name, by_type[name], window, min_samples))
            if progress is not None:
                await progress(done, len(by_type), name)
        await self._decay_by_feedback(caller, min_samples)
        return results

    async def _learned_patterns(self, agent: str, decision_type: str) -> list[Pattern]:
        out: list[Pattern] = []
        cursor: str | None = None
        while True:
            page = await self.store.list_patterns(agent, limit=200, cursor=cursor)
            out.extend(p for p in page.items if p.source == "learned" and p.decision_type == decision_type)
            if (cursor := page.next_cursor) is None:
                return out

    async def _learn_type(
        self,
        caller: Caller,
        decision_type: str,
        decisions: list[Decision],
        window: timedelta,
        min_samples: int,
    ) -> TypeResult:
        assert all(d.outcome is not None for d in decisions)
        observations = [Observation(d.context, bool(d.outcome and d.outcome.success)) for d in decisions]
        n = len(observations)
        result = TypeResult(decision_type, n, sum(o.success for o in observations) / n if n else None)
        # Mining is CPU work proportional to the decisions read: off the event loop, so that other
        # agents' calls keep being answered while it runs.
        rules: list[MinedRule] = []
        if n >= min_samples:
            rules = await asyncio.to_thread(mine_rules, observations, min_samples=min_samples)
        # A pattern worth recalling is confidently better than average, not just detectably so:
        # its Wilson lower bound must clear the baseline success rate.
        rules = [r for r in rules if r.confidence > r.baseline_rate]
        known = {p.pattern_id: p for p in await self._learned_patterns(caller.agent_id, decision_type)}
        found: dict[str, MinedRule] = {}
        for rule in rules:
            pid = learned_pattern_id(caller.agent_id, decision_type, rule.conditions)
            found[pid] = rule
            current = known.get(pid)
            stats = _stats(rule, window)
            fields: dict[str, Any] = dict(
                description=f"{decision_type} succeeds more often when {rule.description()} "
                f"({rule.success_rate:.0%} vs {rule.baseline_rate:.0%} overall, n={rule.n})",
                conditions=list(rule.conditions),
                outcomes={
                    "success_rate": round(rule.success_rate, 6),
                    "baseline_rate": round(rule.baseline_rate, 6),
                },
                confidence=round(rule.confidence, 6),
                success_rate=round(rule.success_rate, 6),
                sample_size=rule.n,
                pattern_id=pid,
                domain=current.domain if current else "learned",
                decision_type=decision_type,
                shared_with=current.shared_with if current else [],
                source="learned",
                stats=stats,
            )
            if current is None:
                result.created.append(await self.memory.store_pattern(caller, **fields))
            elif (
                current.status != "active"
                or current.sample_size != rule.n
                or current.stats.get("successes") != rule.successes
            ):
                result.updated.append(await self._versioned(caller, current, fields))
            else:
                result.unchanged += 1
        # Learned patterns of this type the window tested but no longer supports.
        for pid, pattern in known.items():
            if pid in found or pattern.status != "active":
                continue
            support = [o for o in observations if pattern.matches(dict(o.context))]
            if len(support) < min_samples:
                continue  # not enough evidence either way in this window: leave it be
            successes = sum(o.success for o in support)
            refined_by = next(
                (
                    new_id
                    for new_id, rule in found.items()
                    if {c.field for c in pattern.conditions} < {c.field for c in rule.conditions}
                    and rule.confidence > pattern.confidence
                ),
                None,
            )
            status: Literal["superseded", "decayed"] = "superseded" if refined_by else "decayed"
            lo, hi = wilson_interval(successes, len(support))
            fields = dict(
                description=pattern.description,
                conditions=pattern.conditions,
                outcomes=pattern.outcomes,
                confidence=round(lo, 6),
                success_rate=round(successes / len(support), 6),
                sample_size=len(support),
                pattern_id=pid,
                domain=pattern.domain,
                decision_type=decision_type,
                shared_with=pattern.shared_with,
                source="learned",
                status=status,
                superseded_by=refined_by,
                stats={**pattern.stats, "n": len(support), "successes": successes, "upper": round(hi, 6)},
            )
            await self._versioned(caller, pattern, fields)
            result.superseded.append(pid)
        return result

    async def _versioned(self, caller: Caller, current: Pattern, fields: dict[str, Any]) -> Pattern:
        """Store a new version; if an agent changed the pattern meanwhile, re-read once and retry
        (keeping the sharing the author chose)."""
        for _ in range(3):
            try:
                return await self.memory.store_pattern(caller, expected_version=current.version, **fields)
            except VersionConflict as exc:
                fresh = exc.current
                if not isinstance(fresh, Pattern):
                    raise
                current = fresh
                fields["shared_with"] = fresh.shared_with
        return await self.memory.store_pattern(caller, expected_version=current.version, **fields)

    async def _decay_by_feedback(self, caller: Caller, min_samples: int) -> None:
        cursor: str | None = None
        while True:
            page = await self.store.list_patterns(caller.agent_id, limit=200, cursor=cursor)
            for p in page.items:
                fb = p.feedback
                # Only the author's own outcomes count here: what other agents report is evidence
                # shown to readers, never a lever to retire someone else's pattern (issue #12).
                if p.status != "active" or fb.author_applied_count < min_samples:
                    continue
                _, hi = wilson_interval(fb.author_applied_successes, fb.author_applied_count)
                if hi < p.confidence:
                    fields = p.model_dump(
                        include={
                            "description",
                            "conditions",
                            "outcomes",
                            "confidence",
                            "success_rate",
                            "sample_size",
                            "pattern_id",
                            "domain",
                            "decision_type",
                            "shared_with",
                            "source",
                        }
                    )
                    fields["conditions"] = p.conditions
                    fields["status"] = "decayed"
                    fields["stats"] = {**p.stats, "applied_upper": round(hi, 6), "decayed_by": "feedback"}
                    await self._versioned(caller, p, fields)
            if (cursor := page.next_cursor) is None:
                return


# --------------------------------------------------------------------------------------------------
# consolidation job (CLI and AWS Lambda)
# --------------------------------------------------------------------------------------------------


async def consolidate(
    store: MemoryStore,
    settings: Settings,
    clock: Callable[[], datetime],
    *,
    agents: Sequence[str] | None,
    window: timedelta,
    decision_type: str | None = None,
    min_samples: int = 20,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict[str, Any]:
    """Learn for each agent (default: every registered agent). Idempotent and resumable."""
    learner = Learner(store, settings, clock)
    if agents is None:
        names = [p.agent_id for p in await store.all_agents() if p.role == "agent"]
    else:
        names = list(agents)
    summary: dict[str, Any] = {"agents": {}, "window_hours": int(window.total_seconds() // 3600)}
    for i, agent in enumerate(names):
        if progress:
            progress(i, len(names), agent)
        try:
            results = await learner.learn_types(
                Caller(agent), decision_type=decision_type, window=window, min_samples=min_samples
            )
        except Exception as exc:
            # One agent's failure (a squatted id, a bad record) must not stop the others' learning:
            # report it in the summary and in the log, and go on.
            log.exception("consolidation failed for agent %s", agent)
            summary.setdefault("failed", {})[agent] = f"{type(exc).__name__}: {str(exc)[:300]}"
            continue
        summary["agents"][agent] = {
            r.decision_type: {
                "decisions": r.decisions_examined,
                "created": [p.pattern_id for p in r.created],
                "updated": [p.pattern_id for p in r.updated],
                "unchanged": r.unchanged,
                "retired": r.superseded,
            }
            for r in results
        }
    if progress:
        progress(len(names), len(names), "done")
    return summary


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """AWS Lambda entry point for a scheduled consolidation (EventBridge rule).

    Event (all optional): {"agents": [...], "window": "7d", "decision_type": "...", "min_samples": 20}.
    Settings come from the function's AGENT_MEMORY_* environment (backend=dynamodb).
    """
    import asyncio

    from agent_memory.models import utcnow
    from agent_memory.storage.factory import open_store

    settings = Settings()

    async def run() -> dict[str, Any]:
        async with open_store(settings) as store:
            return await consolidate(
                store,
                settings,
                utcnow,
                agents=event.get("agents"),
                window=parse_window(event.get("window", "7d")),
                decision_type=event.get("decision_type"),
                min_samples=int(event.get("min_samples", 20)),
            )

    return asyncio.run(run())
