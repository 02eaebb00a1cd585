"""Signals: one agent tells others something, in one transaction to every target; each target
reads its inbox and acknowledges."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from datetime import timedelta
from typing import Any, Literal, Protocol, TypeVar

from agent_memory.api.requests import new_id
from agent_memory.api.results import InboxPage, PublishResult
from agent_memory.errors import AccessDenied, Conflict, InvalidInput, NotFound
from agent_memory.limits import MAX_SIGNAL_TTL_HOURS, MAX_TARGETS
from agent_memory.memory.core import off_loop
from agent_memory.memory.identity import Caller
from agent_memory.memory.registry import RegistryService
from agent_memory.models import DeliveryStatus, InboxEntry, Page, Severity, Signal
from agent_memory.storage.store import STORED


class _Addressed(Protocol):
    """A signal as a read gives it (:class:`Signal`, or the head an acknowledgement takes)."""

    @property
    def source_agent(self) -> str: ...

    @property
    def target_agents(self) -> list[str]: ...


S = TypeVar("S", bound=_Addressed)


def _delivery_view(caller: Caller, signal: Signal) -> Signal:
    """A signal as ``caller`` may see it: its publisher and observers see every delivery; a target
    sees its own only (another target's status and linked decision are that target's business)."""
    if caller.is_observer or caller.agent_id == signal.source_agent:
        return signal
    own = {a: d for a, d in signal.processing_status.items() if a == caller.agent_id}
    return signal.model_copy(update={"processing_status": own})


def _as_seen_by(caller: Caller, conflict: Conflict) -> None:
    """Make ``conflict`` carry the current signal as ``caller`` may see it."""
    if isinstance(conflict.current, Signal):
        conflict.current = _delivery_view(caller, conflict.current)


class SignalService(RegistryService):
    """Publish, read the inbox, acknowledge, and fetch signals (targets are checked against the
    registry, hence the base)."""

    async def publish_signal(
        self,
        caller: Caller,
        *,
        signal_type: str,
        data: Mapping[str, Any],
        target_agents: list[str],
        confidence: float,
        severity: Severity = "medium",
        recommended_action: str | None = None,
        context: Mapping[str, Any] | None = None,
        ttl_hours: float | None = None,
        signal_id: str | None = None,
        validated: bool = False,
    ) -> PublishResult:
        """Publish to every target in one transaction; answers ids and flags, not the signal.

        ``validated``: ``data`` and ``context`` were validated and normalised by the rules
        of the signal's payload fields already (the tool's request model has the same fields), so
        the signal is built without walking them again."""
        caller.require_write("publish signals")
        hours = self.settings.signal_ttl_hours if ttl_hours is None else ttl_hours
        if not 0 < hours <= MAX_SIGNAL_TTL_HOURS:
            raise InvalidInput(
                f"ttl_hours must be greater than 0 and at most {MAX_SIGNAL_TTL_HOURS} "
                f"({MAX_SIGNAL_TTL_HOURS // 24} days)"
            )
        if target_agents == ["*"]:
            targets = sorted(a for a in await self._registered_ids() if a != caller.agent_id)
            if not targets:
                raise InvalidInput("no other agent is registered yet: name the target_agents explicitly")
            if len(targets) > MAX_TARGETS:
                # Decision (issue #15, docs/SCALING.md#hot-keys): one signal carries every
                # target's delivery status and every ack rewrites it, so a signal stays within one
                # transaction's reach; a wider broadcast is refused with what to do instead.
                raise InvalidInput(
                    f"target_agents=['*'] means the {len(targets)} other registered agents, and one "
                    f"signal reaches at most {MAX_TARGETS}: publish one signal per group of at most "
                    f"{MAX_TARGETS} named target_agents (the memory://agents resource lists them), "
                    "or share what every agent should know as a pattern (shared_with=['*'])"
                )
            unregistered: list[str] = []
        elif "*" in target_agents:
            raise InvalidInput("use ['*'] alone to target every registered agent")
        else:
            targets = list(dict.fromkeys(target_agents))
            unregistered = await self._unregistered(targets)
        now = self.clock()
        values = {
            "signal_id": signal_id or new_id("sig"),
            "signal_type": signal_type,
            "source_agent": caller.agent_id,
            "target_agents": targets,
            "severity": severity,
            "confidence": confidence,
            "data": dict(data),
            "context": dict(context or {}),
            "recommended_action": recommended_action,
            "created_at": now,
            "expires_at": now + timedelta(hours=hours),
        }
        if validated:
            # Every other field is validated; the payload's walk (a large one's cost, which
            # off_loop keeps off the event loop) was done by the request model.
            signal = Signal.model_validate(values, context=STORED)
        else:
            signal = await off_loop(Signal, **values)
        charge = self.quotas.charge(caller.agent_id, "signals")
        stored, created = await self.store.publish_signal(signal, charge)
        return PublishResult.built(
            signal_id=stored.signal_id,
            created=created,
            targets=len(stored.target_agents),
            unregistered_targets=unregistered or None,
            expires_at=stored.expires_at,
        )

    async def read_inbox(
        self,
        caller: Caller,
        status: DeliveryStatus = "pending",
        signal_type: str | None = None,
        limit: int = 10,
        cursor: str | None = None,
    ) -> Page[InboxEntry]:
        return await self.store.read_inbox(
            caller.agent_id, status=status, signal_type=signal_type, limit=limit, cursor=cursor
        )

    async def read_inbox_summaries(
        self,
        caller: Caller,
        status: DeliveryStatus = "pending",
        signal_type: str | None = None,
        limit: int = 10,
        cursor: str | None = None,
    ) -> InboxPage:
        """:meth:`read_inbox` as the page the tool answers, made from the stored items without
        building each entry first."""
        page = await self.store.read_inbox_summaries(
            caller.agent_id, status=status, signal_type=signal_type, limit=limit, cursor=cursor
        )
        return InboxPage.built(entries=page.items, next_cursor=page.next_cursor)

    async def ack_signal(
        self,
        caller: Caller,
        signal_id: str,
        status: Literal["processed", "rejected"],
        decision_id: str | None = None,
        from_agent: str | None = None,
    ) -> tuple[InboxEntry, bool]:
        """Acknowledge a signal addressed to the caller, once: its entry as it now is, and whether
        this call acknowledged it (the same status and decision again is a no-op; another is a
        Conflict)."""
        signal = await self._to_ack(caller, signal_id, decision_id, from_agent, self.store.get_signal)
        try:
            entry, created = await self.store.ack(caller.agent_id, signal, status, decision_id)
        except Conflict as exc:
            _as_seen_by(caller, exc)
            raise
        view = _delivery_view(caller, entry.signal)
        return (entry if view is entry.signal else entry.model_copy(update={"signal": view})), created

    async def acknowledge_signal(
        self,
        caller: Caller,
        signal_id: str,
        status: Literal["processed", "rejected"],
        decision_id: str | None = None,
        from_agent: str | None = None,
    ) -> bool:
        """:meth:`ack_signal` without building the entry nor the signal: whether this call
        acknowledged it (the tool answers no more, so it saves their making; issue #14)."""
        signal = await self._to_ack(caller, signal_id, decision_id, from_agent, self.store.get_signal_head)
        try:
            return await self.store.acknowledge(caller.agent_id, signal, status, decision_id) is None
        except Conflict as exc:
            _as_seen_by(caller, exc)
            raise

    async def _to_ack(
        self,
        caller: Caller,
        signal_id: str,
        decision_id: str | None,
        from_agent: str | None,
        read: Callable[[str, str], Coroutine[Any, Any, S | None]],
    ) -> S:
        """The signal ``caller`` acknowledges (as ``read`` gives it): addressed to it, and
        ``decision_id`` one of its own."""
        caller.require_write("acknowledge signals")
        signal = await self._find_signal(caller, signal_id, from_agent, read)
        if signal is None:
            raise NotFound(
                f"no signal {signal_id!r} addressed to you (signals expire; read_inbox lists yours)"
            )
        if caller.agent_id not in signal.target_agents:
            raise AccessDenied(
                f"you published signal {signal_id!r}; only its targets acknowledge it: {signal.target_agents}"
            )
        if decision_id is not None:
            ref = await self.store.get_decision_ref(caller.agent_id, decision_id)
            if ref is None:
                raise NotFound(f"decision_id {decision_id!r}: no decision of yours with that id")
        return signal

    async def get_signal(self, caller: Caller, signal_id: str, from_agent: str | None = None) -> Signal:
        signal = await self._find_signal(caller, signal_id, from_agent, self.store.get_signal)
        if signal is None:
            raise NotFound(f"no signal {signal_id!r} visible to you")
        return _delivery_view(caller, signal)

    async def _find_signal(
        self,
        caller: Caller,
        signal_id: str,
        from_agent: str | None,
        read: Callable[[str, str], Coroutine[Any, Any, S | None]],
    ) -> S | None:
        """The signal ``signal_id`` names for ``caller``, as ``read`` (source, signal_id) gives it:
        one it published, or one addressed to it (found through its own refs), or, for an
        observer, ``from_agent``'s. Signal ids are per source: when two sources used the id for
        the caller, ``from_agent`` picks one."""
        if from_agent is not None:
            sources = [from_agent]
        elif caller.is_observer:
            sources = sorted(await self._registered_ids())
        else:
            sources = list(
                dict.fromkeys([caller.agent_id, *await self.store.signal_sources(caller.agent_id, signal_id)])
            )
        found = await self.store.together(*(read(s, signal_id) for s in sources))
        visible = [
            s
            for s in found
            if s is not None
            and (
                caller.is_observer or caller.agent_id == s.source_agent or caller.agent_id in s.target_agents
            )
        ]
        if len(visible) > 1:
            named = ", ".join(s.source_agent for s in visible)
            raise InvalidInput(
                f"signal_id {signal_id!r} was used by several agents ({named}) for signals to you: "
                "pass from_agent to say whose"
            )
        return visible[0] if visible else None
