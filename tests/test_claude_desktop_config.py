"""claude_desktop_config.example.json launches what it says: two agents that share one memory.

Every server entry is started exactly as Claude Desktop would (its command, args and env), with
only HOME / XDG_DATA_HOME pointed at a temporary directory so the default data directory is fresh.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

CONFIG = Path(__file__).resolve().parent.parent / "claude_desktop_config.example.json"


def _servers() -> dict[str, dict[str, Any]]:
    servers: dict[str, dict[str, Any]] = json.loads(CONFIG.read_text(encoding="utf-8"))["mcpServers"]
    return servers


PLACEHOLDER = "/ABSOLUTE/PATH/TO/.venv/bin/agent-memory"
"""What the example says in place of the path 'agent-memory claude-config' prints."""


def _resolve(command: str) -> str:
    """The example's placeholder as the installed console script (next to this interpreter, or
    on PATH)."""
    assert command == PLACEHOLDER, "the example must show an absolute path, not rely on PATH"
    command = Path(command).name
    found = shutil.which(command)
    if found:
        return found
    beside = Path(sys.executable).parent / command
    assert beside.exists(), f"{command!r} is neither on PATH nor next to {Path(sys.executable).name}"
    return str(beside)


def _params(entry: dict[str, Any], home: Path) -> StdioServerParameters:
    env = dict(entry.get("env", {}))
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"))
    if "PYTHONPATH" in os.environ:  # a test run from a checkout other than the installed one
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return StdioServerParameters(
        command=_resolve(entry["command"]), args=list(entry.get("args", [])), env=env
    )


def test_config_declares_two_agents_on_the_default_store() -> None:
    servers = _servers()
    agents = sorted(entry["env"]["AGENT_MEMORY_AGENT_ID"] for entry in servers.values())
    assert agents == ["market-hunter", "risk-manager"]
    for entry in servers.values():
        assert Path(entry["command"]).is_absolute()
        assert isinstance(entry["command"], str) and all(isinstance(a, str) for a in entry["args"])
        # No store path: both use the default data-dir file, which is how they share one memory
        # (Claude Desktop does not expand '~' or variables in env values).
        assert "AGENT_MEMORY_SQLITE_PATH" not in entry["env"]


async def test_each_server_starts_as_configured_and_they_share_memory(tmp_path: Path) -> None:
    servers = _servers()
    by_agent = {entry["env"]["AGENT_MEMORY_AGENT_ID"]: entry for entry in servers.values()}
    async with (
        Client(_params(by_agent["market-hunter"], tmp_path)) as hunter,
        Client(_params(by_agent["risk-manager"], tmp_path)) as risk,
    ):
        for client in (hunter, risk):
            tools = {tool.name for tool in (await client.list_tools()).tools}
            assert {"log_decision", "recall_stm", "recall_patterns", "publish_signal", "read_inbox"} <= tools

        logged = await hunter.call_tool(
            "log_decision", {"decision_type": "SOURCE_SELECTION", "context": {"whale_count": 7}}
        )
        assert not logged.is_error, logged.content
        assert logged.structured_content is not None
        decision_id = logged.structured_content["decision_id"]
        published = await hunter.call_tool(
            "publish_signal",
            {
                "signal_type": "WHALE_ACTIVITY",
                "data": {"whale_count": 7, "decision_id": decision_id},
                "target_agents": ["risk-manager"],
                "confidence": 0.8,
            },
        )
        assert not published.is_error, published.content

        inbox = await risk.call_tool("read_inbox", {})
        assert not inbox.is_error, inbox.content
        assert inbox.structured_content is not None
        entries = inbox.structured_content["entries"]
        assert [e["source_agent"] for e in entries] == ["market-hunter"]
        assert entries[0]["data"]["decision_id"] == decision_id

    assert (tmp_path / "data" / "agent-memory" / "memory.db").exists()
