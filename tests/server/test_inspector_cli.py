"""MCP Inspector's CLI (a third-party MCP client) lists the tools of `agent-memory serve` over stdio
and calls one. .ci/run installs the pinned Inspector under tests/inspector."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

INSPECTOR = Path(__file__).parents[1] / "inspector" / "node_modules" / ".bin" / "mcp-inspector"

pytestmark = pytest.mark.skipif(
    not INSPECTOR.exists() or shutil.which("node") is None,
    reason="MCP Inspector not installed: run `npm ci` in tests/inspector (.ci/run does)",
)


def _inspect(tmp_path: Path, *args: str) -> dict[str, object]:
    env = {**os.environ, "AGENT_MEMORY_SQLITE_PATH": str(tmp_path / "memory.db")}
    result = subprocess.run(
        [str(INSPECTOR), "--cli", sys.executable, "-m", "agent_memory.cli", "serve", "--agent-id", "inspector",
         *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    parsed: dict[str, object] = json.loads(result.stdout)
    return parsed


def test_inspector_lists_tools_and_calls_one(tmp_path: Path) -> None:
    listed = _inspect(tmp_path, "--method", "tools/list")
    names = {tool["name"] for tool in listed["tools"]}  # type: ignore[attr-defined]
    assert {"log_decision", "recall_stm", "publish_signal", "get_state"} <= names

    called = _inspect(
        tmp_path, "--method", "tools/call", "--tool-name", "log_decision",
        "--tool-arg", "decision_type=SOURCE_SELECTION", "--tool-arg", "decision_id=from-inspector",
    )  # fmt: skip
    assert called.get("isError") in (None, False), called
    assert called["structuredContent"] == {"decision_id": "from-inspector", "created": True}
    read = _inspect(tmp_path, "--method", "resources/read", "--uri", "memory://decisions/from-inspector")
    record = json.loads(read["contents"][0]["text"])  # type: ignore[index]
    assert record["agent_id"] == "inspector"
