"""Signals between agents: publish to targets, read your inbox, acknowledge."""

from __future__ import annotations

from typing import Any

from agent_memory.api import requests as rq
from agent_memory.api import results as rs
from agent_memory.memory.identity import Caller
from agent_memory.tools._common import AppContext, Handler


async def publish_signal(app: AppContext, caller: Caller, req: rq.PublishSignal) -> rs.PublishResult:
    return await app.memory.publish_signal(
        caller,
        signal_type=req.signal_type,
        data=req.data,
        target_agents=req.target_agents,
        confidence=req.confidence,
        severity=req.severity,
        recommended_action=req.recommended_action,
        context=req.context,
        ttl_hours=req.ttl_hours,
        signal_id=req.signal_id,
    )


async def read_inbox(app: AppContext, caller: Caller, req: rq.ReadInbox) -> rs.InboxPage:
    page = await app.memory.read_inbox(caller, req.status, req.signal_type, req.limit, req.cursor)
    return rs.InboxPage(entries=[rs.SignalSummary.of(e) for e in page.items], next_cursor=page.next_cursor)


async def ack_signal(app: AppContext, caller: Caller, req: rq.AckSignal) -> rs.AckResult:
    entry, acknowledged = await app.memory.ack_signal(caller, req.signal_id, req.status, req.decision_id)
    return rs.AckResult(
        signal_id=req.signal_id,
        status=req.status,
        acknowledged=acknowledged,
        decision_id=entry.delivery.decision_id,
    )


HANDLERS: dict[str, Handler[Any]] = {
    "publish_signal": publish_signal,
    "read_inbox": read_inbox,
    "ack_signal": ack_signal,
}
