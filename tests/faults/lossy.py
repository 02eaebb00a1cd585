"""An MCP transport that loses answers: the server receives and executes every request, and the
answer to the next ``times`` calls of a chosen tool never reaches the client (as when a connection
drops after the server applied a write).

Wraps the SDK's in-memory transport, so everything behind it is the real server on a real store,
and everything in front of it the real ``mcp.Client``::

    lossy = LossyTransport(server)
    async with Client(lossy) as client:
        lossy.drop_answers("update_state", times=1)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.client._memory import InMemoryTransport
from mcp.client._transport import TransportStreams
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCError, JSONRPCRequest, JSONRPCResponse


class LossyTransport:
    def __init__(self, server: Any) -> None:
        self._inner = InMemoryTransport(server)
        self._drop: Counter[str] = Counter()
        self._doomed: set[str | int] = set()
        self.sent: Counter[str] = Counter()
        """tools/call requests sent, by tool."""
        self.dropped: Counter[str] = Counter()
        """Answers lost, by tool."""
        self._tool_of: dict[str | int, str] = {}
        self._cm: Any = None

    def drop_answers(self, tool: str, times: int = 1) -> None:
        self._drop[tool] += times

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[TransportStreams]:
        async with self._inner as (read, write):
            to_client_send, to_client = anyio.create_memory_object_stream[SessionMessage | Exception](16)
            to_server, from_client = anyio.create_memory_object_stream[SessionMessage](16)

            async def downstream() -> None:  # server -> client, losing the doomed answers
                async with to_client_send:
                    async for item in read:
                        message = getattr(item, "message", None)
                        if isinstance(message, JSONRPCResponse | JSONRPCError) and message.id in self._doomed:
                            self._doomed.discard(message.id)
                            self.dropped[self._tool_of.get(message.id, "?")] += 1
                            continue
                        await to_client_send.send(item)

            async def upstream() -> None:  # client -> server, noting which answers to lose
                async with from_client:
                    async for item in from_client:
                        message = item.message
                        if isinstance(message, JSONRPCRequest) and message.method == "tools/call":
                            tool = str((message.params or {}).get("name"))
                            self.sent[tool] += 1
                            self._tool_of[message.id] = tool
                            if self._drop[tool] > 0:
                                self._drop[tool] -= 1
                                self._doomed.add(message.id)
                        await write.send(item)

            async with anyio.create_task_group() as group:
                group.start_soon(downstream)
                group.start_soon(upstream)
                try:
                    yield to_client, to_server
                finally:
                    await to_server.aclose()
                    group.cancel_scope.cancel()

    async def __aenter__(self) -> TransportStreams:
        self._cm = self._connect()
        return await self._cm.__aenter__()  # type: ignore[no-any-return]

    async def __aexit__(self, *exc: object) -> None:
        await self._cm.__aexit__(*exc)
