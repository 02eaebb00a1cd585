"""The stdio transport reads and writes on the event loop when stdin and stdout are pipes, and keeps
the SDK's thread path for a regular file: a real ``agent-memory serve`` subprocess either way.

What the loop must keep from the thread path: lines of any length (here longer than the 64 KiB of
asyncio's default line limit and than one read), a line split across writes, answers the client
does not read for a while (writes wait, nothing is lost), and a clean exit when stdin closes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from agent_memory.server.stdio import READ_CHUNK
from tests.faults.rawstdio import PROTOCOL, StdioServer


def _line(request_id: int, method: str, params: dict[str, Any]) -> bytes:
    return (
        json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}).encode() + b"\n"
    )


def test_a_line_longer_than_a_read_and_split_across_writes_is_served(tmp_path: Path) -> None:
    served = StdioServer(tmp_path / "memory.db", "hunter")
    try:
        value = "v" * 60_000  # a large note, near the payload limit
        line = _line(100, "tools/call", {"name": "store_stm", "arguments": {"key": "big", "value": value}})
        half = len(line) // 2
        served.send_raw(line[:half])
        time.sleep(0.2)  # the server has read the first half and waits for the rest of the line
        served.send_raw(line[half:])
        stored = served.read(100)
        assert not stored["result"].get("isError"), stored
        # Longer than one read on the loop: answered as the ping it is.
        padded = _line(101, "ping", {"_meta": {"pad": "p" * (READ_CHUNK + 50_000)}})
        assert len(padded) > READ_CHUNK > 64 * 1024
        served.send_raw(padded)
        assert served.read(101) == {"jsonrpc": "2.0", "id": 101, "result": {}}
        notes = served.call("recall_stm")["notes"]
        assert [n["key"] for n in notes] == ["big"] and value.startswith(notes[0]["value"].rstrip("…"))
    finally:
        assert served.close() == 0


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "AGENT_MEMORY_BACKEND": "sqlite",
        "AGENT_MEMORY_SQLITE_PATH": str(tmp_path / "memory.db"),
        "AGENT_MEMORY_AGENT_ID": "hunter",
    }


INIT = {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}
INITIALIZED = b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n'


def test_answers_the_client_does_not_read_yet_wait_and_all_arrive(tmp_path: Path) -> None:
    """More answer bytes than a pipe holds, asked for while the client reads nothing: the server's
    writes wait for the client (back-pressure), and every answer arrives, in full and in order."""
    calls = 60  # megabytes of answers: far past the pipe's buffer and the transport's high-water mark
    requests = (
        _line(1, "initialize", INIT)
        + INITIALIZED
        + _line(2, "ping", {})
        + b"".join(_line(10 + i, "tools/list", {}) for i in range(calls))
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent_memory.cli", "serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(tmp_path),
    )
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    def write_all() -> None:
        stdin.write(requests)
        stdin.flush()

    writer = threading.Thread(target=write_all, daemon=True)
    writer.start()
    time.sleep(2.0)  # the client reads nothing meanwhile: the server must wait, not drop or fail
    answers: dict[int, dict[str, Any]] = {}
    while len(answers) < calls + 2:
        line = stdout.readline()
        assert line.endswith(b"\n"), f"the server stopped after {len(answers)} answers"
        answer = json.loads(line)
        answers[answer["id"]] = answer
    writer.join(timeout=10)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and b"Traceback" not in err, err.decode()
    tools = answers[10]["result"]["tools"]
    assert len(json.dumps(tools)) * calls > 1024 * 1024
    assert all(answers[10 + i]["result"]["tools"] == tools for i in range(calls))


def test_a_regular_file_on_stdin_is_served_to_its_end(tmp_path: Path) -> None:
    """``agent-memory serve < requests.jsonl``: the thread path, every request answered, exit 0."""
    requests = tmp_path / "requests.jsonl"
    requests.write_bytes(
        _line(1, "initialize", INIT)
        + INITIALIZED
        + json.dumps({"id": 2, "pad": "q" * (READ_CHUNK + 1)}).encode()  # long, and no JSON-RPC
        + b"\nnot json\n"
    )
    env = _env(tmp_path)
    with requests.open("rb") as stdin:
        done = subprocess.run(
            [sys.executable, "-m", "agent_memory.cli", "serve"],
            stdin=stdin,
            capture_output=True,
            env=env,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr.decode()
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert all(line.endswith(b"}") for line in done.stdout.splitlines())
    by_id: dict[Any, dict[str, Any]] = {a.get("id"): a for a in answers}
    assert "result" in by_id[1]
    assert by_id[None]["error"]["code"] == -32700
    assert by_id[2]["error"]["code"] == -32600  # a line longer than one read, answered
    assert b"Traceback" not in done.stderr


def test_dev_null_on_stdin_and_stdout_ends_the_server_cleanly(tmp_path: Path) -> None:
    """A device the event loop cannot wait on keeps the thread path: stdin at its end at once, so
    the server exits 0 without a word on stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "agent_memory.cli", "serve"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=_env(tmp_path),
        timeout=60,
    )
    assert done.returncode == 0 and done.stderr == b"", done.stderr.decode()
