"""A typed Python client for agent-memory, and a base class for memory-aware agents.

For agents that are programs rather than LLMs: instead of hand-writing tool calls and reading JSON,
call methods with typed arguments and get back the same pydantic models the tools return::

    async with MemoryClient.stdio("market-hunter") as memory:
        logged = await memory.log_decision("SOURCE_SELECTION", context={"whale_count": 6})
        await memory.record_outcome(logged.decision.decision_id, success=True)

``MemoryClient.stdio`` launches ``agent-memory serve`` as a subprocess acting as that agent (the
identity comes from the launch environment, as for any stdio client). ``MemoryClient.from_client``
wraps an ``mcp.Client`` you already connected (in-process, streamable HTTP with a bearer token...).

A tool error (bad input, a version conflict, a record not found) raises the class of
:mod:`agent_memory.errors` its ``code`` names (``VersionConflict``, ``NotFound``, ...), which is
also a :class:`MemoryToolError`; its ``message`` says what to change, ``retryable`` and
``retry_after_s`` whether and when to retry, and a conflict's ``current`` the record as it is now.
Arguments are checked by the same models as on the server before anything is sent, and
``log_decision`` / ``publish_signal`` get a client-made id by default, so a retried call never
logs twice.

:class:`MemoryAwareAgent` implements the cycle the server's instructions describe (recall, read the
inbox, recall patterns, decide, log, acknowledge); subclasses write only ``decide``.
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO, TypeVar

import anyio
from pydantic import BaseModel, ValidationError

from agent_memory.api import TOOLS, to_exception
from agent_memory.api import requests as rq
from agent_memory.api import results as rs
from agent_memory.api.requests import new_id
from agent_memory.api.validation import describe
from agent_memory.errors import AgentMemoryError
from agent_memory.models import (
    Decision,
    Delivery,
    InboxEntry,
    Pattern,
    PatternCondition,
    Severity,
    Signal,
)

if TYPE_CHECKING:
    from mcp import Client

    from agent_memory.api.analytics import AnalyticsReport

__all__ = [
    "CycleResult",
    "DecisionPlan",
    "MemoryAwareAgent",
    "MemoryClient",
    "MemoryToolError",
]

M = TypeVar("M", bound=BaseModel)

DEFAULT_TIMEOUT_S = 30.0
"""Longest a call may take before the client gives up on it (``MemoryClient(timeout_s=...)``)."""


class MemoryToolError(Exception):
    """A tool call that did not succeed. Every error the client raises is one of these and also an
    instance of the :mod:`agent_memory.errors` class its ``code`` names (``except VersionConflict``
    works), with ``tool``, ``code``, ``message``, ``retryable``, ``retry_after_s`` and ``current``
    (a conflict's record as it is now, as the server summarised it, or ``None``)."""

    tool: str
    code: str
    message: str
    retryable: bool
    retry_after_s: float | None
    current: dict[str, Any] | None


class MemoryTimeout(AgentMemoryError):
    """The server did not answer within the client's timeout (the call may still have happened:
    retry with the same ids, which is safe)."""

    code = "timeout"
    retryable = True


def _raise(tool: str, error: rs.ErrorResult) -> AgentMemoryError:
    exc = to_exception(error, MemoryToolError, tool=tool)
    exc.args = (f"{tool}: {error.code}: {error.message}",)
    return exc


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


def _utf8_clean(value: Any, where: str) -> None:
    """Refuse text that cannot travel as UTF-8 (a lone surrogate), as the server would."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise _raise(
            where.split(".")[0],
            rs.ErrorResult(
                code="invalid_input",
                message=f"{where}: text contains a lone surrogate (not valid Unicode): send valid text",
                retryable=False,
            ),
        ) from None


class MemoryClient:
    """Typed methods over one MCP client session acting as one agent.

    Every method calls the tool of the same name with the same parameters (the tools' request
    models in :mod:`agent_memory.api.requests`) and returns the tool's result model; arguments
    left as ``None`` are not sent, so the server's defaults apply.
    """

    def __init__(
        self, client: Client, agent_id: str | None = None, *, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self.client = client
        """The underlying ``mcp.Client`` (for resources, prompts, or tools added later)."""
        self.agent_id = agent_id
        """The agent this session acts as, when known (stdio); the server decides it."""
        self.timeout_s = timeout_s

    @classmethod
    def from_client(
        cls, client: Client, agent_id: str | None = None, *, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> MemoryClient:
        """Wrap an ``mcp.Client`` that is already connected (entered)."""
        return cls(client, agent_id, timeout_s=timeout_s)

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
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> AsyncIterator[MemoryClient]:
        """Launch ``agent-memory serve`` acting as ``agent_id`` and connect to it over stdio.

        ``sqlite_path`` selects the embedded store file (several servers may share one); ``env``
        adds ``AGENT_MEMORY_*`` (or AWS) variables to the server's environment, which otherwise
        inherits only the MCP SDK's safe defaults (HOME, PATH, ...). ``command`` replaces the
        default ``python -m agent_memory.cli serve`` (e.g. ``["agent-memory", "serve"]``).
        The server's log lines (stderr) go to ``errlog`` (default: this process's stderr).
        The server stops when the block exits.
        """
        from mcp import Client, StdioServerParameters
        from mcp.client.stdio import stdio_client

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
                yield cls(client, agent_id, timeout_s=timeout_s)

    # ------------------------------------------------------------------------------------------
    # plumbing
    # ------------------------------------------------------------------------------------------

    def check(self, tool: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON arguments for ``tool``, validated by its request model as the server would;
        raises ``InvalidInput`` (a :class:`MemoryToolError`) saying what to change."""
        spec = TOOLS[tool]
        args = {k: v for k, v in arguments.items() if v is not None}
        try:
            request = spec.request.model_validate(args)
        except ValidationError as exc:
            raise _raise(
                tool,
                rs.ErrorResult(code="invalid_input", message=describe(exc, spec.request), retryable=False),
            ) from None
        data = request.model_dump(mode="json", include=set(args))
        for name, value in data.items():
            _utf8_clean(value, f"{tool}.{name}")
        return data

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        """Call any tool; return its structured result. ``None`` arguments are omitted; the
        arguments of a known tool are validated before they are sent."""
        args = (
            self.check(tool, arguments)
            if tool in TOOLS
            else {k: v for k, v in arguments.items() if v is not None}
        )
        try:
            with anyio.fail_after(self.timeout_s):
                result = await self.client.call_tool(tool, args)
        except TimeoutError:
            raise _raise(
                tool,
                rs.ErrorResult(
                    code=MemoryTimeout.code,
                    message=f"no answer within {self.timeout_s:g} s; retrying with the same ids is safe",
                    retryable=True,
                ),
            ) from None
        data = result.structured_content
        if result.is_error:
            text = next((block.text for block in result.content if block.type == "text"), "")
            try:
                error = rs.ErrorResult.model_validate(data)
            except ValidationError:  # an error raised by the SDK itself (an unknown tool, ...)
                error = rs.ErrorResult(code="error", message=text or "the tool failed", retryable=False)
            raise _raise(tool, error)
        if data is None:
            raise _raise(
                tool,
                rs.ErrorResult(
                    code="error", message="the result carried no structured content", retryable=False
                ),
            )
        return dict(data)

    async def _call(self, model: type[M], tool: str, **arguments: Any) -> M:
        return model.model_validate(await self.call(tool, **arguments))

    async def _resource(self, uri: str) -> Any:
        from mcp.shared.exceptions import MCPError

        try:
            with anyio.fail_after(self.timeout_s):
                result = await self.client.read_resource(uri)
        except MCPError as exc:
            code, _, message = str(exc.error.message).partition(": ")
            raise _raise(
                uri,
                rs.ErrorResult(code=code if message else "error", message=message or code, retryable=False),
            ) from None
        text = next((c.text for c in result.contents if hasattr(c, "text")), "null")
        return json.loads(text)

    # ------------------------------------------------------------------------------------------
    # whole records (resources)
    # ------------------------------------------------------------------------------------------

    async def get_decision(self, decision_id: str) -> Decision:
        """The whole decision (``memory://decisions/{id}``); tool results carry summaries."""
        return Decision.model_validate(await self._resource(f"memory://decisions/{decision_id}"))

    async def get_signal(self, signal_id: str) -> Signal:
        """The whole signal (``memory://signals/{id}``)."""
        return Signal.model_validate(await self._resource(f"memory://signals/{signal_id}"))

    async def pattern_records(
        self, context: Mapping[str, Any] | None = None, *, decision_type: str | None = None
    ) -> list[Pattern]:
        """Whole active patterns visible to you (yours and shared), highest confidence first; with
        ``context``, only those that hold in it (as ``recall_patterns`` selects them)."""
        me = self.agent_id or (await self.get_state()).agent_id
        found = [Pattern.model_validate(p) for p in await self._resource(f"memory://agents/{me}/patterns")]
        ctx = dict(context) if context is not None else None
        return [
            p
            for p in found
            if (decision_type is None or p.decision_type in (None, decision_type))
            and (ctx is None or p.matches(ctx))
        ]

    # ------------------------------------------------------------------------------------------
    # decisions and short-term memory
    # ------------------------------------------------------------------------------------------

    async def log_decision(
        self,
        decision_type: str,
        *,
        context: Mapping[str, Any] | None = None,
        reasoning: Mapping[str, Any] | None = None,
        outcome: rq.OutcomeArg | Mapping[str, Any] | None = None,
        decision_id: str | None = None,
        parent_decision_id: str | None = None,
        patterns_applied: Sequence[str] | None = None,
        memory_influenced: bool | None = None,
    ) -> rs.LogDecisionResult:
        """Log a decision; keep ``result.decision_id`` for :meth:`record_outcome`. Without a
        ``decision_id`` the client makes one, so retrying this call never logs twice."""
        return await self._call(
            rs.LogDecisionResult,
            "log_decision",
            decision_type=decision_type,
            context=context,
            reasoning=reasoning,
            outcome=outcome.model_dump(exclude_none=True) if isinstance(outcome, BaseModel) else outcome,
            decision_id=decision_id or new_id("dec"),
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
    ) -> rs.OutcomeResult:
        return await self._call(
            rs.OutcomeResult,
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
    ) -> rs.ShortTermResult:
        return await self._call(
            rs.ShortTermResult, "recall_stm", decision_type=decision_type, limit=limit, cursor=cursor
        )

    async def store_stm(self, key: str, value: Any, *, ttl_minutes: int | None = None) -> rs.NoteResult:
        return await self._call(rs.NoteResult, "store_stm", key=key, value=value, ttl_minutes=ttl_minutes)

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
    ) -> rs.DecisionPage:
        return await self._call(
            rs.DecisionPage,
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
    ) -> rs.PatternResult:
        return await self._call(
            rs.PatternResult,
            "store_pattern",
            description=description,
            conditions=[c.model_dump() if isinstance(c, BaseModel) else dict(c) for c in conditions],
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
    ) -> rs.PatternList:
        """Active patterns (highest confidence first); with ``context``, only those that hold."""
        return await self._call(
            rs.PatternList,
            "recall_patterns",
            context=context,
            domain=domain,
            decision_type=decision_type,
            min_confidence=min_confidence,
            include_shared=include_shared,
            limit=limit,
        )

    async def share_pattern(self, pattern_id: str, shared_with: Sequence[str]) -> rs.PatternResult:
        # An empty list is meaningful here (make private), so it is always sent.
        return await self._call(
            rs.PatternResult, "share_pattern", pattern_id=pattern_id, shared_with=list(shared_with)
        )

    async def pattern_history(self, pattern_id: str, *, limit: int | None = None) -> rs.PatternList:
        return await self._call(rs.PatternList, "pattern_history", pattern_id=pattern_id, limit=limit)

    async def learn_patterns(
        self, *, decision_type: str | None = None, window: str | None = None, min_samples: int | None = None
    ) -> rs.LearnResult:
        return await self._call(
            rs.LearnResult,
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
    ) -> rs.PublishResult:
        """Publish a signal. Without a ``signal_id`` the client makes one, so retrying this call
        never publishes twice."""
        return await self._call(
            rs.PublishResult,
            "publish_signal",
            signal_type=signal_type,
            data=data,
            target_agents=list(target_agents),
            confidence=confidence,
            severity=severity,
            recommended_action=recommended_action,
            context=context,
            ttl_hours=ttl_hours,
            signal_id=signal_id or new_id("sig"),
        )

    async def read_inbox(
        self,
        *,
        status: Literal["pending", "processed", "rejected"] | None = None,
        signal_type: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> rs.InboxPage:
        return await self._call(
            rs.InboxPage, "read_inbox", status=status, signal_type=signal_type, limit=limit, cursor=cursor
        )

    async def ack_signal(
        self, signal_id: str, status: Literal["processed", "rejected"], *, decision_id: str | None = None
    ) -> rs.AckResult:
        return await self._call(
            rs.AckResult, "ack_signal", signal_id=signal_id, status=status, decision_id=decision_id
        )

    # ------------------------------------------------------------------------------------------
    # state and analytics
    # ------------------------------------------------------------------------------------------

    async def consume_budget(self, key: str, limit: int, window: str, *, cost: int = 1) -> rs.BudgetStatus:
        """Check and take ``cost`` units of a rate-limit budget (``cost=0`` only checks)."""
        return await self._call(
            rs.BudgetStatus, "consume_budget", key=key, limit=limit, window=window, cost=cost
        )

    async def get_state(
        self,
        *,
        section: Literal["current", "configuration", "source_metrics", "context_performance"] | None = None,
    ) -> rs.StateResult:
        return await self._call(rs.StateResult, "get_state", section=section)

    async def update_state(
        self, patch: Mapping[str, Any], expected_version: int, *, checkpoint: str | None = None
    ) -> rs.StateWritten:
        """Raises ``VersionConflict`` (``current`` = the state as it is now) when
        ``expected_version`` is stale."""
        return await self._call(
            rs.StateWritten,
            "update_state",
            patch=patch,
            expected_version=expected_version,
            checkpoint=checkpoint,
        )

    async def get_analytics(
        self,
        *,
        window: str | None = None,
        decision_type: str | None = None,
        agent_id: str | None = None,
        all_agents: bool | None = None,
        include_series: bool | None = None,
    ) -> AnalyticsReport:
        from agent_memory.api.analytics import AnalyticsReport

        data = await self.call(
            "get_analytics",
            window=window,
            decision_type=decision_type,
            agent_id=agent_id,
            all_agents=all_agents,
            include_series=include_series,
        )
        # The tool leaves out what would repeat the totals and the series unless asked for.
        data.setdefault("series", [])
        data.setdefault("series_by_agent", [])
        data.setdefault("series_by_type", [])
        data.setdefault("by_agent", [])
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

    short_term: rs.ShortTermResult | None
    """What :meth:`MemoryAwareAgent.begin_cycle` recalled (None if it was not called)."""
    signals: list[InboxEntry]
    patterns: list[Pattern]
    plan: DecisionPlan | None
    decision: rs.LogDecisionResult | None
    acks: list[rs.AckResult]

    @property
    def decision_id(self) -> str | None:
        return self.decision.decision_id if self.decision else None


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
        self.short_term: rs.ShortTermResult | None = None

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
        """Recall short-term memory (into ``self.short_term``) and return the pending signals,
        whole (the inbox lists summaries; each signal is then read in full)."""
        self.short_term = await self.memory.recall_stm(self.decision_type)
        summaries = (await self.memory.read_inbox(limit=inbox_limit)).entries
        if summaries and self.memory.agent_id is None:
            self.memory.agent_id = (await self.memory.get_state()).agent_id
        me = self.memory.agent_id or ""
        entries = []
        for summary in summaries:
            signal = await self.memory.get_signal(summary.signal_id)
            entries.append(InboxEntry(agent_id=me, signal=signal, delivery=Delivery()))
        return entries

    async def act(self, context: Mapping[str, Any], signals: Sequence[InboxEntry] = ()) -> CycleResult:
        """Recall the patterns for ``context``, decide, log the decision, acknowledge ``signals``."""
        ctx = dict(context)
        patterns = await self.memory.pattern_records(ctx, decision_type=self.decision_type)
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
            linked = logged.decision_id if logged is not None and status == "processed" else None
            acks.append(await self.memory.ack_signal(entry.signal.signal_id, status, decision_id=linked))
        return CycleResult(self.short_term, list(signals), patterns, plan, logged, acks)

    async def run_cycle(self, context: Mapping[str, Any], *, inbox_limit: int = 10) -> CycleResult:
        """One full cycle: :meth:`begin_cycle` then :meth:`act` on every signal read."""
        signals = await self.begin_cycle(inbox_limit=inbox_limit)
        return await self.act(context, signals)
