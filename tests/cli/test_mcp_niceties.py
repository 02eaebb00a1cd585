"""MCP niceties a client expects: the logging capability (logging/setLevel honoured, server logs
sent at the chosen level) and progress notifications from learn_patterns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcp import Client

from agent_memory.server.app import build_server
from agent_memory.storage.factory import open_store
from tests.support import settings_for


async def _seed(client: Client, n: int = 40) -> None:
    for i in range(n):
        for decision_type in ("SOURCE_SELECTION", "RISK_ASSESSMENT"):
            logged = await client.call_tool(
                "log_decision",
                {
                    "decision_type": decision_type,
                    "context": {"whales": i % 10},
                    "decision_id": f"{decision_type[:1]}{i}",
                },
            )
            assert not logged.is_error, logged.content
            recorded = await client.call_tool(
                "record_outcome", {"decision_id": f"{decision_type[:1]}{i}", "success": i % 10 >= 5}
            )
            assert not recorded.is_error, recorded.content


async def test_logging_set_level_is_honoured(tmp_path: Path) -> None:
    """A handshake-era client (the protocol versions that have logging/setLevel)."""
    received: list[Any] = []

    async def on_log(params: Any) -> None:
        received.append(params)

    settings = settings_for(tmp_path, sqlite_path=tmp_path / "m.db", agent_id="hunter")
    async with open_store(settings) as store:
        server = build_server(settings, store=store)
        async with Client(server, logging_callback=on_log, mode="legacy") as client:
            assert client.server_capabilities is not None and client.server_capabilities.logging is not None
            await _seed(client, 25)
            # Default level (warning): learn_patterns's info line is not sent.
            assert not (
                await client.call_tool("learn_patterns", {"window": "30d", "min_samples": 10})
            ).is_error
            assert received == []
            await client.set_logging_level("info")  # type: ignore[deprecated]
            assert not (
                await client.call_tool("learn_patterns", {"window": "30d", "min_samples": 10})
            ).is_error
            assert [r.level for r in received] == ["info"]
            assert "learn_patterns for hunter" in str(received[0].data)
            assert received[0].logger == "agent_memory.memory.learner"
            await client.set_logging_level("error")  # type: ignore[deprecated]
            assert not (
                await client.call_tool("learn_patterns", {"window": "30d", "min_samples": 10})
            ).is_error
            assert len(received) == 1


async def test_a_2026_client_gets_logs_at_the_level_its_request_carries(tmp_path: Path) -> None:
    received: list[Any] = []

    async def on_log(params: Any) -> None:
        received.append(params)

    settings = settings_for(tmp_path, sqlite_path=tmp_path / "m.db", agent_id="hunter")
    async with open_store(settings) as store:
        server = build_server(settings, store=store)
        async with Client(server, logging_callback=on_log, log_level="info") as client:
            assert not (
                await client.call_tool("learn_patterns", {"window": "30d", "min_samples": 10})
            ).is_error
        async with Client(server, logging_callback=on_log) as client:  # no level: nothing is sent
            assert not (
                await client.call_tool("learn_patterns", {"window": "30d", "min_samples": 10})
            ).is_error
    assert [r.level for r in received] == ["info"]


async def test_learn_patterns_reports_progress_when_asked(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, sqlite_path=tmp_path / "m.db", agent_id="hunter")
    async with open_store(settings) as store:
        server = build_server(settings, store=store)
        async with Client(server) as client:
            await _seed(client, 25)
            updates: list[tuple[float, float | None, str | None]] = []

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                updates.append((progress, total, message))

            result = await client.call_tool(
                "learn_patterns", {"window": "30d", "min_samples": 10}, progress_callback=on_progress
            )
            assert not result.is_error, result.content
            assert [(p, t) for p, t, _ in updates] == [(1, 2), (2, 2)]
            assert "RISK_ASSESSMENT" in (updates[0][2] or "") and "SOURCE_SELECTION" in (updates[1][2] or "")
