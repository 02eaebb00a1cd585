"""Signals between agents: publish to targets, read your inbox, acknowledge."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from agent_memory.limits import MAX_SIGNAL_TTL_HOURS, MAX_TARGETS
from agent_memory.models import Delivery, InboxEntry, Severity, Signal
from agent_memory.tools._common import READ, WRITE_IDEMPOTENT, app, registrar, run


class PublishResult(BaseModel):
    signal: Signal
    created: bool = Field(description="False when this signal_id was already published (a retry).")
    unregistered_targets: list[str] = Field(
        description="Targets never seen by this memory yet: check the spelling (they still get the signal)."
    )


class InboxPage(BaseModel):
    entries: list[InboxEntry] = Field(description="Newest first.")
    next_cursor: str | None = None


class AckResult(BaseModel):
    signal_id: str
    delivery: Delivery
    acknowledged: bool = Field(description="False when you had already acknowledged it the same way.")


def register(server: MCPServer[Any], read_only: bool) -> None:
    tool = registrar(server, read_only)

    @tool(WRITE_IDEMPOTENT)
    async def publish_signal(
        ctx: Context[Any, Any],
        signal_type: Annotated[
            str, Field(description="e.g. WHALE_ACTIVITY (letters, digits, '_').", max_length=64)
        ],
        data: Annotated[dict[str, Any], Field(description="The signal's payload.")],
        target_agents: Annotated[
            list[str],
            Field(
                min_length=1,
                max_length=MAX_TARGETS,
                description="Agent ids to notify, or ['*'] for every registered agent.",
            ),
        ],
        confidence: Annotated[float, Field(ge=0, le=1, description="How sure you are, in [0, 1].")],
        severity: Annotated[Severity, Field(description="low | medium | high | critical")] = "medium",
        recommended_action: Annotated[
            str | None, Field(max_length=500, description="e.g. MONITOR_CLOSELY.")
        ] = None,
        context: Annotated[dict[str, Any] | None, Field(description="Situation the signal arose in.")] = None,
        ttl_hours: Annotated[
            float | None, Field(gt=0, le=MAX_SIGNAL_TTL_HOURS, description="Lifetime (default 24 h).")
        ] = None,
        signal_id: Annotated[
            str | None, Field(description="Your own id; makes retries safe.", max_length=128)
        ] = None,
    ) -> PublishResult:
        """Send a signal to other agents' inboxes (all targets or none). Retrying with the same
        signal_id is safe. Targets see it with read_inbox and acknowledge with ack_signal."""

        async def body(caller: Any) -> PublishResult:
            result = await app(ctx).memory.publish_signal(
                caller,
                signal_type=signal_type,
                data=data,
                target_agents=target_agents,
                confidence=confidence,
                severity=severity,
                recommended_action=recommended_action,
                context=context,
                ttl_hours=ttl_hours,
                signal_id=signal_id,
            )
            return PublishResult(
                signal=result.signal, created=result.created, unregistered_targets=result.unregistered_targets
            )

        return await run(ctx, "publish_signal", body)

    @tool(READ)
    async def read_inbox(
        ctx: Context[Any, Any],
        status: Annotated[
            Literal["pending", "processed", "rejected"],
            Field(description="Which deliveries (default pending)."),
        ] = "pending",
        signal_type: Annotated[str | None, Field(description="Only this type.", max_length=64)] = None,
        limit: Annotated[int, Field(ge=1, le=50, description="Most results to return (1-50).")] = 10,
        cursor: Annotated[
            str | None, Field(max_length=2000, description="next_cursor of the previous page.")
        ] = None,
    ) -> InboxPage:
        """Signals other agents sent you that have not expired, newest first (pending by default).
        Acknowledge each with ack_signal once you have acted on it."""

        async def body(caller: Any) -> InboxPage:
            page = await app(ctx).memory.read_inbox(caller, status, signal_type, limit, cursor)
            return InboxPage(entries=page.items, next_cursor=page.next_cursor)

        return await run(ctx, "read_inbox", body)

    @tool(WRITE_IDEMPOTENT)
    async def ack_signal(
        ctx: Context[Any, Any],
        signal_id: Annotated[str, Field(description="signal_id from read_inbox.", max_length=128)],
        status: Annotated[
            Literal["processed", "rejected"], Field(description="processed = acted on; rejected = ignored.")
        ],
        decision_id: Annotated[
            str | None,
            Field(description="Your decision that handled it (links signal and decision).", max_length=128),
        ] = None,
    ) -> AckResult:
        """Mark your delivery of a signal processed or rejected (once; it leaves your pending inbox)."""

        async def body(caller: Any) -> AckResult:
            entry, acknowledged = await app(ctx).memory.ack_signal(caller, signal_id, status, decision_id)
            return AckResult(signal_id=signal_id, delivery=entry.delivery, acknowledged=acknowledged)

        return await run(ctx, "ack_signal", body)
