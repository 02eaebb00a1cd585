"""Hygiene (issue #12): ids checked as whole strings ("evil\\n" passed re.match with '$'); control
characters in agents' text reached the terminal report raw; no warning when HTTP bound beyond
loopback without a public URL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

from agent_memory.text import printable
from tests.fixtures.http_server import free_port, wait_listening
from tests.security.conftest import HONEST, HOSTILE, Server, seed_honest, snapshot

EVIL_TEXT = "\x1b[2J\x1b[Hfake report line\r\nall agents: 100% success\x07\u202e"


async def test_ids_with_a_trailing_newline_are_refused(server: Server) -> None:
    async with server.team() as team:
        await seed_honest(team)
        before = {name: await snapshot(team[name]) for name in HONEST}
        mallory = team[HOSTILE]
        attempts: dict[str, dict[str, Any]] = {
            "log_decision": dict(decision_type="TRADE", decision_id="evil\n"),
            "store_stm": dict(key="evil\n", value=1),
            "store_pattern": dict(
                description="x", conditions=[], outcomes={}, confidence=0.5, success_rate=0.5, sample_size=1,
                pattern_id="evil\n",
            ),
            "publish_signal": dict(signal_type="X", data={}, target_agents=["executor\n"], confidence=0.5),
        }  # fmt: skip
        for tool, args in attempts.items():
            message = await mallory.error(tool, **args)
            assert "invalid" in message, (tool, message)
        assert (await snapshot(mallory))["history"]["decisions"] == []
        for name in HONEST:
            assert await snapshot(team[name]) == before[name]


async def test_control_characters_never_reach_the_terminal(server: Server) -> None:
    async with server.team() as team:
        await seed_honest(team)
        before = {name: await snapshot(team[name]) for name in HONEST}
        mallory = team[HOSTILE]
        stored = await mallory.ok(
            "store_pattern", description=EVIL_TEXT, conditions=[], outcomes={}, confidence=0.9,
            success_rate=0.9, sample_size=10, shared_with=["*"],
        )  # fmt: skip
        pid = stored["pattern_id"]
        for i in range(3):
            logged = await mallory.ok("log_decision", decision_type="TRADE", patterns_applied=[pid])
            await mallory.ok("record_outcome", decision_id=logged["decision_id"], success=i > 0)
        for name in HONEST:
            assert await snapshot(team[name]) == before[name]
    report = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "agent_memory.cli", "analytics", "--format", "table", "--window", "7d"],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.returncode == 0, report.stderr
    assert "fake report line" in report.stdout  # the description is shown...
    assert "\x1b" not in report.stdout and "\x07" not in report.stdout and "\u202e" not in report.stdout
    assert "\\x1b[2J" in report.stdout  # ...with its control characters visible, not obeyed
    fake = [line for line in report.stdout.splitlines() if line.startswith("all agents: 100% success")]
    assert fake == []  # no forged line


def test_printable_escapes_controls_and_keeps_text() -> None:
    assert printable("plain text, accents é and 漢字") == "plain text, accents é and 漢字"
    assert printable("a\nb\tc\x1b[0m\x7f\u202e") == "a\\x0ab\\x09c\\x1b[0m\\x7f\\u202e"


def test_binding_beyond_loopback_without_a_public_url_warns(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from agent_memory.server.auth import add_token

    tokens = tmp_path / "tokens.json"
    add_token(tokens, "a", "agent")
    env = {**os.environ, "AGENT_MEMORY_SQLITE_PATH": str(tmp_path / "m.db")}
    outputs = {}
    for public_url in (None, "https://memory.example.test"):
        port = free_port()
        args = [sys.executable, "-m", "agent_memory.cli", "serve", "--transport", "http", "--host", "0.0.0.0",
                "--port", str(port), "--tokens-file", str(tokens)]  # fmt: skip
        run_env = dict(env)
        if public_url:
            run_env["AGENT_MEMORY_PUBLIC_URL"] = public_url
        proc = subprocess.Popen(args, env=run_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_listening(port, proc)
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=10)
        outputs[public_url] = err.decode()
    assert "warning: serving HTTP on 0.0.0.0" in outputs[None]
    assert "AGENT_MEMORY_PUBLIC_URL" in outputs[None]
    assert "warning" not in outputs["https://memory.example.test"]
