"""Long-term memory tools: patterns (stored by hand or learned from outcomes)."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from agent_memory.limits import MAX_TARGETS
from agent_memory.models import LearnResult as LearnResult  # re-exported: client.py imports it from here
from agent_memory.models import Pattern, PatternCondition, parse_window
from agent_memory.tools._common import READ, WRITE, WRITE_IDEMPOTENT, app, registrar, run

PatternIdArg = Annotated[
    str, Field(description="A pattern_id from store_pattern or recall_patterns.", max_length=128)
]
SharedWith = Annotated[
    list[str] | None,
    Field(
        description="Agents that may read it; ['*'] = every agent; omit or [] = private.",
        max_length=MAX_TARGETS,
    ),
]


class PatternList(BaseModel):
    patterns: list[Pattern] = Field(description="Highest confidence first.")


def register(server: MCPServer[Any], read_only: bool) -> None:
    tool = registrar(server, read_only)

    @tool(WRITE)
    async def store_pattern(
        ctx: Context[Any, Any],
        description: Annotated[
            str, Field(min_length=1, max_length=2000, description="The rule in one sentence.")
        ],
        conditions: Annotated[
            list[PatternCondition],
            Field(
                max_length=20,
                description=(
                    "When it applies: tests on a decision context, e.g. "
                    '[{"field": "market.trend", "op": "eq", "value": "bullish"}, '
                    '{"field": "whale_count", "op": "gte", "value": 5}]. ops: eq ne gt gte lt lte in exists.'
                ),
            ),
        ],
        outcomes: Annotated[dict[str, Any], Field(description="What follows when it applies (free-form).")],
        confidence: Annotated[float, Field(ge=0, le=1, description="How sure you are, in [0, 1].")],
        success_rate: Annotated[float, Field(ge=0, le=1, description="Observed success rate, in [0, 1].")],
        sample_size: Annotated[int, Field(ge=0, le=10**12, description="Observations behind it.")],
        pattern_id: Annotated[
            str | None,
            Field(
                description="Omit to create a new pattern; give it with expected_version to update.",
                max_length=128,
            ),
        ] = None,
        domain: Annotated[
            str, Field(description="Topic, e.g. 'trading' (letters, digits, '_').", max_length=64)
        ] = "general",
        decision_type: Annotated[
            str | None, Field(description="Decision type it is about.", max_length=64)
        ] = None,
        shared_with: SharedWith = None,
        expected_version: Annotated[
            int | None, Field(ge=1, description="To update: the version you read; a stale one is refused.")
        ] = None,
    ) -> Pattern:
        """Store a learned rule (long-term memory), or a new version of one of yours.

        Create: omit expected_version. Update: pass pattern_id and the expected_version you read;
        every version is kept. learn_patterns finds patterns from outcomes automatically.
        """

        async def body(caller: Any) -> Pattern:
            return await app(ctx).memory.store_pattern(
                caller,
                description=description,
                conditions=conditions,
                outcomes=outcomes,
                confidence=confidence,
                success_rate=success_rate,
                sample_size=sample_size,
                pattern_id=pattern_id,
                domain=domain,
                decision_type=decision_type,
                shared_with=shared_with,
                expected_version=expected_version,
            )

        return await run(ctx, "store_pattern", body)

    @tool(READ)
    async def recall_patterns(
        ctx: Context[Any, Any],
        context: Annotated[
            dict[str, Any] | None,
            Field(description="Your current situation: only patterns whose conditions all hold for it."),
        ] = None,
        domain: Annotated[str | None, Field(description="Only this domain.", max_length=64)] = None,
        decision_type: Annotated[
            str | None, Field(description="Only patterns about this type.", max_length=64)
        ] = None,
        min_confidence: Annotated[float, Field(ge=0, le=1, description="Lowest confidence returned.")] = 0.0,
        include_shared: Annotated[
            bool, Field(description="Also patterns other agents shared with you.")
        ] = True,
        limit: Annotated[int, Field(ge=1, le=50, description="Most results to return (1-50).")] = 10,
    ) -> PatternList:
        """Recall active patterns, highest confidence first: yours and those shared with you.

        Pass your current context to get only the patterns that apply now; cite the ones you
        use in log_decision(patterns_applied=[...]) so their effectiveness is tracked.
        """

        async def body(caller: Any) -> PatternList:
            found = await app(ctx).memory.recall_patterns(
                caller,
                context=context,
                domain=domain,
                decision_type=decision_type,
                min_confidence=min_confidence,
                include_shared=include_shared,
                limit=limit,
            )
            return PatternList(patterns=found)

        return await run(ctx, "recall_patterns", body)

    @tool(WRITE_IDEMPOTENT)
    async def share_pattern(
        ctx: Context[Any, Any],
        pattern_id: PatternIdArg,
        shared_with: Annotated[
            list[str],
            Field(
                max_length=MAX_TARGETS, description="['*'] = every agent; a list of agent ids; [] = private."
            ),
        ],
    ) -> Pattern:
        """Share one of your patterns (as a new version). Others can read it, not change it."""

        async def body(caller: Any) -> Pattern:
            return await app(ctx).memory.share_pattern(caller, pattern_id, shared_with)

        return await run(ctx, "share_pattern", body)

    @tool(READ)
    async def pattern_history(
        ctx: Context[Any, Any],
        pattern_id: PatternIdArg,
        limit: Annotated[int, Field(ge=1, le=50, description="Most results to return (1-50).")] = 10,
    ) -> PatternList:
        """Earlier versions of a pattern visible to you, newest first: how it evolved."""

        async def body(caller: Any) -> PatternList:
            return PatternList(patterns=await app(ctx).memory.pattern_history(caller, pattern_id, limit))

        return await run(ctx, "pattern_history", body)

    @tool(WRITE_IDEMPOTENT)
    async def learn_patterns(
        ctx: Context[Any, Any],
        decision_type: Annotated[
            str | None, Field(description="Only this decision type (default: each).", max_length=64)
        ] = None,
        window: Annotated[
            str, Field(description="How far back to look: '7d', '24h', '30d'.", max_length=10)
        ] = "7d",
        min_samples: Annotated[
            int, Field(ge=5, le=100_000, description="Fewest decisions behind a pattern.")
        ] = 20,
    ) -> LearnResult:
        """Mine your decisions with outcomes for context conditions that predict success, and
        store what is significant as learned patterns (new versions when statistics change).

        Safe to repeat: an unchanged result changes nothing.
        """

        async def body(caller: Any) -> LearnResult:
            learner = app(ctx).services["learner"]
            result: LearnResult = await learner.learn(
                caller, decision_type=decision_type, window=parse_window(window), min_samples=min_samples
            )
            return result

        return await run(ctx, "learn_patterns", body)
