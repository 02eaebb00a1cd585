"""`agent-memory import` validates every line through the record models before writing anything
(issue #12: a line could forge a pattern "by" another agent; one bad registry row broke
list_agents, publish_signal(['*']) and analytics)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.security.conftest import HONEST, Server, seed_honest, snapshot

HEADER = {"format": "agent-memory-export", "version": 1}
NOW = "2026-12-01T10:00:00.000000Z"
GOOD = {
    "table": "state",
    "item": {"pk": "agent:newcomer", "sk": "CURRENT", "agent_id": "newcomer", "version": 1},
}
BAD_LINES = {
    "a pattern under the hunter's key, written by mallory": {
        "table": "ltm",
        "item": {
            "pk": "agent:market-hunter#pattern", "sk": "forged", "pattern_id": "forged", "agent_id": "mallory",
            "description": "x", "confidence": 1.0, "success_rate": 1.0, "sample_size": 1,
            "created_at": NOW, "updated_at": NOW,
        },
    },
    "a registry row with a control character": {
        "table": "state",
        "item": {"pk": "registry", "sk": "agent#evil\n", "agent_id": "evil\n", "first_seen": NOW, "last_seen": NOW},
    },
    "a registry row without its fields": {"table": "state", "item": {"pk": "registry", "sk": "agent#x"}},
    "an item of no known family": {"table": "ltm", "item": {"pk": "whatever", "sk": "x"}},
}  # fmt: skip


@pytest.mark.parametrize("why", list(BAD_LINES))
async def test_an_invalid_line_refuses_the_whole_import(server: Server, tmp_path: Path, why: str) -> None:
    async with server.team() as team:
        await seed_honest(team)
        before = {name: await snapshot(team[name]) for name in HONEST}
        agents_before = [
            a["agent_id"] for a in (await team["dashboard"].resource("memory://agents"))["items"]
        ]
    path = tmp_path / "export.jsonl"
    lines = [HEADER, GOOD, BAD_LINES[why], GOOD]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "agent_memory.cli", "import", "--input", str(path)],
        env=server.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert "line 3" in done.stderr and "nothing was imported" in done.stderr
    assert "Traceback" not in done.stderr
    async with server.team() as team:
        for name in HONEST:
            assert await snapshot(team[name]) == before[name]
        agents = [a["agent_id"] for a in (await team["dashboard"].resource("memory://agents"))["items"]]
        assert agents == agents_before and "newcomer" not in agents
        # The registry still works for signals to everyone.
        await team["market-hunter"].ok(
            "publish_signal", signal_type="PING", data={}, target_agents=["*"], confidence=0.5
        )
