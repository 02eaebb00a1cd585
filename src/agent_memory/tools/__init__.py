"""The MCP tools: one handler per tool of :data:`agent_memory.api.TOOLS`, built into SDK tools."""

from __future__ import annotations

from mcp.server.mcpserver.tools import Tool

from agent_memory.api import TOOLS
from agent_memory.tools import budgets, decisions, patterns, signals, state
from agent_memory.tools._common import build_tool

HANDLERS = {
    **decisions.HANDLERS,
    **patterns.HANDLERS,
    **signals.HANDLERS,
    **state.HANDLERS,
    **budgets.HANDLERS,
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
