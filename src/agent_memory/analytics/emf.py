"""CloudWatch Embedded Metric Format (EMF): one JSON log line per decision and per outcome.

A record is a structured log line that CloudWatch Logs turns into metrics without any API call:

    {"_aws": {"Timestamp": 1764000000000,
              "CloudWatchMetrics": [{"Namespace": "AgentMemory",
                                     "Dimensions": [["agent_id", "decision_type"]],
                                     "Metrics": [{"Name": "DecisionCount", "Unit": "Count"}]}]},
     "agent_id": "trader-1", "decision_type": "entry", "DecisionCount": 1}

Metrics (dimensions agent_id x decision_type, and ``service`` alone for the fleet-wide series the
alarms watch): ``DecisionCount`` (1 per decision), and per outcome ``SuccessCount`` (1 or 0: its
Average is the success rate), ``LatencyMs`` (Milliseconds) and ``QualityScore`` when the outcome
carries them. Only the metrics present in a record are declared in it, as the specification
requires.

One record per tool call (dimensions ``tool``, and ``service``): ``CallCount`` (1),
``ErrorCount`` (1 when the call answered with an error: its Average is the error rate),
``ThrottleCount`` (1 when the error was DynamoDB throttling), ``CallLatencyMs`` (the server's
time on the call), ``StorageRequests``, ``ReadUnits`` and ``WriteUnits`` (the capacity units
the call consumed, as :mod:`agent_memory.storage.usage` computes them: the cost per tool is
their sum times the on-demand prices; deploy/template.yaml's dashboard draws it).

Destinations (``AGENT_MEMORY_EMF_METRICS``): ``off`` (default, no-op), ``stdout`` (Lambda, ECS
with the awslogs driver), ``stderr``, ``file`` (``AGENT_MEMORY_EMF_FILE``, for the CloudWatch
agent). A stdio MCP server owns stdout for the protocol: ``stdout`` is refused there.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from typing import IO, Any

from agent_memory.config import Settings
from agent_memory.errors import ConfigurationError
from agent_memory.models import Decision, Outcome, utcnow
from agent_memory.storage.usage import Usage

__all__ = [
    "CALL_DIMENSIONS",
    "CALL_METRICS",
    "DECISION_METRICS",
    "DIMENSIONS",
    "SERVICE",
    "MetricsEmitter",
    "call_record",
    "decision_record",
    "outcome_record",
]

DIMENSIONS = ["agent_id", "decision_type"]
CALL_DIMENSIONS = ["tool"]
SERVICE = "agent-memory"
"""Value of the ``service`` dimension: one series per metric over the whole fleet (alarms cannot
aggregate a search over dimensions, so the records carry a dimension set that does it)."""
DECISION_METRICS = {
    "DecisionCount": "Count",
    "SuccessCount": "Count",
    "LatencyMs": "Milliseconds",
    "QualityScore": "None",
}
CALL_METRICS = {
    "CallCount": "Count",
    "ErrorCount": "Count",
    "ThrottleCount": "Count",
    "CallLatencyMs": "Milliseconds",
    "StorageRequests": "Count",
    "ReadUnits": "Count",
    "WriteUnits": "Count",
}
_UNITS = {**DECISION_METRICS, **CALL_METRICS}
THROTTLED = "throttled"
"""The error code of a call DynamoDB kept throttling (errors.Throttled)."""


def _envelope(
    namespace: str,
    when: datetime,
    dimensions: list[str],
    labels: dict[str, str],
    values: dict[str, float | int],
) -> dict[str, Any]:
    return {
        "_aws": {
            "Timestamp": int(when.timestamp() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [list(dimensions), ["service"]],
                    "Metrics": [{"Name": name, "Unit": _UNITS[name]} for name in values],
                }
            ],
        },
        **labels,
        "service": SERVICE,
        **values,
    }


def _record(
    namespace: str, when: datetime, agent_id: str, decision_type: str, values: dict[str, float | int]
) -> dict[str, Any]:
    labels = {"agent_id": agent_id, "decision_type": decision_type}
    return _envelope(namespace, when, DIMENSIONS, labels, values)


def call_record(
    namespace: str, when: datetime, tool: str, used: Usage, error_code: str | None, elapsed_ms: float
) -> dict[str, Any]:
    """The record of one tool call: its outcome, time and storage cost."""
    values: dict[str, float | int] = {
        "CallCount": 1,
        "ErrorCount": 1 if error_code else 0,
        "ThrottleCount": 1 if error_code == THROTTLED else 0,
        "CallLatencyMs": round(elapsed_ms, 3),
        "StorageRequests": used.requests,
        "ReadUnits": used.read_units,
        "WriteUnits": used.write_units,
    }
    return _envelope(namespace, when, CALL_DIMENSIONS, {"tool": tool}, values)


def _outcome_values(outcome: Outcome) -> dict[str, float | int]:
    values: dict[str, float | int] = {"SuccessCount": 1 if outcome.success else 0}
    if outcome.latency_ms is not None:
        values["LatencyMs"] = outcome.latency_ms
    if outcome.quality_score is not None:
        values["QualityScore"] = outcome.quality_score
    return values


def decision_record(namespace: str, decision: Decision) -> dict[str, Any]:
    """The record of a logged decision (with its outcome's metrics when logged with one)."""
    values: dict[str, float | int] = {"DecisionCount": 1}
    if decision.outcome is not None:
        values.update(_outcome_values(decision.outcome))
    return _record(namespace, decision.created_at, decision.agent_id, decision.decision_type, values)


def outcome_record(namespace: str, agent_id: str, decision_type: str, outcome: Outcome) -> dict[str, Any]:
    """The record of an outcome recorded after its decision."""
    return _record(namespace, outcome.recorded_at, agent_id, decision_type, _outcome_values(outcome))


class MetricsEmitter:
    """Writes EMF records as configured by ``settings.emf_metrics``.

    ``stdio_server`` says the process serves MCP over stdio, where stdout carries the protocol:
    ``emf_metrics=stdout`` is then refused with :class:`ConfigurationError` at construction.
    Writing never raises into a tool call: a failing destination is reported once on stderr and
    the record dropped (metrics are best effort; the memory is not).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        stdio_server: bool,
        stream: IO[str] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.mode = settings.emf_metrics
        self.namespace = settings.emf_namespace
        self.clock = clock
        self._lock = threading.Lock()
        self._owned: IO[str] | None = None
        self._warned = False
        if self.mode == "stdout" and stdio_server:
            raise ConfigurationError(
                "AGENT_MEMORY_EMF_METRICS=stdout cannot be used by a stdio MCP server: stdout carries "
                "the MCP protocol. Use AGENT_MEMORY_EMF_METRICS=stderr, or file with "
                "AGENT_MEMORY_EMF_FILE, or serve over HTTP."
            )
        self._stream: IO[str] | None
        if stream is not None:
            self._stream = stream if self.mode != "off" else None
        elif self.mode == "stdout":
            self._stream = sys.stdout
        elif self.mode == "stderr":
            self._stream = sys.stderr
        elif self.mode == "file":
            if settings.emf_file is None:  # Settings refuses this combination; be explicit anyway
                raise ConfigurationError("AGENT_MEMORY_EMF_METRICS=file needs AGENT_MEMORY_EMF_FILE")
            try:
                settings.emf_file.parent.mkdir(parents=True, exist_ok=True)
                self._owned = open(settings.emf_file, "a", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                raise ConfigurationError(
                    f"AGENT_MEMORY_EMF_FILE {str(settings.emf_file)!r} cannot be opened for appending: {exc}"
                ) from exc
            self._stream = self._owned
        else:
            self._stream = None

    @property
    def enabled(self) -> bool:
        return self._stream is not None

    def emit_decision(self, decision: Decision) -> None:
        if self._stream is not None:
            self._write(decision_record(self.namespace, decision))

    def emit_outcome(self, agent_id: str, decision_type: str, outcome: Outcome) -> None:
        if self._stream is not None:
            self._write(outcome_record(self.namespace, agent_id, decision_type, outcome))

    def emit_call(self, tool: str, used: Usage, error_code: str | None, elapsed_ms: float) -> None:
        if self._stream is not None:
            self._write(call_record(self.namespace, self.clock(), tool, used, error_code, elapsed_ms))

    def _write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n"
        stream = self._stream
        if stream is None:
            return
        try:
            with self._lock:  # one line per write: records never interleave
                stream.write(line)
                stream.flush()
        except (OSError, ValueError) as exc:
            if not self._warned:
                self._warned = True
                print(
                    f"agent-memory: EMF metrics could not be written ({exc}); dropping them", file=sys.stderr
                )

    def close(self) -> None:
        if self._owned is not None:
            self._owned.close()
            self._owned = None
        self._stream = None
