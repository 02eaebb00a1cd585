"""Decision tools that do more than forward: the metrics of new decisions and outcomes, the
history search's order flag, and the writes whose arguments their request models validated
(a decision, an outcome, a note: the records are built from them without a second validation)."""

from __future__ import annotations

from agent_memory.api import requests as rq
from agent_memory.api import results as rs
from agent_memory.memory.core import checked_record
from agent_memory.memory.identity import Caller
from agent_memory.models import Outcome
from agent_memory.tools._common import AppContext

_OUTCOME_FIELDS = tuple(rq.OutcomeArg.model_fields)


def _outcome(arg: rq.OutcomeArg) -> Outcome:
    """The outcome record of validated arguments (the request model checks them as the record
    does; ``recorded_at`` is stamped now)."""
    return checked_record(Outcome, {f: getattr(arg, f) for f in _OUTCOME_FIELDS})


async def log_decision(app: AppContext, caller: Caller, req: rq.LogDecision) -> rs.LogDecisionResult:
    decision, created = await app.memory.log_decision(
        caller,
        req.decision_type,
        context=req.context,
        reasoning=req.reasoning,
        outcome=_outcome(req.outcome) if req.outcome else None,
        decision_id=req.decision_id,
        parent_decision_id=req.parent_decision_id,
        parent_agent_id=req.parent_agent_id,
        patterns_applied=req.patterns_applied,
        memory_influenced=req.memory_influenced,
        validated=True,
    )
    if created:
        app.events.emit_decision(decision)
    return rs.LogDecisionResult.built(decision_id=decision.decision_id, created=created)


async def record_outcome(app: AppContext, caller: Caller, req: rq.RecordOutcome) -> rs.OutcomeResult:
    outcome = _outcome(req)
    decision, recorded = await app.memory.attach_outcome(caller, req.decision_id, outcome)
    if recorded:
        app.events.emit_outcome(decision.agent_id, decision.decision_type, outcome)
    return rs.OutcomeResult.built(decision_id=decision.decision_id, recorded=recorded)


async def store_stm(app: AppContext, caller: Caller, req: rq.StoreStm) -> rs.NoteResult:
    return await app.memory.store_note(caller, req.key, req.value, req.ttl_minutes, validated=True)


async def search_decisions(app: AppContext, caller: Caller, req: rq.SearchDecisions) -> rs.DecisionPage:
    fields = req.model_dump(exclude={"oldest_first"})
    return await app.memory.search_decision_summaries(caller, newest_first=not req.oldest_first, **fields)
