"""A typed Python client for agent-memory, and a base class for memory-aware agents.

For agents that are programs rather than LLMs: instead of hand-writing tool calls and reading JSON,
call methods with typed arguments and get back the same pydantic models the tools return::

    async with MemoryClient.stdio("market-hunter") as memory:
        logged = await memory.log_decision("SOURCE_SELECTION", context={"whale_count": 6})
        await memory.record_outcome(logged.decision.decision_id, success=True)

``MemoryClient.stdio`` launches ``agent-memory serve`` as a subprocess acting as that agent (the
identity comes from the launch environment, as for any stdio client). ``MemoryClient.from_client``
wraps an ``mcp.Client`` you already connected (in-process, streamable HTTP with a bearer token...).

A tool error (bad input, a version conflict, a record not found) raises :class:`MemoryToolError`
carrying the server's message, which says what to change.

:class:`MemoryAwareAgent` implements the cycle the server's instructions describe (recall, read the
inbox, recall patterns, decide, log, acknowledge); subclasses write only ``decide``.
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TextIO, TypeVar

from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from pydantic import BaseModel

from agent_memory.memory.analytics import AnalyticsReport
from agent_memory.models import AgentState, InboxEntry, Note, Pattern, PatternCondition, Severity
from agent_memory.tools.decisions import (
    DecisionPage,
    LogDecisionResult,
    OutcomeInput,
    OutcomeResult,
    ShortTermResult,
)
from agent_memory.tools.patterns import LearnResult, PatternList
from agent_memory.tools.signals import AckResult, InboxPage, PublishResult

__all__ = [
    "CycleResult",
    "DecisionPlan",
    "MemoryAwareAgent",
    "MemoryClient",
    "MemoryToolError",
]

M = TypeVar("M", bound=BaseModel)

_CODE = re.compile(r"^([a-z_]+): ")
_SDK_PREFIX = re.compile(r"^Error executing tool [^:\s]+: ")
"""What the MCP SDK puts before a tool's own error text."""


class MemoryToolError(Exception):
    """A tool call the server refused. ``message`` is the server's text, written for the caller.

    ``code`` is the error kind when the server named one (``invalid_input``, ``not_found``,
    ``version_conflict``, ...); ``current`` is the record as it is now when a conflict sent it
    (e.g. the current state after a stale ``update_state``), as JSON.
    """

    def __init__(self, tool: str, message: str) -> None:
        message = _SDK_PREFIX.sub("", message, count=1)
        super().__init__(f"{tool}: {message}")
        self.tool = tool
        self.message = message
        match = _CODE.match(message)
        self.code: str | None = match.group(1) if match else None
        self.current: dict[str, Any] | None = None
        _, sep, tail = message.partition("\ncurrent: ")
        if sep:
            try:
                parsed = json.loads(tail)
            except ValueError:  # truncated by the server (very large records)
                parsed = None
            if isinstance(parsed, dict):
                self.current = parsed


def _jsonable(value: Any) -> Any:
    """Arguments as JSON: pydantic models dumped, datetimes in ISO 8601, tuples as lists."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _server_log(errlog: TextIO | None, files: contextlib.ExitStack) -> TextIO:
    """Where the server's stderr goes: ``errlog``, else this process's stderr. The subprocess
    needs a real file descriptor, which a replaced ``sys.stderr`` (pytest's capsys, a notebook)
    may lack: then the original stderr, or nowhere."""
    for candidate in (errlog, sys.stderr, sys.__stderr__):
        if candidate is None:
            continue
        try:
            candidate.fileno()
        except (OSError, ValueError):
            if candidate is errlog:
                raise ValueError(
                    "errlog must be a file with a file descriptor (the server writes to it)"
                ) from None
            continue
        return candidate
    return files.enter_context(open(os.devnull, "w", encoding="utf-8"))


def default_server_command() -> list[str]:
    """``agent-memory serve`` run by this interpreter (works without the console script on PATH)."""
    return [sys.executable, "-m", "agent_memory.cli", "serve"]


class MemoryClient:
    """Typed methods over one MCP client session acting as one agent.

    Every method calls the tool of the same name and returns the tool's result model; arguments
    left as ``None`` are not sent, so the server's defaults apply.
    """

    def __init__(self, client: Client, agent_id: str | None = None) -> None:
        self.client = client
        """The underlying ``mcp.Client`` (for resources, prompts, or tools added later)."""
        self.agent_id = agent_id
        """The agent this session acts as, when known (stdio); the server decides it."""

    @classmethod
    def from_client(cls, client: Client, agent_id: str | None = None) -> MemoryClient:
        """Wrap an ``mcp.Client`` that is already connected (entered)."""
        return cls(client, agent_id)

    @classmethod
    @asynccontextmanager
    async def stdio(
        cls,
        agent_id: str,
        *,
        sqlite_path: Path | None = None,
        env: Mapping[str, str] | None = None,
        command: Sequence[str] | None = None,
        errlog: TextIO | None = None,
        cwd: Path | None = None,
    ) -> AsyncIterator[MemoryClient]:
        """Launch ``agent-memory serve`` acting as ``agent_id`` and connect to it over stdio.

        ``sqlite_path`` selects the embedded store file (several servers may share one); ``env``
        adds ``AGENT_MEMORY_*`` (or AWS) variables to the server's environment, which otherwise
        inherits only the MCP SDK's safe defaults (HOME, PATH, ...). ``command`` replaces the
        default ``python -m agent_memory.cli serve`` (e.g. ``["agent-memory", "serve"]``).
        The server's log lines (stderr) go to ``errlog`` (default: this process's stderr).
        The server stops when the block exits.
        """
        argv = list(command) if command is not None else default_server_command()
        if not argv:
            raise ValueError("command must name a program to run")
        server_env = dict(env or {})
        server_env["AGENT_MEMORY_AGENT_ID"] = agent_id
        if sqlite_path is not None:
            server_env["AGENT_MEMORY_SQLITE_PATH"] = str(sqlite_path)
        if command is None and "PYTHONPATH" in os.environ:
            # The default command runs this interpreter: give it this process's import path too
            # (the SDK passes only a few safe variables on to the server).
            server_env.setdefault("PYTHONPATH", os.environ["PYTHONPATH"])
        params = StdioServerParameters(command=argv[0], args=argv[1:], env=server_env, cwd=cwd)
        with contextlib.ExitStack() as files:
            transport = stdio_client(params, errlog=_server_log(errlog, files))
            async with Client(transport) as client:
                yield cls(client, agent_id)

    # ------------------------------------------------------------------------------------------
    # plumbing
    # ------------------------------------------------------------------------------------------

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        """Call any tool; return its structured result. ``None`` arguments are omitted."""
        args = {k: _jsonable(v) for k, v in arguments.items() if v is not None}
        result = await self.client.call_tool(tool, args)
        text = next((block.text for block in result.content if block.type == "text"), "")
        if result.is_error:
            raise MemoryToolError(tool, text or "the tool failed without a message")
        if result.structured_content is not None:
            return dict(result.structured_content)
        try:  # a server without output schemas: the text block carries the JSON
            parsed = json.loads(text)
        except ValueError as exc:
            raise MemoryToolError(tool, f"unexpected result (not JSON): {text[:200]}") from exc
        return parsed if isinstance(parsed, dict) else {"result": parsed}

    async def _call(self, model: type[M], tool: str, **arguments: Any) -> M:
        return model.model_validate(await self.call(tool, **arguments))

    # ------------------------------------------------------------------------------------------
    # decisions and short-term memory
    # ------------------------------------------------------------------------------------------

    async def log_decision(
        self,
        decision_type: str,
        *,
        context: Mapping[str, Any] | None = None,
        reasoning: Mapping[str, Any] | None = None,
        outcome: OutcomeInput | Mapping[str, Any] | None = None,
        decision_id: str | None = None,
        parent_decision_id: str | None = None,
        patterns_applied: Sequence[str] | None = None,
        memory_influenced: bool | None = None,
    ) -> LogDecisionResult:
        """Log a decision; keep ``result.decision.decision_id`` for :meth:`record_outcome`."""
        return await self._call(
            LogDecisionResult,
            "log_decision",
            decision_type=decision_type,
            context=context,
            reasoning=reasoning,
            outcome=outcome,
            decision_id=decision_id,
            parent_decision_id=parent_decision_id,
            patterns_applied=list(patterns_applied) if patterns_applied else None,
            memory_influenced=memory_influenced,
        )

    async def record_outcome(
        self,
        decision_id: str,
        success: bool,
        *,
        quality_score: float | None = None,
        latency_ms: float | None = None,
        signals_generated: int | None = None,
        errors: Sequence[str] | None = None,
    ) -> OutcomeResult:
        return await self._call(
            OutcomeResult,
            "record_outcome",
            decision_id=decision_id,
            success=success,
            quality_score=quality_score,
            latency_ms=latency_ms,
            signals_generated=signals_generated,
            errors=list(errors) if errors else None,
        )

    async def recall_stm(
        self, decision_type: str | None = None, *, limit: int | None = None, cursor: str | None = None
    ) -> ShortTermResult:
        return await self._call(
            ShortTermResult, "recall_stm", decision_type=decision_type, limit=limit, cursor=cursor
        )

    async def store_stm(self, key: str, value: Any, *, ttl_minutes: int | None = None) -> Note:
        return await self._call(Note, "store_stm", key=key, value=value, ttl_minutes=ttl_minutes)

    async def search_decisions(
        self,
        *,
        decision_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        success: bool | None = None,
        agent_id: str | None = None,
        all_agents: bool | None = None,
        oldest_first: bool | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> DecisionPage:
        return await self._call(
            DecisionPage,
            "search_decisions",
            decision_type=decision_type,
            since=since,
            until=until,
            success=success,
            agent_id=agent_id,
            all_agents=all_agents,
            oldest_first=oldest_first,
            limit=limit,
            cursor=cursor,
        )

    # ------------------------------------------------------------------------------------------
    # patterns (long-term memory)
    # ------------------------------------------------------------------------------------------

    async def store_pattern(
        self,
        description: str,
        conditions: Sequence[PatternCondition | Mapping[str, Any]],
        *,
        outcomes: Mapping[str, Any],
        confidence: float,
        success_rate: float,
        sample_size: int,
        pattern_id: str | None = None,
        domain: str | None = None,
        decision_type: str | None = None,
        shared_with: Sequence[str] | None = None,
        expected_version: int | None = None,
    ) -> Pattern:
        return await self._call(
            Pattern,
            "store_pattern",
            description=description,
            conditions=list(conditions),
            outcomes=outcomes,
            confidence=confidence,
            success_rate=success_rate,
            sample_size=sample_size,
            pattern_id=pattern_id,
            domain=domain,
            decision_type=decision_type,
            shared_with=list(shared_with) if shared_with is not None else None,
            expected_version=expected_version,
        )

    async def recall_patterns(
        self,
        context: Mapping[str, Any] | None = None,
        *,
        domain: str | None = None,
        decision_type: str | None = None,
        min_confidence: float | None = None,
        include_shared: bool | None = None,
        limit: int | None = None,
    ) -> PatternList:
        """Active patterns (highest confidence first); with ``context``, only those that hold."""
        return await self._call(
            PatternList,
            "recall_patterns",
            context=context,
            domain=domain,
            decision_type=decision_type,
            min_confidence=min_confidence,
            include_shared=include_shared,
            limit=limit,
        )

    async def share_pattern(self, pattern_id: str, shared_with: Sequence[str]) -> Pattern:
        # An empty list is meaningful here (make private), so it is always sent.
        return await self._call(
            Pattern, "share_pattern", pattern_id=pattern_id, shared_with=list(shared_with)
        )

    async def pattern_history(self, pattern_id: str, *, limit: int | None = None) -> PatternList:
        return await self._call(PatternList, "pattern_history", pattern_id=pattern_id, limit=limit)

    async def learn_patterns(
        self, *, decision_type: str | None = None, window: str | None = None, min_samples: int | None = None
    ) -> LearnResult:
        return await self._call(
            LearnResult,
            "learn_patterns",
            decision_type=decision_type,
            window=window,
            min_samples=min_samples,
        )

    # ------------------------------------------------------------------------------------------
    # signals
    # ------------------------------------------------------------------------------------------

    async def publish_signal(
        self,
        signal_type: str,
        data: Mapping[str, Any],
        target_agents: Sequence[str],
        confidence: float,
        *,
        severity: Severity | None = None,
        recommended_action: str | None = None,
        context: Mapping[str, Any] | None = None,
        ttl_hours: float | None = None,
        signal_id: str | None = None,
    ) -> PublishResult:
        return await self._call(
            PublishResult,
            "publish_signal",
            signal_type=signal_type,
            data=data,
            target_agents=list(target_agents),
            confidence=confidence,
            severity=severity,
            recommended_action=recommended_action,
            context=context,
            ttl_hours=ttl_hours,
            signal_id=signal_id,
        )

    async def read_inbox(
        self,
        *,
        status: Literal["pending", "processed", "rejected"] | None = None,
        signal_type: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> InboxPage:
        return await self._call(
            InboxPage, "read_inbox", status=status, signal_type=signal_type, limit=limit, cursor=cursor
        )

    async def ack_signal(
        self, signal_id: str, status: Literal["processed", "rejected"], *, decision_id: str | None = None
    ) -> AckResult:
        return await self._call(
            AckResult, "ack_signal", signal_id=signal_id, status=status, decision_id=decision_id
        )

    # ------------------------------------------------------------------------------------------
    # state and analytics
    # ------------------------------------------------------------------------------------------

    async def get_state(self) -> AgentState:
        return await self._call(AgentState, "get_state")

    async def update_state(
        self, patch: Mapping[str, Any], expected_version: int, *, checkpoint: str | None = None
    ) -> AgentState:
        """Raises :class:`MemoryToolError` (code ``version_conflict``, ``current`` = the state as
        it is now) when ``expected_version`` is stale."""
        return await self._call(
            AgentState, "update_state", patch=patch, expected_version=expected_version, checkpoint=checkpoint
        )

    async def get_analytics(
        self,
        *,
        window: str | None = None,
        decision_type: str | None = None,
        agent_id: str | None = None,
        all_agents: bool | None = None,
    ) -> AnalyticsReport:
        data = await self.call(
            "get_analytics",
            window=window,
            decision_type=decision_type,
            agent_id=agent_id,
            all_agents=all_agents,
        )
        # A tool annotated with a non-model return type has its value wrapped as {"result": ...}.
        if set(data) == {"result"} and isinstance(data["result"], dict):
            data = data["result"]
        return AnalyticsReport.model_validate(data)


# ------------------------------------------------------------------------------------------------
# memory-aware agents
# ------------------------------------------------------------------------------------------------


@dataclass
class DecisionPlan:
    """What :meth:`MemoryAwareAgent.decide` chose: the decision to log and how to treat signals."""

    decision_type: str
    context: dict[str, Any] = field(default_factory=dict)
    reasoning: dict[str, Any] = field(default_factory=dict)
    patterns_applied: list[str] = field(default_factory=list)
    """pattern_ids of the recalled patterns that shaped the decision (their feedback is tracked)."""
    parent_decision_id: str | None = None
    signals_used: list[str] | None = None
    """signal_ids acted on (acknowledged ``processed``); the other signals read this cycle are
    acknowledged ``rejected``. ``None``: every signal read counts as acted on."""


@dataclass
class CycleResult:
    """What one :meth:`MemoryAwareAgent.run_cycle` saw and did."""

    short_term: ShortTermResult | None
    """What :meth:`MemoryAwareAgent.begin_cycle` recalled (None if it was not called)."""
    signals: list[InboxEntry]
    patterns: list[Pattern]
    plan: DecisionPlan | None
    decision: LogDecisionResult | None
    acks: list[AckResult]

    @property
    def decision_id(self) -> str | None:
        return self.decision.decision.decision_id if self.decision else None


class MemoryAwareAgent(abc.ABC):
    """Base class of an agent that consults its memory before each decision.

    One :meth:`run_cycle` does what the server's instructions ask of an agent:

    1. ``recall_stm``: recent decisions, notes, pending signal count (kept in ``self.short_term``);
    2. ``read_inbox``: pending signals from other agents;
    3. ``recall_patterns(context)``: the patterns that hold in the current context;
    4. :meth:`decide` (yours): a :class:`DecisionPlan`, or ``None`` to decide nothing;
    5. ``log_decision`` with the plan's ``patterns_applied``;
    6. ``ack_signal`` for each signal read, linked to the logged decision (see :meth:`ack_status`).

    ``run_cycle`` is :meth:`begin_cycle` (steps 1-2) then :meth:`act` (steps 3-6); an agent that
    makes several decisions a cycle calls ``begin_cycle`` once and ``act`` per decision. Outcomes
    come later (the world has to answer first): call ``self.memory.record_outcome``.
    """

    decision_type: str | None = None
    """If set, recall_stm and recall_patterns are narrowed to this decision type."""

    def __init__(self, memory: MemoryClient) -> None:
        self.memory = memory
        self.short_term: ShortTermResult | None = None

    @abc.abstractmethod
    async def decide(
        self, context: dict[str, Any], patterns: list[Pattern], signals: list[InboxEntry]
    ) -> DecisionPlan | None:
        """Decide from the current context, the patterns that hold in it, and pending signals."""

    def ack_status(self, entry: InboxEntry, plan: DecisionPlan | None) -> Literal["processed", "rejected"]:
        """How to acknowledge a signal read this cycle: ``processed`` if the plan acted on it,
        else ``rejected`` (ignored). Override for signals handled without a decision."""
        if plan is not None and (plan.signals_used is None or entry.signal.signal_id in plan.signals_used):
            return "processed"
        return "rejected"

    async def begin_cycle(self, *, inbox_limit: int = 10) -> list[InboxEntry]:
        """Recall short-term memory (into ``self.short_term``) and return the pending signals."""
        self.short_term = await self.memory.recall_stm(self.decision_type)
        return (await self.memory.read_inbox(limit=inbox_limit)).entries

    async def act(self, context: Mapping[str, Any], signals: Sequence[InboxEntry] = ()) -> CycleResult:
        """Recall the patterns for ``context``, decide, log the decision, acknowledge ``signals``."""
        ctx = dict(context)
        patterns = (await self.memory.recall_patterns(ctx, decision_type=self.decision_type)).patterns
        plan = await self.decide(ctx, patterns, list(signals))
        logged = None
        if plan is not None:
            logged = await self.memory.log_decision(
                plan.decision_type,
                context=plan.context or ctx,
                reasoning=plan.reasoning,
                parent_decision_id=plan.parent_decision_id,
                patterns_applied=plan.patterns_applied,
            )
        acks = []
        for entry in signals:
            status = self.ack_status(entry, plan)
            linked = logged.decision.decision_id if logged is not None and status == "processed" else None
            acks.append(await self.memory.ack_signal(entry.signal.signal_id, status, decision_id=linked))
        return CycleResult(self.short_term, list(signals), patterns, plan, logged, acks)

    async def run_cycle(self, context: Mapping[str, Any], *, inbox_limit: int = 10) -> CycleResult:
        """One full cycle: :meth:`begin_cycle` then :meth:`act` on every signal read."""
        signals = await self.begin_cycle(inbox_limit=inbox_limit)
        return await self.act(context, signals)
