"""The MCP tools: one handler per tool of :data:`agent_memory.api.TOOLS`, built into SDK tools.

Most tools are the domain service's method of the same meaning, called with the request's fields
by name (:func:`forward`): the request model is the parameter list, written once, and the service
answers the api result (or a record that one ``view`` turns into it). The few tools that do more
(emit metrics, pick a section, build another service) have a handler in the module of their family.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from mcp.server.mcpserver.tools import Tool
from pydantic import BaseModel

from agent_memory.api import TOOLS
from agent_memory.api import requests as rq
from agent_memory.api import results as rs
from agent_memory.memory.identity import Caller
from agent_memory.memory.service import Memory
from agent_memory.tools import analytics, budgets, decisions, patterns, state
from agent_memory.tools._common import AppContext, Handler, build_tool

View = Callable[[Any, Caller, Any], BaseModel]
"""Turns a service's answer into the tool's result: ``(answer, caller, request) -> result``."""


def forward(
    name: str,
    method: Callable[..., Awaitable[Any]],
    view: View | None = None,
    fixed: Mapping[str, Any] | None = None,
) -> Handler[Any]:
    """The handler of tool ``name``: ``method`` of the caller's :class:`Memory`, given every field
    of the tool's request model as the keyword of the same name (and the keywords ``fixed``).

    Checked here, when the table is built: a request field the method does not take would fail
    every call, so it fails the server's start instead.
    """
    fields = list(TOOLS[name].request.model_fields)
    params = inspect.signature(method).parameters
    missing = [f for f in [*fields, *(fixed or {})] if f not in params]
    if missing:
        raise TypeError(f"{name}: {method.__qualname__} takes no {missing}")
    extra = dict(fixed or {})

    async def handle(app: AppContext, caller: Caller, req: BaseModel) -> BaseModel:
        answer = await method(app.memory, caller, **{f: getattr(req, f) for f in fields}, **extra)
        return answer if view is None else view(answer, caller, req)

    return handle


def _ack(acknowledged: bool, caller: Caller, req: rq.AckSignal) -> rs.AckResult:
    # The delivery's decision is the request's: a repeat with another one is a Conflict.
    return rs.AckResult.built(
        signal_id=req.signal_id, status=req.status, acknowledged=acknowledged, decision_id=req.decision_id
    )


HANDLERS: dict[str, Handler[Any]] = {
    "log_decision": decisions.log_decision,
    "record_outcome": decisions.record_outcome,
    "recall_stm": forward("recall_stm", Memory.recall_stm),
    "store_stm": decisions.store_stm,
    "search_decisions": decisions.search_decisions,
    "store_pattern": forward(
        "store_pattern",
        Memory.store_pattern,
        lambda p, caller, req: rs.PatternResult.built(pattern_id=p.pattern_id, version=p.version),
    ),
    "recall_patterns": forward(
        "recall_patterns",
        Memory.recall_pattern_summaries,
        lambda found, caller, req: rs.PatternList.built(patterns=found),
        # The request model validated and normalised the context: the service need not again.
        fixed={"validated": True},
    ),
    "share_pattern": forward("share_pattern", Memory.share_pattern),
    "pattern_history": forward(
        "pattern_history",
        Memory.pattern_history,
        lambda found, caller, req: rs.PatternList.of(found, caller.agent_id),
    ),
    "learn_patterns": patterns.learn_patterns,
    # The request model checked data and context by the signal's own payload rules.
    "publish_signal": forward("publish_signal", Memory.publish_signal, fixed={"validated": True}),
    "read_inbox": forward("read_inbox", Memory.read_inbox_summaries),
    "ack_signal": forward("ack_signal", Memory.acknowledge_signal, _ack),
    "consume_budget": budgets.consume_budget,
    "get_state": state.get_state,
    "update_state": state.update_state,
    "get_analytics": analytics.get_analytics,
}


def all_tools(read_only: bool) -> list[Tool]:
    """Every tool, in the table's order; a read-only server leaves out the write tools (a model is
    better served by not seeing a tool than by calling one that always refuses)."""
    missing = set(TOOLS) ^ set(HANDLERS)
    assert not missing, f"tools without a handler or a spec: {missing}"
    return [
        build_tool(spec, HANDLERS[name])
        for name, spec in TOOLS.items()
        if not (read_only and spec.kind != "read")
    ]
