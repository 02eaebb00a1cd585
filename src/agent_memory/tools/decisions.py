"""Decision log and short-term memory tools: arguments in, a domain service call, a compact result."""

from __future__ import annotations

from typing import Any

from agent_memory.api import requests as rq
from agent_memory.api import results as rs
from agent_memory.memory.identity import Caller
from agent_memory.models import Outcome
from agent_memory.tools._common import AppContext, Handler


def _outcome(arg: rq.OutcomeArg) -> Outcome:
    return Outcome(**arg.model_dump(include=set(rq.OutcomeArg.model_fields)))


async def log_decision(app: AppContext, caller: Caller, req: rq.LogDecision) -> rs.LogDecisionResult:
    decision, created = await app.memory.log_decision(
        caller,
        req.decision_type,
        context=req.context,
        reasoning=req.reasoning,
        outcome=_outcome(req.outcome) if req.outcome else None,
        decision_id=req.decision_id,
        parent_decision_id=req.parent_decision_id,
        patterns_applied=req.patterns_applied,
        memory_influenced=req.memory_influenced,
    )
    if created:
        app.events.emit_decision(decision)
    return rs.LogDecisionResult(decision_id=decision.decision_id, created=created)


async def record_outcome(app: AppContext, caller: Caller, req: rq.RecordOutcome) -> rs.OutcomeResult:
    outcome = _outcome(req)
    decision, recorded = await app.memory.record_outcome(caller, req.decision_id, outcome)
    if recorded:
        app.events.emit_outcome(decision.agent_id, decision.decision_type, outcome)
    return rs.OutcomeResult(decision_id=decision.decision_id, recorded=recorded)


async def recall_stm(app: AppContext, caller: Caller, req: rq.RecallStm) -> rs.ShortTermResult:
    return await app.memory.recall_stm(caller, req.decision_type, req.limit, req.cursor)


async def store_stm(app: AppContext, caller: Caller, req: rq.StoreStm) -> rs.NoteResult:
    note = await app.memory.store_note(caller, req.key, req.value, req.ttl_minutes)
    return rs.NoteResult(key=note.key, expires_at=note.expires_at)


async def search_decisions(app: AppContext, caller: Caller, req: rq.SearchDecisions) -> rs.DecisionPage:
    page = await app.memory.search_decisions(
        caller,
        agent_id=req.agent_id,
        decision_type=req.decision_type,
        since=req.since,
        until=req.until,
        success=req.success,
        all_agents=req.all_agents,
        newest_first=not req.oldest_first,
        limit=req.limit,
        cursor=req.cursor,
    )
    return rs.DecisionPage(
        decisions=[rs.DecisionSummary.of(d, caller.agent_id) for d in page.items],
        next_cursor=page.next_cursor,
    )


HANDLERS: dict[str, Handler[Any]] = {
    "log_decision": log_decision,
    "record_outcome": record_outcome,
    "recall_stm": recall_stm,
    "store_stm": store_stm,
    "search_decisions": search_decisions,
}
