"""Bounds on what one HTTP client can make the server hold: body size, time to send a request,
connections at once; and a warning when the server is reachable beyond this machine unannounced.

- The body is read (up to ``http_max_body_bytes``) before the MCP app sees it; a larger
  ``Content-Length`` is refused unread with 413, a chunked body as soon as it crosses the limit.
- A client must send a request's headers and body within ``http_header_timeout_s`` of opening the
  connection (or of the previous response): a half-open request is closed, not held forever.
- uvicorn's own ``limit_concurrency`` answers 503 beyond ``http_max_concurrency``, and idle
  keep-alive connections close after ``http_keep_alive_s``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from typing import Any

import h11
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from agent_memory.config import Settings

log = logging.getLogger("agent_memory.server")


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware: read at most ``limit`` bytes of a request body, then hand it on."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    def _too_large(self) -> str:
        return (
            f"request body larger than {self.limit} bytes: send smaller payloads "
            "(each free-form field holds at most 64 KiB)"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _refuse(send, 400, "invalid Content-Length header")
                    return
                if declared > self.limit:
                    await _refuse(send, 413, self._too_large())
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await _refuse(send, 413, self._too_large())
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # later messages: only a disconnect

        await self.app(scope, replay, send)


def guarded_protocol(header_timeout_s: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a deadline for receiving each whole request."""

    class GuardedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(header_timeout_s, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            # A request fully received is the app's to answer; anything short of it is dropped.
            if self.conn.their_state is not h11.DONE and not self.transport.is_closing():
                log.info("closing a connection that did not send a whole request in %ss", header_timeout_s)
                self.transport.close()

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return GuardedH11Protocol


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config`` that bound each client."""
    return {
        "http": guarded_protocol(settings.http_header_timeout_s),
        "limit_concurrency": settings.http_max_concurrency,
        "timeout_keep_alive": settings.http_keep_alive_s,
        "h11_max_incomplete_event_size": 16 * 1024,
    }


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(settings: Settings) -> str | None:
    """A warning when HTTP binds beyond loopback while no public URL names the server: tokens then
    carry no audience to check, and Host/Origin checks only know the bind address."""
    if _is_loopback(settings.http_host) or settings.public_url:
        return None
    return (
        f"agent-memory: warning: serving HTTP on {settings.http_host}, reachable beyond this machine, "
        "without AGENT_MEMORY_PUBLIC_URL: set it to the URL clients use (behind TLS) so that token "
        "audiences and Host/Origin checks name this server"
    )
