"""``agent-memory claude-config``: an entry that launches this installed server by absolute path,
printed, or merged into the OS's config file after a backup (a temporary HOME / APPDATA here)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from agent_memory.cli.claude import config_path
from tests.cli.support import cli, refused


def test_config_path_per_os(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("APPDATA", str(tmp_path / "Roaming"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    assert config_path("darwin") == tmp_path / "Library/Application Support/Claude/claude_desktop_config.json"
    assert config_path("win32") == tmp_path / "Roaming/Claude/claude_desktop_config.json"
    assert config_path("linux") == tmp_path / ".config/Claude/claude_desktop_config.json"


def test_printed_entry_launches_the_server_by_absolute_path(tmp_path: Path) -> None:
    result = cli(
        "claude-config",
        "--agent-id",
        "market-hunter",
        "--agent-id",
        "risk-manager",
        env={"HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    servers = json.loads(result.stdout)["mcpServers"]
    assert sorted(servers) == ["memory-market-hunter", "memory-risk-manager"]
    for agent in ("market-hunter", "risk-manager"):
        entry = servers[f"memory-{agent}"]
        assert Path(entry["command"]).is_absolute() and Path(entry["command"]).exists()
        assert entry["args"][-1] == "serve" and entry["env"] == {"AGENT_MEMORY_AGENT_ID": agent}
    assert "claude_desktop_config.json" in result.stderr


def _merge_two(tmp_path: Path, home: Path) -> dict[str, object]:
    """Merge agents a and b into a config holding other settings; check it; return the result."""
    env = {"HOME": str(home), "APPDATA": str(home / "AppData"), "XDG_CONFIG_HOME": str(home / ".config")}
    target = tmp_path / "claude_desktop_config.json"
    original = {
        "theme": "dark",
        "mcpServers": {"other": {"command": "/bin/other"}, "memory-a": {"command": "old"}},
    }
    target.write_text(json.dumps(original))
    result = cli(
        "claude-config",
        "--agent-id",
        "a",
        "--agent-id",
        "b",
        "--merge",
        "--config-file",
        str(target),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "added memory-b" in result.stderr and "replaced memory-a" in result.stderr
    merged = json.loads(target.read_text())
    assert merged["theme"] == "dark" and merged["mcpServers"]["other"] == {"command": "/bin/other"}
    backups = list(tmp_path.glob("claude_desktop_config.json.bak-*"))
    assert len(backups) == 1 and json.loads(backups[0].read_text()) == original
    assert isinstance(merged, dict)
    return merged


async def test_merge_keeps_other_servers_backs_up_and_the_entry_runs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    merged: dict[str, Any] = _merge_two(tmp_path, home)
    # The merged entry starts a working server as Claude Desktop would: its command, args and
    # env only (no PATH from a virtualenv).
    entry = merged["mcpServers"]["memory-b"]
    server_env = {**entry["env"], "HOME": str(home), "XDG_DATA_HOME": str(home / "data")}
    if "PYTHONPATH" in os.environ:  # a test run from a checkout that is not installed
        server_env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    params = StdioServerParameters(command=entry["command"], args=entry["args"], env=server_env)
    async with Client(params) as client:
        logged = await client.call_tool("log_decision", {"decision_type": "CHECK", "context": {}})
        assert not logged.is_error, logged.content
    assert (home / "data" / "agent-memory" / "memory.db").exists()


def test_merge_into_the_os_default_file_creates_it(tmp_path: Path) -> None:
    env = {
        "HOME": str(tmp_path),
        "APPDATA": str(tmp_path / "AppData"),
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
    }
    result = cli("claude-config", "--agent-id", "solo", "--merge", env=env)
    assert result.returncode == 0, result.stderr
    written = [p for p in tmp_path.rglob("claude_desktop_config.json")]
    assert len(written) == 1 and "memory-solo" in json.loads(written[0].read_text())["mcpServers"]


def test_merge_refuses_a_broken_file_and_changes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "claude_desktop_config.json"
    target.write_text("{ not json")
    message = refused(cli("claude-config", "--agent-id", "a", "--merge", "--config-file", str(target)))
    assert "nothing was changed" in message and target.read_text() == "{ not json"
    assert refused(cli("claude-config", "--agent-id", "bad id"))


def test_explicit_store_settings_go_into_the_entry(tmp_path: Path) -> None:
    result = cli(
        "--sqlite-path",
        "rel/memory.db",
        "claude-config",
        "--agent-id",
        "a",
        env={"HOME": str(tmp_path)},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    env = json.loads(result.stdout)["mcpServers"]["memory-a"]["env"]
    assert env["AGENT_MEMORY_SQLITE_PATH"] == str(tmp_path / "rel" / "memory.db")
