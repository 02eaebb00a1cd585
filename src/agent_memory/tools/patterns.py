"""Pattern tools that do more than forward: learning, which runs the learner over the outcomes."""

from __future__ import annotations

from agent_memory.api import requests as rq
from agent_memory.api import results as rs
from agent_memory.memory.identity import Caller
from agent_memory.models import parse_window
from agent_memory.tools._common import AppContext


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
