"""Long-term memory tools: patterns (stored by hand or learned from outcomes)."""

from __future__ import annotations

from typing import Any

from agent_memory.api import requests as rq
from agent_memory.api import results as rs
from agent_memory.memory.identity import Caller
from agent_memory.models import parse_window
from agent_memory.tools._common import AppContext, Handler


async def store_pattern(app: AppContext, caller: Caller, req: rq.StorePattern) -> rs.PatternResult:
    pattern = await app.memory.store_pattern(
        caller,
        description=req.description,
        conditions=req.conditions,
        outcomes=req.outcomes,
        confidence=req.confidence,
        success_rate=req.success_rate,
        sample_size=req.sample_size,
        pattern_id=req.pattern_id,
        domain=req.domain,
        decision_type=req.decision_type,
        shared_with=req.shared_with,
        expected_version=req.expected_version,
    )
    return rs.PatternResult(pattern_id=pattern.pattern_id, version=pattern.version)


async def recall_patterns(app: AppContext, caller: Caller, req: rq.RecallPatterns) -> rs.PatternList:
    found = await app.memory.recall_patterns(
        caller,
        context=req.context,
        domain=req.domain,
        decision_type=req.decision_type,
        min_confidence=req.min_confidence,
        include_shared=req.include_shared,
        limit=req.limit,
    )
    return rs.PatternList(patterns=[rs.PatternSummary.of(p, caller.agent_id) for p in found])


async def share_pattern(app: AppContext, caller: Caller, req: rq.SharePattern) -> rs.PatternResult:
    pattern = await app.memory.share_pattern(caller, req.pattern_id, req.shared_with)
    return rs.PatternResult(
        pattern_id=pattern.pattern_id, version=pattern.version, shared_with=pattern.shared_with
    )


async def pattern_history(app: AppContext, caller: Caller, req: rq.PatternHistory) -> rs.PatternList:
    found = await app.memory.pattern_history(caller, req.pattern_id, req.limit)
    return rs.PatternList(patterns=[rs.PatternSummary.of(p, caller.agent_id) for p in found])


async def learn_patterns(app: AppContext, caller: Caller, req: rq.LearnPatterns) -> rs.LearnResult:
    result = await app.learner.learn(
        caller, decision_type=req.decision_type, window=parse_window(req.window), min_samples=req.min_samples
    )
    best = sorted([*result.created, *result.updated], key=lambda p: (-p.confidence, p.pattern_id))
    return rs.LearnResult(
        decisions_examined=result.decisions_examined,
        baseline_success_rate=result.baseline_success_rate,
        created=len(result.created),
        updated=len(result.updated),
        unchanged=result.unchanged,
        superseded=len(result.superseded),
        top_pattern_ids=[p.pattern_id for p in best[: rs.TOP_IDS]],
        note=result.note,
    )


HANDLERS: dict[str, Handler[Any]] = {
    "store_pattern": store_pattern,
    "recall_patterns": recall_patterns,
    "share_pattern": share_pattern,
    "pattern_history": pattern_history,
    "learn_patterns": learn_patterns,
}
