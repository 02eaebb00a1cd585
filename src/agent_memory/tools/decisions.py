"""Decision log and short-term memory tools."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from agent_memory.models import Decision, Note, Outcome, Timestamp
from agent_memory.tools._common import READ, WRITE_IDEMPOTENT, app, registrar, run

DecisionType = Annotated[
    str,
    Field(
        description="Kind of decision, e.g. SOURCE_SELECTION, RISK_ASSESSMENT (letters, digits, '_').",
        min_length=1,
        max_length=64,
    ),
]
DecisionIdArg = Annotated[str, Field(description="A decision_id returned by log_decision.", max_length=128)]
Limit = Annotated[int, Field(ge=1, le=50, description="Page size (1-50).")]
CursorArg = Annotated[
    str | None,
    Field(description="next_cursor from the previous page; omit for the first page.", max_length=2000),
]


class OutcomeInput(BaseModel):
    success: bool = Field(description="Whether the decision achieved its goal.")
    quality_score: float | None = Field(None, ge=0, le=1, description="Quality of the result in [0, 1].")
    latency_ms: float | None = Field(
        None, ge=0, le=86_400_000, description="How long it took to pay off (ms)."
    )
    signals_generated: int = Field(
        0, ge=0, le=1_000_000, description="Signals the decision led to publishing."
    )
    errors: list[str] = Field(default_factory=list, max_length=50, description="Errors met, if any.")

    def to_outcome(self) -> Outcome:
        return Outcome(**self.model_dump())


class LogDecisionResult(BaseModel):
    decision: Decision
    created: bool = Field(
        description="False when this decision_id was already logged (a retry): nothing changed."
    )


class OutcomeResult(BaseModel):
    decision: Decision
    recorded: bool = Field(description="False when the same outcome was already recorded (a retry).")


class ShortTermResult(BaseModel):
    window_hours: int
    decisions: list[Decision] = Field(description="Your decisions in the window, newest first.")
    next_cursor: str | None = Field(None, description="Pass as cursor for older decisions in the window.")
    notes: list[Note] = Field(description="Your live short-term notes (store_stm).")
    notes_truncated: bool
    pending_signals: int = Field(description="Signals waiting in your inbox (read_inbox).")
    pending_signals_capped: bool = Field(
        description="True when there are at least this many (count stops at 100)."
    )


class DecisionPage(BaseModel):
    decisions: list[Decision]
    next_cursor: str | None = None


def register(server: MCPServer[Any], read_only: bool) -> None:
    tool = registrar(server, read_only)

    @tool(WRITE_IDEMPOTENT)
    async def log_decision(
        ctx: Context[Any, Any],
        decision_type: DecisionType,
        context: Annotated[
            dict[str, Any] | None, Field(description="What you knew when deciding (market, cycle, inputs).")
        ] = None,
        reasoning: Annotated[
            dict[str, Any] | None,
            Field(description="Why you decided so: scores, alternatives, what you chose."),
        ] = None,
        outcome: Annotated[
            OutcomeInput | None,
            Field(description="The outcome, if already known; else use record_outcome later."),
        ] = None,
        decision_id: Annotated[
            str | None,
            Field(
                description="Your own id for the decision; makes retries safe (same id = same decision).",
                max_length=128,
            ),
        ] = None,
        parent_decision_id: Annotated[
            str | None,
            Field(description="The decision this one follows from (decision chains).", max_length=128),
        ] = None,
        patterns_applied: Annotated[
            list[str] | None,
            Field(description="pattern_ids from recall_patterns that shaped this decision.", max_length=10),
        ] = None,
        memory_influenced: Annotated[
            bool | None,
            Field(description="Whether recalled memory shaped it; defaults to bool(patterns_applied)."),
        ] = None,
    ) -> LogDecisionResult:
        """Log one of your decisions with its context and reasoning (and outcome, if known).

        Use for every decision worth learning from. Keep the returned decision_id and call
        record_outcome when the result is known. Retrying with the same decision_id is safe.
        """

        async def body(caller: Any) -> LogDecisionResult:
            decision, created = await app(ctx).memory.log_decision(
                caller,
                decision_type,
                context=context,
                reasoning=reasoning,
                outcome=outcome.to_outcome() if outcome else None,
                decision_id=decision_id,
                parent_decision_id=parent_decision_id,
                patterns_applied=patterns_applied,
                memory_influenced=memory_influenced,
            )
            metrics = app(ctx).services.get("metrics")
            if metrics is not None and created:
                metrics.emit_decision(decision)
            return LogDecisionResult(decision=decision, created=created)

        return await run(ctx, "log_decision", body)

    @tool(WRITE_IDEMPOTENT)
    async def record_outcome(
        ctx: Context[Any, Any],
        decision_id: DecisionIdArg,
        success: Annotated[bool, Field(description="Whether the decision achieved its goal.")],
        quality_score: Annotated[float | None, Field(ge=0, le=1, description="Quality in [0, 1].")] = None,
        latency_ms: Annotated[
            float | None, Field(ge=0, le=86_400_000, description="Time until the result (ms).")
        ] = None,
        signals_generated: Annotated[
            int, Field(ge=0, le=1_000_000, description="Signals the decision led to publishing.")
        ] = 0,
        errors: Annotated[list[str] | None, Field(max_length=50, description="Errors met, if any.")] = None,
    ) -> OutcomeResult:
        """Attach the outcome to one of your logged decisions (once).

        Outcomes feed analytics and pattern learning. Recording the same outcome again is a
        no-op; a different one is refused (log a follow-up decision instead).
        """

        async def body(caller: Any) -> OutcomeResult:
            outcome = Outcome(
                success=success,
                quality_score=quality_score,
                latency_ms=latency_ms,
                signals_generated=signals_generated,
                errors=errors or [],
            )
            decision, recorded = await app(ctx).memory.record_outcome(caller, decision_id, outcome)
            metrics = app(ctx).services.get("metrics")
            if metrics is not None and recorded:
                metrics.emit_outcome(decision.agent_id, decision.decision_type, outcome)
            return OutcomeResult(decision=decision, recorded=recorded)

        return await run(ctx, "record_outcome", body)

    @tool(READ)
    async def recall_stm(
        ctx: Context[Any, Any],
        decision_type: Annotated[
            str | None, Field(description="Only decisions of this type.", max_length=64)
        ] = None,
        limit: Limit = 10,
        cursor: CursorArg = None,
    ) -> ShortTermResult:
        """Your short-term memory: decisions of the last 24 h (newest first), your live notes,
        and how many signals wait in your inbox. Call at the start of each cycle.

        For older history use search_decisions; for learned rules use recall_patterns.
        """

        async def body(caller: Any) -> ShortTermResult:
            stm = await app(ctx).memory.recall_stm(caller, decision_type, limit, cursor)
            return ShortTermResult(
                window_hours=stm.window_hours,
                decisions=stm.decisions.items,
                next_cursor=stm.decisions.next_cursor,
                notes=stm.notes,
                notes_truncated=stm.notes_truncated,
                pending_signals=stm.pending_signals,
                pending_signals_capped=stm.pending_signals_capped,
            )

        return await run(ctx, "recall_stm", body)

    @tool(WRITE_IDEMPOTENT)
    async def store_stm(
        ctx: Context[Any, Any],
        key: Annotated[
            str, Field(description="Note name, e.g. 'recent_queries' or 'context/market'.", max_length=128)
        ],
        value: Annotated[Any, Field(description="Any JSON value (at most 64 KiB).")],
        ttl_minutes: Annotated[
            int | None,
            Field(ge=1, le=1440, description="Lifetime in minutes (default and maximum 1440 = 24 h)."),
        ] = None,
    ) -> Note:
        """Keep a short-term working note (at most 24 h); the same key overwrites the note.

        For facts worth keeping longer, store a pattern or log a decision instead.
        """

        async def body(caller: Any) -> Note:
            return await app(ctx).memory.store_note(caller, key, value, ttl_minutes)

        return await run(ctx, "store_stm", body)

    @tool(READ)
    async def search_decisions(
        ctx: Context[Any, Any],
        decision_type: Annotated[str | None, Field(description="Only this type.", max_length=64)] = None,
        since: Annotated[
            Timestamp | None, Field(description="ISO 8601 time with zone, e.g. 2026-11-01T00:00:00Z.")
        ] = None,
        until: Annotated[Timestamp | None, Field(description="ISO 8601 time with zone.")] = None,
        success: Annotated[bool | None, Field(description="Only decisions whose outcome was this.")] = None,
        agent_id: Annotated[
            str | None,
            Field(description="Another agent's history (observer role only). Omit for yours.", max_length=64),
        ] = None,
        all_agents: Annotated[
            bool, Field(description="Across all agents (observer role; needs decision_type).")
        ] = False,
        oldest_first: Annotated[bool, Field(description="Oldest first instead of newest first.")] = False,
        limit: Limit = 20,
        cursor: CursorArg = None,
    ) -> DecisionPage:
        """Search decision history of any age within retention (the long-term side).

        Use for 'what did I decide last week about X'; recall_stm is cheaper for the last 24 h.
        """

        async def body(caller: Any) -> DecisionPage:
            page = await app(ctx).memory.search_decisions(
                caller,
                agent_id=agent_id,
                decision_type=decision_type,
                since=since,
                until=until,
                success=success,
                all_agents=all_agents,
                newest_first=not oldest_first,
                limit=limit,
                cursor=cursor,
            )
            return DecisionPage(decisions=page.items, next_cursor=page.next_cursor)

        return await run(ctx, "search_decisions", body)
