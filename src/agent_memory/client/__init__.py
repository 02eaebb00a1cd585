"""A typed Python client for agent-memory, and a base class for memory-aware agents.

For agents that are programs rather than LLMs: instead of hand-writing tool calls and reading JSON,
call methods with typed arguments and get back the same pydantic models the tools return::

    async with MemoryClient.stdio("market-hunter") as memory:
        logged = await memory.log_decision("SOURCE_SELECTION", context={"whale_count": 6})
        await memory.record_outcome(logged.decision_id, success=True)

``MemoryClient.stdio`` launches ``agent-memory serve`` as a subprocess acting as that agent (the
identity comes from the launch environment, as for any stdio client). ``MemoryClient.from_client``
wraps an ``mcp.Client`` you already connected (in-process, streamable HTTP with a bearer token...).

A tool error (bad input, a version conflict, a record not found) raises the class of
:mod:`agent_memory.errors` its ``code`` names (``VersionConflict``, ``NotFound``, ...), which is
also a :class:`MemoryToolError`; its ``message`` says what to change, ``retryable`` and
``retry_after_s`` whether and when to retry, and a conflict's ``current`` the record as it is now.
Arguments are checked by the same models as on the server before anything is sent. Every call has
a timeout (``timeout_s``, default 30 s). ``log_decision`` / ``publish_signal`` get a client-made id
and ``update_state`` a client-made ``request_id`` by default, so a call that got no answer (or a
transient storage error) can be, and by default is, sent again without applying twice.

The package imports only :mod:`agent_memory.api`, :mod:`agent_memory.models` and
:mod:`agent_memory.errors` (and ``mcp`` when it connects): no server, tool, domain or storage code.

:class:`MemoryAwareAgent` implements the cycle the server's instructions describe (recall, read the
inbox, recall patterns, decide, log, acknowledge); subclasses write only ``decide``.
"""

from agent_memory.client.agent import CycleResult, DecisionPlan, MemoryAwareAgent
from agent_memory.client.memory import MemoryClient
from agent_memory.client.session import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_S,
    MemoryTimeout,
    MemoryToolError,
    default_server_command,
)

__all__ = [
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT_S",
    "CycleResult",
    "DecisionPlan",
    "MemoryAwareAgent",
    "MemoryClient",
    "MemoryTimeout",
    "MemoryToolError",
    "default_server_command",
]
