"""CloudWatch Embedded Metric Format records: valid JSON lines of the specification's shape."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent_memory.analytics.emf import CALL_METRICS, MetricsEmitter, decision_record, outcome_record
from agent_memory.errors import ConfigurationError
from agent_memory.models import Decision, Outcome
from agent_memory.server.app import build_server
from tests.support import settings_for

WHEN = datetime(2026, 11, 24, 10, 0, 0, 250000, tzinfo=UTC)
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second",
    "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second",
    "Count/Second", "None",
}  # fmt: skip


def decision(outcome: Outcome | None = None) -> Decision:
    return Decision(
        decision_id="dec-1",
        agent_id="trader-1",
        decision_type="entry",
        created_at=WHEN,
        expires_at=WHEN.replace(year=2027),
        outcome=outcome,
    )


def assert_emf(record: dict[str, Any]) -> None:
    """The EMF specification's rules, checked one by one."""
    meta = record["_aws"]
    assert isinstance(meta["Timestamp"], int) and meta["Timestamp"] > 0
    directives = meta["CloudWatchMetrics"]
    assert isinstance(directives, list) and directives
    for directive in directives:
        assert set(directive) <= {"Namespace", "Dimensions", "Metrics"}
        assert isinstance(directive["Namespace"], str) and 1 <= len(directive["Namespace"]) <= 1024
        assert isinstance(directive["Dimensions"], list)
        for dimension_set in directive["Dimensions"]:
            assert isinstance(dimension_set, list) and len(dimension_set) <= 30
            for name in dimension_set:
                # every dimension names a string member of the root
                assert isinstance(record[name], str) and 1 <= len(record[name]) <= 1024
        assert 1 <= len(directive["Metrics"]) <= 100
        for metric in directive["Metrics"]:
            assert set(metric) <= {"Name", "Unit", "StorageResolution"}
            assert isinstance(record[metric["Name"]], int | float) and not isinstance(
                record[metric["Name"]], bool
            )
            assert metric.get("Unit", "None") in UNITS


def test_decision_record_shape() -> None:
    record = json.loads(json.dumps(decision_record("AgentMemory", decision())))
    assert_emf(record)
    assert record["_aws"]["Timestamp"] == int(WHEN.timestamp() * 1000)
    directive = record["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "AgentMemory"
    # per agent and type, and one fleet-wide series (what the alarms watch)
    assert directive["Dimensions"] == [["agent_id", "decision_type"], ["service"]]
    assert directive["Metrics"] == [{"Name": "DecisionCount", "Unit": "Count"}]
    assert (record["agent_id"], record["decision_type"], record["DecisionCount"]) == ("trader-1", "entry", 1)


def test_outcome_record_declares_only_present_metrics() -> None:
    full = outcome_record(
        "NS", "trader-1", "exit", Outcome(success=True, quality_score=0.8, latency_ms=1234.5)
    )
    assert_emf(full)
    assert {m["Name"]: m["Unit"] for m in full["_aws"]["CloudWatchMetrics"][0]["Metrics"]} == {
        "SuccessCount": "Count",
        "LatencyMs": "Milliseconds",
        "QualityScore": "None",
    }
    assert (full["SuccessCount"], full["LatencyMs"], full["QualityScore"]) == (1, 1234.5, 0.8)
    bare = outcome_record("NS", "trader-1", "exit", Outcome(success=False))
    assert_emf(bare)
    assert [m["Name"] for m in bare["_aws"]["CloudWatchMetrics"][0]["Metrics"]] == ["SuccessCount"]
    assert bare["SuccessCount"] == 0 and "LatencyMs" not in bare
    # a decision logged with its outcome carries both
    both = decision_record("NS", decision(Outcome(success=True, latency_ms=5.0)))
    assert_emf(both)
    assert [m["Name"] for m in both["_aws"]["CloudWatchMetrics"][0]["Metrics"]] == [
        "DecisionCount",
        "SuccessCount",
        "LatencyMs",
    ]


def test_emitter_writes_one_json_line_per_record(tmp_path: Path) -> None:
    stream = io.StringIO()
    emitter = MetricsEmitter(
        settings_for(tmp_path, emf_metrics="stderr", emf_namespace="Desk"), stdio_server=True, stream=stream
    )
    assert emitter.enabled
    emitter.emit_decision(decision())
    emitter.emit_outcome("trader-1", "entry", Outcome(success=True, quality_score=0.5, latency_ms=10))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    records = [json.loads(line) for line in lines]
    for record in records:
        assert_emf(record)
        assert record["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Desk"
    assert records[1]["LatencyMs"] == 10


def test_emitter_to_stderr_and_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    MetricsEmitter(settings_for(tmp_path, emf_metrics="stderr"), stdio_server=True).emit_decision(decision())
    MetricsEmitter(settings_for(tmp_path, emf_metrics="stdout"), stdio_server=False).emit_decision(decision())
    out, err = capsys.readouterr()
    assert_emf(json.loads(err))
    assert_emf(json.loads(out))


def test_stdout_is_refused_for_a_stdio_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigurationError, match="stdout"):
        MetricsEmitter(settings_for(tmp_path, emf_metrics="stdout"), stdio_server=True)
    assert capsys.readouterr().out == ""


def test_off_is_a_no_op(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    emitter = MetricsEmitter(settings_for(tmp_path), stdio_server=True, stream=stream)
    assert not emitter.enabled
    emitter.emit_decision(decision())
    emitter.emit_outcome("trader-1", "entry", Outcome(success=True))
    assert stream.getvalue() == "" and capsys.readouterr() == ("", "")


def test_file_mode_appends_lines(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "emf.log"
    settings = settings_for(tmp_path, emf_metrics="file", emf_file=path)
    for _ in range(2):
        emitter = MetricsEmitter(settings, stdio_server=True)
        emitter.emit_decision(decision())
        emitter.close()
        emitter.emit_decision(decision())  # after close: dropped, no error
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    for line in lines:
        assert_emf(json.loads(line))


def test_a_broken_destination_never_raises(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    stream.close()
    emitter = MetricsEmitter(settings_for(tmp_path, emf_metrics="stderr"), stdio_server=True, stream=stream)
    emitter.emit_decision(decision())
    emitter.emit_decision(decision())
    assert capsys.readouterr().err.count("EMF metrics could not be written") == 1


async def test_every_tool_call_emits_its_outcome_time_and_cost(tmp_path: Path) -> None:
    """Through the real MCP client on the embedded store: one record per call, errors counted."""
    from mcp import Client

    path = tmp_path / "emf.log"
    settings = settings_for(
        tmp_path, agent_id="trader-1", sqlite_path=tmp_path / "m.db", emf_metrics="file", emf_file=path
    )
    async with Client(build_server(settings)) as client:
        ok = await client.call_tool("log_decision", {"decision_type": "ENTRY"})
        bad = await client.call_tool("record_outcome", {"decision_id": "no-such-decision", "success": True})
    assert not ok.is_error and bad.is_error
    records = [json.loads(line) for line in path.read_text().splitlines()]
    calls = [r for r in records if "tool" in r]
    for record in calls:
        assert_emf(record)
        assert record["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["tool"], ["service"]]
        assert {m["Name"] for m in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]} == set(CALL_METRICS)
    by_tool = {r["tool"]: r for r in calls}
    assert by_tool["log_decision"]["ErrorCount"] == 0 and by_tool["log_decision"]["StorageRequests"] >= 1
    assert by_tool["record_outcome"]["ErrorCount"] == 1 and by_tool["record_outcome"]["ThrottleCount"] == 0
    assert all(r["CallCount"] == 1 and r["CallLatencyMs"] > 0 for r in calls)
    assert any(r.get("DecisionCount") == 1 for r in records)  # the decision's own record too
