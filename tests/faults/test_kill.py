"""kill -9 of a server process in the middle of a stream of writes.

Raw JSON-RPC over the server's stdio (no client library between the test and the pipe, so the
test sees exactly which requests were answered before the kill). Checks, after a restart on the
same SQLite file: every acknowledged decision is stored exactly once and intact; an unacknowledged
one is stored at most once, and its retry (same id) answers like the first without duplicating.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

PROTOCOL = "2025-06-18"


class StdioServer:
    def __init__(self, db: Path, agent: str) -> None:
        env = {
            **os.environ,
            "AGENT_MEMORY_BACKEND": "sqlite",
            "AGENT_MEMORY_SQLITE_PATH": str(db),
            "AGENT_MEMORY_AGENT_ID": agent,
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from agent_memory.cli import main; main(['serve'])"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self.next_id = 0
        self.request({"method": "initialize", "params": _init_params()})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    @property
    def stdin(self) -> IO[bytes]:
        assert self.proc.stdin is not None
        return self.proc.stdin

    @property
    def stdout(self) -> IO[bytes]:
        assert self.proc.stdout is not None
        return self.proc.stdout

    def send(self, message: dict[str, Any]) -> None:
        self.stdin.write(json.dumps(message).encode() + b"\n")
        self.stdin.flush()

    def request(self, body: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, **body})
        return self.read(self.next_id)

    def read(self, request_id: int) -> dict[str, Any]:
        while True:
            line = self.stdout.readline()
            if not line:
                raise EOFError("the server closed its output")
            message = json.loads(line)
            if message.get("id") == request_id:
                return dict(message)

    def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        answer = self.request({"method": "tools/call", "params": {"name": tool, "arguments": arguments}})
        result = answer["result"]
        assert not result.get("isError"), result
        return dict(result["structuredContent"])

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def close(self) -> None:
        self.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()


def _init_params() -> dict[str, Any]:
    return {
        "protocolVersion": PROTOCOL,
        "capabilities": {},
        "clientInfo": {"name": "kill-test", "version": "1"},
    }


def _decision(i: int) -> dict[str, Any]:
    return {"decision_type": "TRADE", "decision_id": f"d-{i:04d}", "context": {"i": i, "note": "x" * 200}}


def test_kill_9_mid_stream_loses_and_duplicates_nothing_acknowledged(tmp_path: Path) -> None:
    db = tmp_path / "memory.db"
    server = StdioServer(db, "hunter")
    acknowledged: list[str] = []
    # Pipeline writes without waiting, then kill the process while requests are in flight.
    first_id = server.next_id + 1
    for i in range(300):
        server.next_id += 1
        server.send(
            {
                "jsonrpc": "2.0",
                "id": server.next_id,
                "method": "tools/call",
                "params": {"name": "log_decision", "arguments": _decision(i)},
            }
        )
    deadline = time.monotonic() + 60
    while len(acknowledged) < 40 and time.monotonic() < deadline:
        message = json.loads(server.stdout.readline())
        if "id" in message and message["id"] >= first_id:
            assert not message["result"].get("isError"), message
            acknowledged.append(message["result"]["structuredContent"]["decision_id"])
    server.kill()
    assert len(acknowledged) == 40

    restarted = StdioServer(db, "hunter")
    try:
        stored: list[dict[str, Any]] = []
        cursor = None
        while True:
            args: dict[str, Any] = {"limit": 50, **({"cursor": cursor} if cursor else {})}
            page = restarted.call("search_decisions", **args)
            stored += page["decisions"]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        ids = [d["decision_id"] for d in stored]
        assert len(ids) == len(set(ids)), "a decision is stored twice"
        assert set(acknowledged) <= set(ids), set(acknowledged) - set(ids)
        for decision in stored:  # intact: what was sent
            assert decision["decision_type"] == "TRADE" and decision.get("agent_id") is None  # yours
        # Retrying everything (the client cannot know what landed) duplicates nothing.
        for i in range(300):
            again = restarted.call("log_decision", **_decision(i))
            assert again["created"] == (f"d-{i:04d}" not in ids)
        total = restarted.call("search_decisions", limit=50)
        assert total.get("next_cursor") is not None  # 300 > 50: still paged, nothing lost
    finally:
        restarted.close()
