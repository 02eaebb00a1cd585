"""``agent-memory serve --transport http --workers N``: N processes answer one port, sharing the
store; --workers outside the HTTP transport is refused with a clear message."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2

from agent_memory.server.auth import add_token
from tests.fixtures.http_server import free_port, http_server, wait_listening


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _call(url: str, token: str, tool: str, arguments: dict[str, object]) -> dict[str, Any]:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    }
    headers = {"Accept": "application/json, text/event-stream", "Authorization": f"Bearer {token}"}
    with httpx2.Client(timeout=30) as http:  # a new connection per call: any worker may answer
        response = http.post(url, json=body, headers=headers)
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["isError"] is False, result
    structured: dict[str, Any] = result["structuredContent"]
    return structured


def test_two_workers_serve_one_port_and_share_the_store(tmp_path: Path) -> None:
    port = free_port()
    tokens_file = tmp_path / "tokens.json"
    hunter = add_token(tokens_file, "market-hunter", "agent")
    risk = add_token(tokens_file, "risk-manager", "agent")
    env = {**os.environ, "AGENT_MEMORY_SQLITE_PATH": str(tmp_path / "memory.db")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent_memory.cli", "serve", "--transport", "http", "--port", str(port),
         "--tokens-file", str(tokens_file), "--workers", "2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_listening(port, proc, timeout=60)
        url = f"http://127.0.0.1:{port}/mcp"
        ids = []
        for i in range(12):
            logged = _call(
                url, hunter, "log_decision", {"decision_type": "SOURCE_SELECTION", "context": {"i": i}}
            )
            ids.append(logged["decision_id"])
        found = _call(url, hunter, "search_decisions", {"decision_type": "SOURCE_SELECTION", "limit": 50})
        assert sorted(d["decision_id"] for d in found["decisions"]) == sorted(ids)
        assert _call(url, risk, "get_state", {})["agent_id"] == "risk-manager"
        # uvicorn's supervisor spawns the workers (beside multiprocessing's resource tracker).
        workers = [c for c in _children(proc.pid) if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
        assert len(workers) == 2, workers
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_workers_need_the_http_transport(tmp_path: Path) -> None:
    env = {**os.environ, "AGENT_MEMORY_SQLITE_PATH": str(tmp_path / "memory.db")}
    done = subprocess.run(
        [sys.executable, "-m", "agent_memory.cli", "serve", "--workers", "2"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2  # a usage mistake
    assert "--workers applies to --transport http only" in done.stderr
    assert "Traceback" not in done.stderr


def test_every_worker_keeps_the_bounds_on_each_client(tmp_path: Path) -> None:
    """The protections of one process hold in each of N: a request not sent whole within the
    header timeout is closed, whichever worker took its connection."""
    tokens_file = tmp_path / "tokens.json"
    token = add_token(tokens_file, "market-hunter", "agent")
    env = {"AGENT_MEMORY_SQLITE_PATH": str(tmp_path / "memory.db"), "AGENT_MEMORY_HTTP_HEADER_TIMEOUT_S": "1"}
    with http_server(tokens_file, env, "--workers", "2", timeout=60) as (url, port):
        # Several connections, so that the kernel hands them to both workers.
        socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(6)]
        try:
            for sock in socks:
                sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n")
            start = time.monotonic()
            for sock in socks:
                assert sock.recv(1024) == b""  # closed by its worker (the recv would block 10 s otherwise)
            assert time.monotonic() - start < 9
        finally:
            for sock in socks:
                sock.close()
        assert _call(url, token, "get_state", {})["agent_id"] == "market-hunter"


SETTLED = """
import gc, json, sys, weakref
from agent_memory.server.workers import worker_app

before = gc.get_threshold()
worker_app()  # what each worker process runs before it serves
frozen, threshold = gc.get_freeze_count(), gc.get_threshold()

class Node:
    pass

a, b = Node(), Node()
a.other, b.other = b, a  # a cycle: only the collector frees it
gone = weakref.ref(a)
del a, b
gc.collect()
print(json.dumps({"before": before, "frozen": frozen, "threshold": threshold, "cycle_freed": gone() is None}))
"""


def test_a_worker_settles_its_heap_before_serving(tmp_path: Path) -> None:
    """Each worker hides what it built at start-up from the collector (frozen) and collects its
    young objects less often (issue #14: the collector re-scanned the objects of calls in flight);
    cycles are still freed."""
    from agent_memory.config import Settings
    from agent_memory.server.run import GC_YOUNG_THRESHOLD
    from agent_memory.server.workers import SETTINGS_ENV

    tokens_file = tmp_path / "tokens.json"
    add_token(tokens_file, "market-hunter", "agent")
    settings = Settings(tokens_file=tokens_file, sqlite_path=tmp_path / "memory.db", http_port=free_port())
    env = {**os.environ, SETTINGS_ENV: settings.model_dump_json()}
    done = subprocess.run(
        [sys.executable, "-c", SETTLED], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    found = json.loads(done.stdout)
    assert found["threshold"][0] == GC_YOUNG_THRESHOLD != found["before"][0]  # not Python's default
    assert found["threshold"][1:] == found["before"][1:]
    assert found["frozen"] > 10_000  # the modules, schemas and app built at start-up
    assert found["cycle_freed"] is True


STDIO_SETTLED = """
import gc, json, sys
from pathlib import Path
from agent_memory.cli import serve
from agent_memory.config import Settings

before = gc.get_threshold()
seen = {}

def serving(*args):  # stands in for the stdio loop: what the heap is like when serving starts
    seen.update(frozen=gc.get_freeze_count(), threshold=gc.get_threshold())
    return False

serve.anyio.run = serving
serve.serve_stdio(Settings(sqlite_path=Path(sys.argv[1])))
print(json.dumps({"before": before, **seen}))
"""


def test_a_stdio_server_settles_its_heap_before_serving(tmp_path: Path) -> None:
    """The stdio server tunes the collector as an HTTP worker does, once its server is built."""
    from agent_memory.server.run import GC_YOUNG_THRESHOLD

    done = subprocess.run(
        [sys.executable, "-c", STDIO_SETTLED, str(tmp_path / "memory.db")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found = json.loads(done.stdout)
    assert found["threshold"][0] == GC_YOUNG_THRESHOLD != found["before"][0]
    assert found["threshold"][1:] == found["before"][1:]
    assert found["frozen"] > 10_000
