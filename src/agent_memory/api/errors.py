"""Errors as data: one mapping from the error tree to a tool error's structured content, and back.

The server sends :class:`~agent_memory.api.results.ErrorResult` (``code``, ``message``,
``retryable``, ``retry_after_s``, a conflict's ``current`` record); the client raises the class of
:mod:`agent_memory.errors` whose ``code`` it names. Both directions read the error's attributes,
never its class name or its text, so a new error class needs no change here.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from agent_memory.api.results import ErrorResult, summarize
from agent_memory.errors import AgentMemoryError


def error_result(exc: AgentMemoryError, caller_agent: str | None = None) -> ErrorResult:
    current = getattr(exc, "current", None)
    return ErrorResult(
        code=exc.code,
        message=exc.message,
        retryable=exc.retryable,
        retry_after_s=exc.retry_after_s,
        current=summarize(current, caller_agent) if current is not None else None,
    )


def _subclasses(cls: type[AgentMemoryError]) -> list[type[AgentMemoryError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_subclasses(sub))
    return out


@cache
def error_class(code: str) -> type[AgentMemoryError]:
    """The error class with this ``code`` (the base class for a code this version does not know)."""
    for cls in _subclasses(AgentMemoryError):
        if cls.__dict__.get("code") == code:
            return cls
    return AgentMemoryError


def to_exception(data: ErrorResult, base: type[Exception] | None = None, **attrs: Any) -> AgentMemoryError:
    """Rebuild the error a server reported: an instance of the class its ``code`` names (and of
    ``base`` too, when given), carrying the message, retry advice, ``current`` and ``attrs``."""
    cls = error_class(data.code)
    if base is not None:
        cls = _with_base(cls, base)
    exc = cls.__new__(cls)
    AgentMemoryError.__init__(exc, data.message, retry_after_s=data.retry_after_s)
    exc.code = data.code
    exc.retryable = data.retryable
    exc.current = data.current  # type: ignore[attr-defined]
    for name, value in attrs.items():
        setattr(exc, name, value)
    return exc


_BASED: dict[tuple[type[AgentMemoryError], type[Exception]], type[AgentMemoryError]] = {}


def _with_base(cls: type[AgentMemoryError], base: type[Exception]) -> type[AgentMemoryError]:
    key = (cls, base)
    if key not in _BASED:
        _BASED[key] = type(cls.__name__, (cls, base), {"__module__": cls.__module__})
    return _BASED[key]
