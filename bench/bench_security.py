"""Latency probe: another agent's get_state while one agent sends maximal payloads, over HTTP.

    python -m bench.bench_security [--iterations 300] [--attackers 2] [--write-docs]

Starts ``agent-memory serve --transport http`` (embedded store, tokens for two agents, rate limit
off so that only the bounds on work per request protect the victim) and measures the victim's
``get_state`` latency alone, then while ``--attackers`` clients of the other agent send, in a loop,
the largest payloads the server takes: a ``log_decision`` whose context is just under the 64 KiB
field limit (about 5,000 keys), alternating with a ``recall_patterns`` whose context is just under
the 1 MiB body limit (about 60,000 keys, refused by its encoded size before any walk). Issue #12
measured a 9.5 s stall of another agent's ``get_state`` under two 4 MB, 120k-key payloads.

Section ``security`` of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from tests.fixtures.http_server import free_port

from agent_memory.server.auth import add_token
from bench.common import (
    fmt_ms,
    machine_note,
    markdown_table,
    now_ns,
    progress,
    publish,
    summarize,
)


def _context(max_bytes: int) -> dict[str, int]:
    """The most keys that fit in ``max_bytes`` of compact JSON."""
    out: dict[str, int] = {}
    size = 2
    i = 0
    while True:
        entry = len(json.dumps({f"k{i}": i}, separators=(",", ":"))) - 2 + 1
        if size + entry > max_bytes:
            return out
        out[f"k{i}"] = i
        size += entry
        i += 1


async def _connect(stack: AsyncExitStack, url: str, token: str) -> Client:
    http = await stack.enter_async_context(
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=120)
    )
    return await stack.enter_async_context(Client(streamable_http_client(url, http_client=http)))


async def _probe(victim: Client, iterations: int) -> list[int]:
    out = []
    for _ in range(iterations):
        start = now_ns()
        result = await victim.call_tool("get_state", {})
        out.append(now_ns() - start)
        assert not result.is_error
    return out


@contextlib.contextmanager
def _server() -> Iterator[tuple[str, str, str]]:
    """A memory server over HTTP on a fresh embedded store: (url, victim token, attacker token)."""
    with tempfile.TemporaryDirectory() as tmp:
        tokens_file = Path(tmp) / "tokens.json"
        victim_token = add_token(tokens_file, "victim", "agent")
        attacker_token = add_token(tokens_file, "attacker", "agent")
        port = free_port()
        env = {
            **os.environ,
            "AGENT_MEMORY_SQLITE_PATH": str(Path(tmp) / "memory.db"),
            "AGENT_MEMORY_RATE_LIMIT_PER_MINUTE": "0",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent_memory.cli", "serve", "--transport", "http", "--port", str(port),
             "--tokens-file", str(tokens_file)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.1)
            yield f"http://127.0.0.1:{port}/mcp", victim_token, attacker_token
        finally:
            proc.terminate()
            proc.wait(timeout=10)


async def run(
    url: str, victim_token: str, attacker_token: str, iterations: int, attackers: int
) -> dict[str, Any]:
    field_max = _context(64 * 1024 - 64)
    body_max = _context(1024 * 1024 - 4096)
    sent = {"accepted": 0, "refused": 0}

    async with AsyncExitStack() as stack:
        victim = await _connect(stack, url, victim_token)
        await _probe(victim, 30)  # warm-up
        progress("victim alone")
        alone = await _probe(victim, iterations)
        progress(f"victim with {attackers} attackers")
        # The attackers run in their own processes: their client-side work must not be
        # counted as the server's.
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.bench_security", "--attack", url, attacker_token,
                stdout=asyncio.subprocess.PIPE,
            )
            for _ in range(attackers)
        ]  # fmt: skip
        await asyncio.sleep(3.0)
        started = time.monotonic()
        loaded = await _probe(victim, iterations)
        elapsed = time.monotonic() - started
        for proc in procs:
            proc.terminate()
        for proc in procs:
            out, _ = await proc.communicate()
            counts = json.loads(out.decode() or "{}")
            for key in sent:
                sent[key] += counts.get(key, 0)
    return {
        "alone": summarize(alone),
        "loaded": summarize(loaded),
        "max_ms": max(loaded) / 1e6,
        "sent": sent,
        "elapsed_s": elapsed,
        "field_keys": len(field_max),
        "body_keys": len(body_max),
        "body_bytes": len(json.dumps(body_max, separators=(",", ":"))),
    }


def _call(tool: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": args}}


async def _attack(url: str, token: str) -> None:
    """One attacker process: maximal payloads in a loop until terminated; prints its counts."""
    field_max = _context(64 * 1024 - 64)
    body_max = _context(1024 * 1024 - 4096)
    sent = {"accepted": 0, "refused": 0}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    # Raw JSON-RPC over HTTP, as a hostile client would send it (no client-side validation).
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "Authorization": f"Bearer {token}",
    }
    bodies = [
        json.dumps(_call("log_decision", {"decision_type": "FLOOD", "context": field_max})).encode(),
        json.dumps(_call("recall_patterns", {"context": body_max}), separators=(",", ":")).encode(),
    ]
    async with httpx2.AsyncClient(timeout=120) as http:
        i = 0
        while not stop.is_set():
            response = await http.post(url, content=bodies[i % 2], headers=headers)
            accepted = response.status_code == 200 and '"isError":true' not in response.text
            sent["accepted" if accepted else "refused"] += 1
            i += 1
    print(json.dumps(sent), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--attackers", type=int, default=2)
    parser.add_argument("--write-docs", action="store_true", help="update the docs (default: print only)")
    parser.add_argument("--attack", nargs=2, metavar=("URL", "TOKEN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.attack:
        asyncio.run(_attack(*args.attack))
        return
    with _server() as (url, victim_token, attacker_token):
        r = asyncio.run(run(url, victim_token, attacker_token, args.iterations, args.attackers))
    table = markdown_table(
        ["victim get_state", "p50 ms", "p95 ms", "max ms"],
        [
            ["alone", fmt_ms(r["alone"].p50_ms), fmt_ms(r["alone"].p95_ms), "-"],
            [
                f"while {args.attackers} clients send maximal payloads",
                fmt_ms(r["loaded"].p50_ms),
                fmt_ms(r["loaded"].p95_ms),
                fmt_ms(r["max_ms"]),
            ],
        ],
    )
    text = f"""### Another agent's latency under maximal payloads (HTTP)

{table}

{args.iterations} sequential `get_state` calls per row. The attackers sent
{r["sent"]["accepted"]} accepted `log_decision` calls (context of {r["field_keys"]:,} keys, just under
the 64 KiB field limit) and {r["sent"]["refused"]} refused `recall_patterns` calls (context of
{r["body_keys"]:,} keys, {r["body_bytes"]:,} bytes, as raw JSON-RPC: within the 1 MiB body limit,
refused by its encoded size before any walk) during the loaded run ({r["elapsed_s"]:.1f} s). Rate limit
off; one server process; attackers and victim in separate processes on the same machine.
{machine_note()}
"""
    publish("security", text, write=args.write_docs)


if __name__ == "__main__":
    main()
