"""The agent-memory command on real stores: as a user runs it (a process), and, where a test runs
many commands to check what they do, through its `main` in this process (tests/fixtures/cli.py)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from agent_memory.memory.identity import Caller
from agent_memory.memory.learner import lambda_handler
from agent_memory.models import Outcome, utcnow
from tests.fixtures.cli import cli_in_process
from tests.fixtures.sqlite import sqlite_engine
from tests.support import FakeClock, memory_on


def _cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it: a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "agent_memory.cli", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _cli_here(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The same command through the CLI's ``main`` in this process (tests/fixtures/cli.py): for the
    tests that run many commands to check what they do, not how a process starts."""
    return cli_in_process(args, env={**os.environ, **(env or {})})


async def _seed(path: Path) -> None:
    async with sqlite_engine(path) as engine:
        # The CLI reads with the real clock (a 30-day window): the records are an hour old.
        memory = memory_on(engine, FakeClock(utcnow() - timedelta(hours=1)))
        hunter = Caller("market-hunter")
        await memory.register(hunter)
        for i in range(60):
            decision, _ = await memory.log_decision(
                hunter, "SOURCE_SELECTION", context={"whales": i % 10}, decision_id=f"d{i}"
            )
            await memory.record_outcome(
                hunter, decision.decision_id, Outcome(success=i % 10 >= 5, latency_ms=100 + i)
            )


def test_bad_settings_name_the_variable(tmp_path: Path) -> None:
    result = _cli("export", env={"AGENT_MEMORY_BACKEND": "postgres"})
    assert result.returncode == 2
    assert "AGENT_MEMORY_BACKEND" in result.stderr and "Traceback" not in result.stderr
    result = _cli("serve", env={"AGENT_MEMORY_SQLITE_PATH": str(tmp_path)})  # a directory, not a file
    assert result.returncode == 1
    assert "AGENT_MEMORY_SQLITE_PATH" in result.stderr and "Traceback" not in result.stderr
    result = _cli("tables", "status", env={"AGENT_MEMORY_SQLITE_PATH": str(tmp_path / "m.db")})
    assert result.returncode == 2 and "AGENT_MEMORY_BACKEND=dynamodb" in result.stderr


async def test_export_import_consolidate_analytics(tmp_path: Path) -> None:
    source, target = tmp_path / "a.db", tmp_path / "b.db"
    await _seed(source)
    exported = tmp_path / "memory.jsonl"
    result = _cli_here("export", "-o", str(exported), env={"AGENT_MEMORY_SQLITE_PATH": str(source)})
    assert result.returncode == 0, result.stderr
    assert "exported" in result.stderr
    result = _cli_here("import", "-i", str(exported), env={"AGENT_MEMORY_SQLITE_PATH": str(target)})
    assert result.returncode == 0, result.stderr
    again = _cli_here("export", env={"AGENT_MEMORY_SQLITE_PATH": str(target)})
    assert again.stdout == exported.read_text()

    learned = _cli_here(
        "consolidate", "--window", "30d", "--min-samples", "10", env={"AGENT_MEMORY_SQLITE_PATH": str(target)}
    )
    assert learned.returncode == 0, learned.stderr
    summary = json.loads(learned.stdout)
    created = summary["agents"]["market-hunter"]["SOURCE_SELECTION"]["created"]
    assert created, summary
    assert "60/" not in learned.stdout and "[" in learned.stderr  # the progress bar goes to stderr
    rerun = json.loads(
        _cli_here(
            "consolidate",
            "--window",
            "30d",
            "--min-samples",
            "10",
            env={"AGENT_MEMORY_SQLITE_PATH": str(target)},
        ).stdout
    )
    assert rerun["agents"]["market-hunter"]["SOURCE_SELECTION"]["created"] == []

    table = _cli_here("analytics", "--window", "30d", env={"AGENT_MEMORY_SQLITE_PATH": str(target)})
    assert table.returncode == 0, table.stderr
    assert "market-hunter" in table.stdout
    as_json = _cli_here(
        "analytics",
        "--window",
        "30d",
        "--format",
        "json",
        "--agent",
        "market-hunter",
        env={"AGENT_MEMORY_SQLITE_PATH": str(target)},
    )
    report = json.loads(as_json.stdout)
    assert report["totals"]["decisions"] == 60 and report["totals"]["successes"] == 30
    html = tmp_path / "report.html"
    result = _cli_here(
        "analytics",
        "--window",
        "30d",
        "--format",
        "html",
        "-o",
        str(html),
        env={"AGENT_MEMORY_SQLITE_PATH": str(target)},
    )
    assert result.returncode == 0 and html.read_text().startswith("<!DOCTYPE html")


async def test_lambda_handler_consolidates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "memory.db"
    await _seed(path)
    monkeypatch.setenv("AGENT_MEMORY_SQLITE_PATH", str(path))
    # The handler runs its own event loop, as in Lambda: call it from a worker thread here.
    summary = await asyncio.to_thread(lambda_handler, {"window": "30d", "min_samples": 10}, None)
    assert summary["agents"]["market-hunter"]["SOURCE_SELECTION"]["created"]


def test_tables_lifecycle(dynamodb_endpoint: str) -> None:
    env = {
        "AGENT_MEMORY_BACKEND": "dynamodb",
        "AGENT_MEMORY_DYNAMODB_ENDPOINT_URL": dynamodb_endpoint,
        "AGENT_MEMORY_AWS_REGION": "us-east-1",
        "AGENT_MEMORY_TABLE_PREFIX": f"cli{uuid.uuid4().hex[:6]}_",
    }
    before = [json.loads(line) for line in _cli_here("tables", "status", env=env).stdout.splitlines()]
    assert {t["status"] for t in before} == {"MISSING"}
    created = _cli_here("tables", "create", env=env)
    assert created.returncode == 0, created.stderr
    statuses = [json.loads(line) for line in created.stdout.splitlines()]
    assert {t["status"] for t in statuses} == {"ACTIVE"} and len(statuses) == 4
    assert all(t["ttl_status"] == "ENABLED" for t in statuses)
    assert _cli_here("tables", "create", env=env).returncode == 0  # idempotent
    refused = _cli_here("tables", "delete", env=env)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert _cli_here("tables", "delete", "--yes", env=env).returncode == 0
    after = [json.loads(line) for line in _cli_here("tables", "status", env=env).stdout.splitlines()]
    assert {t["status"] for t in after} == {"MISSING"}
