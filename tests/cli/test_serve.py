"""``agent-memory serve`` as a person meets it: typed into a terminal, started over HTTP; and the
agent registry only learns agents that actually call."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

from mcp import Client

from agent_memory.server.app import build_server
from agent_memory.storage.factory import open_store
from tests.cli.support import cli
from tests.support import settings_for


def test_serve_in_a_terminal_says_what_it_waits_for_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    controller, terminal = pty.openpty()
    env = {**os.environ, "AGENT_MEMORY_SQLITE_PATH": str(tmp_path / "m.db")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent_memory.cli", "serve", "--agent-id", "me"],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline().decode()
        second = proc.stderr.readline().decode()
        assert "agent 'me'" in first and str(tmp_path / "m.db") in first
        assert "waits for an MCP client on stdin" in second and "Ctrl-C" in second
        time.sleep(0.3)  # let it reach the stdin read, where Ctrl-C used to be ignored
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 130
        assert b"Traceback" not in proc.stderr.read()
    finally:
        proc.kill()
        os.close(controller)
        os.close(terminal)


def test_serve_launched_by_a_client_prints_nothing(tmp_path: Path) -> None:
    result = cli("serve", input_="", env={"AGENT_MEMORY_SQLITE_PATH": str(tmp_path / "m.db")})
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""


def test_http_start_prints_one_line_and_no_warning(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    assert cli("tokens", "add", "--agent-id", "a", "--file", str(tokens)).returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent_memory.cli", "serve", "--transport", "http", "--port", "0",
         "--tokens-file", str(tokens)],
        env={**os.environ, "AGENT_MEMORY_SQLITE_PATH": str(tmp_path / "m.db"), "PYTHONWARNINGS": "default"},
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline().decode()
        assert line.startswith("agent-memory: serving MCP on http://127.0.0.1:") and "Ctrl-C" in line
        proc.send_signal(signal.SIGINT)  # at once: before uvicorn has installed its own handlers
        assert proc.wait(timeout=15) == 130
        rest = proc.stderr.read().decode()
        assert "Warning" not in rest and "validate_token_resource" not in rest, rest
    finally:
        proc.kill()


async def test_an_agent_is_registered_on_its_first_tool_call_not_at_start(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, sqlite_path=tmp_path / "m.db", agent_id="typo-agent")
    async with open_store(settings) as store:
        server = build_server(settings, store=store)
        async with Client(server) as client:
            await client.list_tools()
            assert (await store.list_agents(limit=10, cursor=None)).items == []
            result = await client.call_tool("recall_stm", {})
            assert not result.is_error, result.content
        assert [p.agent_id for p in (await store.list_agents(limit=10, cursor=None)).items] == ["typo-agent"]
