"""kill -9 of a server process in the middle of a stream of writes.

Raw JSON-RPC over the server's stdio (no client library between the test and the pipe, so the
test sees exactly which requests were answered before the kill). Checks, after a restart on the
same SQLite file: every acknowledged decision is stored exactly once and intact; an unacknowledged
one is stored at most once, and its retry (same id) answers like the first without duplicating.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.faults.rawstdio import StdioServer


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
        message = server.next_message()
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
