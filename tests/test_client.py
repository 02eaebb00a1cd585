"""MemoryClient end to end: real ``agent-memory serve`` subprocesses over stdio, on every backend.

Two servers act as two agents on one memory (a SQLite file, or DynamoDB tables on DynamoDB Local);
the client's typed methods must round-trip every tool and turn tool errors into MemoryToolError.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent_memory.api.analytics import AnalyticsReport
from agent_memory.client import DecisionPlan, MemoryAwareAgent, MemoryClient, MemoryToolError
from agent_memory.errors import AccessDenied, InvalidInput, NotFound, VersionConflict
from agent_memory.models import InboxEntry, Pattern, PatternCondition
from tests.fixtures.dynamodb import FAKE_AWS_ENV, dynamo_settings

BACKENDS = [b for b in os.environ.get("AGENT_MEMORY_TEST_BACKENDS", "sqlite,dynamodb").split(",") if b]


@dataclass
class Launch:
    """How to start a server on the backend under test."""

    env: dict[str, str]
    sqlite_path: Path | None


@pytest.fixture(params=BACKENDS)
async def launch(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Launch]:
    if request.param == "sqlite":
        yield Launch({"AGENT_MEMORY_BACKEND": "sqlite"}, tmp_path / "memory.db")
        return
    from agent_memory.storage.dynamodb import create_tables, delete_tables

    endpoint: str = request.getfixturevalue("dynamodb_endpoint")
    settings = dynamo_settings(endpoint, f"c{uuid.uuid4().hex[:10]}_")
    await create_tables(settings)
    env = {
        **FAKE_AWS_ENV,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AGENT_MEMORY_BACKEND": "dynamodb",
        "AGENT_MEMORY_DYNAMODB_ENDPOINT_URL": endpoint,
        "AGENT_MEMORY_TABLE_PREFIX": settings.table_prefix,
        "AGENT_MEMORY_AWS_REGION": "us-east-1",
    }
    try:
        yield Launch(env, None)
    finally:
        await delete_tables(settings)


async def test_two_agents_share_one_memory_over_stdio(launch: Launch) -> None:
    async with (
        MemoryClient.stdio("hunter", sqlite_path=launch.sqlite_path, env=launch.env) as hunter,
        MemoryClient.stdio("risk", sqlite_path=launch.sqlite_path, env=launch.env) as risk,
    ):
        assert hunter.agent_id == "hunter"

        # decisions and short-term memory
        context = {"market": {"trend": "bullish"}, "whale_count": 6}
        logged = await hunter.log_decision(
            "SOURCE_SELECTION", context=context, reasoning={"chosen": "whale_alert"}, decision_id="d-1"
        )
        assert logged.created and logged.decision_id == "d-1"
        whole = await hunter.get_decision("d-1")
        assert whole.agent_id == "hunter" and whole.context == context
        retry = await hunter.log_decision(
            "SOURCE_SELECTION", context=context, reasoning={"chosen": "whale_alert"}, decision_id="d-1"
        )
        assert not retry.created
        outcome = await hunter.record_outcome("d-1", True, quality_score=0.8, latency_ms=120)
        assert outcome.recorded and outcome.decision_id == "d-1"
        recorded = (await hunter.get_decision("d-1")).outcome
        assert recorded is not None and recorded.success and recorded.quality_score == 0.8
        await hunter.store_stm("context/market", {"trend": "bullish"}, ttl_minutes=30)
        stm = await hunter.recall_stm()
        assert [d.decision_id for d in stm.decisions] == ["d-1"]
        assert [n.key for n in stm.notes] == ["context/market"]
        found = await hunter.search_decisions(decision_type="SOURCE_SELECTION", success=True)
        assert [d.decision_id for d in found.decisions] == ["d-1"]

        # the other agent's memory is its own
        assert (await risk.recall_stm()).decisions == []

        # signals: publish -> inbox -> ack linked to a decision
        published = await hunter.publish_signal(
            "WHALE_ACTIVITY", {"whale_count": 6}, ["risk"], 0.8, severity="high", recommended_action="ASSESS"
        )
        assert published.created and published.signal_id.startswith("sig_")  # a client-made id
        assert (await risk.get_signal(published.signal_id)).source_agent == "hunter"
        inbox = await risk.read_inbox()
        assert [e.signal_id for e in inbox.entries] == [published.signal_id]
        assert inbox.entries[0].data == {"whale_count": 6}
        assessed = await risk.log_decision(
            "RISK_ASSESSMENT", parent_decision_id="d-1", parent_agent_id="hunter"
        )
        ack = await risk.ack_signal(published.signal_id, "processed", decision_id=assessed.decision_id)
        assert ack.acknowledged and ack.status == "processed"
        assert ack.decision_id == assessed.decision_id
        assert (await risk.read_inbox()).entries == []
        assert len((await risk.read_inbox(status="processed")).entries) == 1
        with pytest.raises(AccessDenied) as denied:  # the error tree's class, read from the data
            await hunter.ack_signal(published.signal_id, "processed")
        assert isinstance(denied.value, MemoryToolError) and not denied.value.retryable
        assert denied.value.tool == "ack_signal" and denied.value.code == "access_denied"

        # patterns: store, share, recall by context, history
        pattern = await hunter.store_pattern(
            "whales in a bull market pump",
            [
                PatternCondition(field="market.trend", op="eq", value="bullish"),
                {"field": "whale_count", "op": "gte", "value": 5},
            ],
            outcomes={"pump": True},
            confidence=0.7,
            success_rate=0.8,
            sample_size=40,
            domain="trading",
        )
        assert pattern.version == 1 and pattern.pattern_id.startswith("pat_")
        assert (await risk.recall_patterns(context)).patterns == []  # private so far
        shared = await hunter.share_pattern(pattern.pattern_id, ["risk"])
        assert shared.version == 2
        recalled = await risk.recall_patterns(context, domain="trading")
        assert [p.pattern_id for p in recalled.patterns] == [pattern.pattern_id]
        assert (await risk.recall_patterns({"market": {"trend": "bearish"}, "whale_count": 6})).patterns == []
        cited = await risk.log_decision(
            "RISK_ASSESSMENT", context=context, patterns_applied=[pattern.pattern_id]
        )
        assert (await risk.get_decision(cited.decision_id)).memory_influenced
        history = await hunter.pattern_history(pattern.pattern_id)
        assert [p.version for p in history.patterns] == [2, 1]
        learned = await hunter.learn_patterns(window="24h", min_samples=5)
        assert learned.decisions_examined == 1 and learned.created == 0 and learned.top_pattern_ids == []

        # state: optimistic concurrency, the conflict carries the server's message and the state
        state = await hunter.get_state()
        assert state.version == 0
        updated = await hunter.update_state({"current": {"cycle": 1}}, 0, checkpoint="start")
        assert updated.version == 1 and updated.checkpoint == "start"
        assert (await hunter.get_state()).current == {"cycle": 1}
        with pytest.raises(VersionConflict) as stale:
            await hunter.update_state({"current": {"cycle": 2}}, 0)
        error = stale.value
        assert isinstance(error, MemoryToolError) and error.retryable
        assert error.tool == "update_state" and error.code == "version_conflict"
        assert "stale" in error.message and "expected_version=1" in error.message
        assert not error.message.startswith("Error executing tool")
        assert error.current is not None and error.current["version"] == 1
        assert (await hunter.get_state()).current == {"cycle": 1}

        # errors name what to change
        with pytest.raises(NotFound) as missing:
            await hunter.record_outcome("no-such-decision", True)
        assert missing.value.code == "not_found" and "no-such-decision" in missing.value.message
        with pytest.raises(InvalidInput) as invalid:
            await hunter.log_decision("not a type!")
        assert invalid.value.code == "invalid_input"
        assert invalid.value.message.startswith("decision_type: invalid type 'not a type!'")

        # analytics: the report model
        report = await hunter.get_analytics(window="24h")
        assert isinstance(report, AnalyticsReport)
        assert report.agents == ["hunter"]
        assert report.totals.decisions == 1 and report.totals.successes == 1


class Assessor(MemoryAwareAgent):
    """Approves every alert, citing the patterns that hold."""

    async def decide(
        self, context: dict[str, Any], patterns: list[Pattern], signals: list[InboxEntry]
    ) -> DecisionPlan | None:
        if not signals:
            return None
        return DecisionPlan(
            "RISK_ASSESSMENT",
            reasoning={"verdict": "approve", "signals": len(signals)},
            patterns_applied=[p.pattern_id for p in patterns],
        )


async def test_memory_aware_agent_runs_a_cycle(tmp_path: Path) -> None:
    store = tmp_path / "memory.db"
    async with (
        MemoryClient.stdio("hunter", sqlite_path=store) as hunter,
        MemoryClient.stdio("risk", sqlite_path=store) as risk_client,
    ):
        agent = Assessor(risk_client)
        quiet = await agent.run_cycle({"whale_count": 1})
        assert quiet.plan is None and quiet.decision is None and quiet.acks == []
        assert quiet.short_term is not None and quiet.short_term.decisions == []

        pattern = await risk_client.store_pattern(
            "many whales",
            [{"field": "whale_count", "op": "gte", "value": 5}],
            outcomes={},
            confidence=0.6,
            success_rate=0.7,
            sample_size=20,
        )
        sent = await hunter.publish_signal("WHALE_ACTIVITY", {"n": 6}, ["risk"], 0.9)
        result = await agent.run_cycle({"whale_count": 6})
        assert [p.pattern_id for p in result.patterns] == [pattern.pattern_id]
        assert result.decision is not None and result.decision_id is not None
        logged = await risk_client.get_decision(result.decision_id)
        assert logged.patterns_applied == [pattern.pattern_id]
        assert logged.memory_influenced
        assert logged.context == {"whale_count": 6}
        assert [a.signal_id for a in result.acks] == [sent.signal_id]
        assert result.acks[0].status == "processed"
        assert result.acks[0].decision_id == result.decision_id
        assert (await risk_client.read_inbox()).entries == []


async def test_stdio_accepts_an_explicit_command(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "agent_memory.cli", "serve", "--read-only"]
    # The command runs this interpreter; give it this checkout's import path when the tests have one.
    env = {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else None
    async with MemoryClient.stdio(
        "reader", sqlite_path=tmp_path / "m.db", command=command, env=env
    ) as reader:
        state = await reader.get_state()
        assert state.agent_id == "reader" and state.version == 0
        raw = await reader.call("get_state")
        assert raw["agent_id"] == "reader"
        with pytest.raises(MemoryToolError) as refused:  # a read-only server has no write tools
            await reader.log_decision("X")
        assert refused.value.tool == "log_decision"


async def test_from_client_wraps_an_in_process_session(tmp_path: Path) -> None:
    from mcp import Client

    from agent_memory.config import Settings
    from agent_memory.server.app import build_server

    server = build_server(Settings(agent_id="inproc", sqlite_path=tmp_path / "m.db"))
    async with Client(server) as raw:
        memory = MemoryClient.from_client(raw)
        logged = await memory.log_decision("X", context={"k": 1}, outcome={"success": True})
        whole = await memory.get_decision(logged.decision_id)
        assert whole.agent_id == "inproc" and whole.outcome is not None and whole.outcome.success
        report = await memory.get_analytics(window="24h")
        assert report.totals.successes == 1
        with pytest.raises(InvalidInput) as invalid:
            await memory.store_stm("bad key!", 1)
        assert isinstance(invalid.value, MemoryToolError)
        assert invalid.value.tool == "store_stm" and invalid.value.message.startswith("key: invalid key")


# --------------------------------------------------------------------------------------------------
# the client on its own: what it checks before sending, its ids, its timeout, what it imports
# --------------------------------------------------------------------------------------------------


class Unreachable:
    """An ``mcp.Client`` stand-in that records calls: the checks below must refuse before sending."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.delay = delay

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        import anyio

        self.calls.append((name, arguments))
        await anyio.sleep(self.delay)
        raise AssertionError("should have timed out")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.log_decision("X", context={"p": float("nan")}), "NaN and infinity cannot be stored"),
        (lambda m: m.store_stm("k", {"x": float("inf")}), "NaN and infinity cannot be stored"),
        (lambda m: m.store_stm("k", "\ud800 lone"), "lone surrogate"),
        (lambda m: m.publish_signal("X", {"t": "\udfff"}, ["a"], 0.5), "lone surrogate"),
        (lambda m: m.store_stm("k", _nested(40)), "nested deeper than 29 levels"),
        (lambda m: m.publish_signal("X", {}, ["a"], 1.5), "confidence: must be at most 1 (got 1.5)"),
        (lambda m: m.recall_stm(limit=0), "limit: must be at least 1 (got 0)"),
    ],
)
async def test_client_refuses_what_the_server_would_before_sending(call: Any, message: str) -> None:
    stub = Unreachable()
    memory = MemoryClient(stub)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput) as refused:
        await call(memory)
    assert message in refused.value.message and refused.value.code == "invalid_input"
    assert isinstance(refused.value, MemoryToolError) and stub.calls == []


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


async def test_client_times_out_and_makes_retry_safe_ids() -> None:
    stub = Unreachable(delay=5)
    memory = MemoryClient(stub, timeout_s=0.05, retries=0)  # type: ignore[arg-type]
    with pytest.raises(MemoryToolError) as late:
        await memory.log_decision("X")
    assert late.value.code == "timeout" and late.value.retryable
    await_log = stub.calls[0][1]["decision_id"]
    assert await_log.startswith("dec_") and len(await_log) == 24
    with pytest.raises(MemoryToolError):
        await memory.publish_signal("X", {}, ["a"], 0.5)
    assert stub.calls[1][1]["signal_id"].startswith("sig_")
    with pytest.raises(MemoryToolError):
        await memory.log_decision("X", decision_id="mine")
    assert stub.calls[2][1]["decision_id"] == "mine"
    with pytest.raises(MemoryToolError):
        await memory.update_state({"current": {"a": 1}}, 0)
    assert stub.calls[3][1]["request_id"].startswith("upd_")
    assert len(stub.calls) == 4  # retries=0: each call sent once


async def test_the_client_has_a_default_timeout_and_retries_only_what_is_safe_to_repeat() -> None:
    from agent_memory.client import DEFAULT_RETRIES, DEFAULT_TIMEOUT_S

    assert MemoryClient(Unreachable()).timeout_s == DEFAULT_TIMEOUT_S == 30  # type: ignore[arg-type]
    stub = Unreachable(delay=5)
    memory = MemoryClient(stub, timeout_s=0.05)  # type: ignore[arg-type]
    assert memory.retries == DEFAULT_RETRIES == 1
    with pytest.raises(MemoryToolError) as late:
        await memory.update_state({"current": {"a": 1}}, 0)
    assert late.value.code == "timeout"
    # Sent twice, with the same request id: the server answers the second like the first.
    (first, a), (second, b) = stub.calls
    assert first == second == "update_state" and a == b and a["request_id"].startswith("upd_")
    stub.calls.clear()
    with pytest.raises(MemoryToolError):
        await memory.log_decision("X")
    assert [c[1]["decision_id"] for c in stub.calls] == [stub.calls[0][1]["decision_id"]] * 2
    for not_safe in (
        lambda: memory.consume_budget("k", 1, "1m"),  # a repeat would spend the budget twice
        lambda: memory.store_pattern("r", [], outcomes={}, confidence=0.5, success_rate=0.5, sample_size=1),
    ):
        stub.calls.clear()
        with pytest.raises(MemoryToolError):
            await not_safe()
        assert len(stub.calls) == 1, stub.calls
    with pytest.raises(ValueError, match="timeout_s"):
        MemoryClient(stub, timeout_s=0)  # type: ignore[arg-type]


CLIENT_MAY_IMPORT = ("agent_memory.api", "agent_memory.client", "agent_memory.models", "agent_memory.errors")
CLIENT_MAY_IMPORT_ALSO = (
    "agent_memory",
    "agent_memory.limits",
    "agent_memory.item_rules",
    "agent_memory.memo",
)
"""The record and error layers' own modules (constants and rules of the records, the bounded memo
the API's rounding keeps)."""


def _allowed(module: str) -> bool:
    return module in CLIENT_MAY_IMPORT_ALSO or any(
        module == prefix or module.startswith(prefix + ".") for prefix in CLIENT_MAY_IMPORT
    )


def test_importing_the_client_loads_no_server_code() -> None:
    import subprocess

    probe = (
        "import sys, agent_memory.client; "
        "print(sorted(m for m in sys.modules if m.startswith(('agent_memory', 'mcp.server', 'mcp.client'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    import ast

    loaded = ast.literal_eval(out.stdout)
    assert "agent_memory.client.memory" in loaded and "agent_memory.api.analytics" in loaded
    assert [m for m in loaded if not _allowed(m)] == []


def test_the_client_sources_import_only_the_api_records_and_errors() -> None:
    """Also the imports inside functions (a lazy import of the server would pass the probe above)."""
    import ast

    import agent_memory.client

    package = Path(agent_memory.client.__file__).parent
    for source in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                if name.startswith("agent_memory"):
                    assert _allowed(name), f"{source.name} imports {name}"
        assert len(source.read_text(encoding="utf-8").splitlines()) <= 600, source.name


def test_client_methods_match_the_tools() -> None:
    """Every tool has a MemoryClient method of the same name taking the same parameters, with the
    tool's required parameters required (and its optional ones optional)."""
    import inspect

    from agent_memory.api import TOOLS

    for name, spec in TOOLS.items():
        method = getattr(MemoryClient, name)
        params = {p.name: p for p in list(inspect.signature(method).parameters.values())[1:]}
        fields = spec.request.model_fields
        assert set(params) == set(fields), (name, set(params) ^ set(fields))
        for field_name, info in fields.items():
            client_required = params[field_name].default is inspect.Parameter.empty
            assert client_required == info.is_required(), (name, field_name)
    assert "request_id" in inspect.signature(MemoryClient.update_state).parameters


async def test_client_methods_match_the_published_input_schemas(tmp_path: Path) -> None:
    """The same, against what the server publishes in tools/list (what an MCP host sees)."""
    import inspect

    from mcp import Client

    from agent_memory.api import TOOLS
    from agent_memory.config import Settings
    from agent_memory.server.app import build_server

    server = build_server(Settings(agent_id="schemas", sqlite_path=tmp_path / "m.db"))
    async with Client(server) as raw:
        tools = (await raw.list_tools()).tools
    assert {t.name for t in tools} == set(TOOLS)
    for tool in tools:
        signature = inspect.signature(getattr(MemoryClient, tool.name))
        params = {p.name: p for p in list(signature.parameters.values())[1:]}
        schema = tool.input_schema
        assert set(params) == set(schema.get("properties", {})), tool.name
        required = {n for n, p in params.items() if p.default is inspect.Parameter.empty}
        assert required == set(schema.get("required", [])), tool.name
