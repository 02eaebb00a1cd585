"""A real ``agent-memory serve`` subprocess spoken to in raw JSON-RPC lines over its stdio (no
client library between the test and the pipe: the test writes exact bytes and sees exactly what
was answered). Every read is bounded: a line the server never answers fails the test, not hangs it.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

PROTOCOL = "2025-06-18"
READ_TIMEOUT_S = 30.0


class StdioServer:
    def __init__(self, db: Path, agent: str, *, stderr: IO[bytes] | int = subprocess.DEVNULL) -> None:
        env = {
            **os.environ,
            "AGENT_MEMORY_BACKEND": "sqlite",
            "AGENT_MEMORY_SQLITE_PATH": str(db),
            "AGENT_MEMORY_AGENT_ID": agent,
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent_memory.cli", "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
        )
        self.lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.next_id = 0
        self.request({"method": "initialize", "params": _init_params()})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(b"")

    @property
    def stdin(self) -> IO[bytes]:
        assert self.proc.stdin is not None
        return self.proc.stdin

    def send_raw(self, data: bytes) -> None:
        self.stdin.write(data)
        self.stdin.flush()

    def send(self, message: dict[str, Any]) -> None:
        self.send_raw(json.dumps(message).encode() + b"\n")

    def request(self, body: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, **body})
        return self.read(self.next_id)

    def next_message(self, timeout_s: float = READ_TIMEOUT_S) -> dict[str, Any]:
        """The next line the server writes, parsed; fails after ``timeout_s`` without one."""
        try:
            line = self.lines.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"the server wrote nothing within {timeout_s:g} s") from None
        if not line:
            raise EOFError("the server closed its output")
        return dict(json.loads(line))

    def read(self, request_id: int | str | None) -> dict[str, Any]:
        while True:
            message = self.next_message()
            if message.get("id") == request_id and ("result" in message or "error" in message):
                return message

    def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        answer = self.request({"method": "tools/call", "params": {"name": tool, "arguments": arguments}})
        result = answer["result"]
        assert not result.get("isError"), result
        return dict(result["structuredContent"])

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def close(self) -> int:
        """Close stdin (the client is gone) and return the server's exit status."""
        self.stdin.close()
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            raise


def _init_params() -> dict[str, Any]:
    return {
        "protocolVersion": PROTOCOL,
        "capabilities": {},
        "clientInfo": {"name": "raw-stdio-test", "version": "1"},
    }
