"""A fault-injecting HTTP proxy in front of the DynamoDB emulator.

The engine talks to the proxy as it would to DynamoDB; the proxy forwards every request to the
emulator unless a rule for its operation (the ``X-Amz-Target`` header, e.g. ``UpdateItem``) says
otherwise:

- ``throttle``: answer ``ThrottlingException`` (HTTP 400) without forwarding;
- ``conflict``: answer ``TransactionCanceledException`` with a ``TransactionConflict`` reason;
- ``drop``: forward (so the write is applied), then close the connection without answering, as
  when a response is lost on the network;
- ``stall``: read the request and never answer.

Each rule applies to the next ``times`` matching requests (None: every one). The proxy counts what
it saw per operation, so a test can assert how many requests the engine sent.

``forget_request_tokens``: forward transactions without their ``ClientRequestToken`` (botocore
fills one in, and DynamoDB answers a retry carrying it with the first attempt's result for 10
minutes): a retry then reaches the table again, as on a backend that keeps no tokens (moto) or
after the token expired.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

import aiohttp
from aiohttp import web

Fault = Literal["throttle", "conflict", "drop", "stall"]


@dataclass
class Rule:
    fault: Fault
    operation: str
    times: int | None = None


@dataclass
class FaultProxy:
    upstream: str
    url: str = ""
    rules: list[Rule] = field(default_factory=list)
    seen: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    forget_request_tokens: bool = False

    def inject(self, fault: Fault, operation: str, times: int | None = None) -> None:
        self.rules.append(Rule(fault, operation, times))

    def clear(self) -> None:
        self.rules.clear()

    def _rule_for(self, operation: str) -> Rule | None:
        for rule in self.rules:
            if rule.operation in (operation, "*") and (rule.times is None or rule.times > 0):
                if rule.times is not None:
                    rule.times -= 1
                return rule
        return None


def _error(code: str, message: str, **extra: object) -> web.Response:
    body = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message, **extra}
    return web.Response(status=400, body=json.dumps(body), content_type="application/x-amz-json-1.0")


@asynccontextmanager
async def fault_proxy(upstream: str) -> AsyncIterator[FaultProxy]:
    """A proxy on 127.0.0.1 forwarding to ``upstream``, for the duration of the block."""
    proxy = FaultProxy(upstream.rstrip("/"))
    session = aiohttp.ClientSession(auto_decompress=False)
    stalled: list[asyncio.Future[None]] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        operation = request.headers.get("X-Amz-Target", "").rpartition(".")[2]
        body = await request.read()
        proxy.seen[operation] += 1
        rule = proxy._rule_for(operation)
        if rule is not None:
            proxy.injected[f"{rule.fault}:{operation}"] += 1
        if rule is not None and rule.fault == "throttle":
            return _error("ThrottlingException", "Rate of requests exceeds the allowed throughput.")
        if rule is not None and rule.fault == "conflict":
            reasons = [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}]
            items = json.loads(body or b"{}").get("TransactItems", [None])
            reasons += [{"Code": "None"}] * (len(items) - 1)
            return _error(
                "TransactionCanceledException",
                "Transaction cancelled, please refer cancellation reasons for specific reasons",
                CancellationReasons=reasons,
            )
        if rule is not None and rule.fault == "stall":
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            stalled.append(waiter)
            await waiter  # cancelled when the proxy stops
        if proxy.forget_request_tokens and operation == "TransactWriteItems":
            parsed = json.loads(body)
            parsed.pop("ClientRequestToken", None)
            body = json.dumps(parsed).encode()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with session.post(proxy.upstream + request.path_qs, data=body, headers=headers) as upstream:
            payload = await upstream.read()
            status = upstream.status
            content_type = upstream.headers.get("Content-Type", "application/x-amz-json-1.0")
        if rule is not None and rule.fault == "drop":
            # Applied upstream; the answer never reaches the client.
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        response = web.Response(status=status, body=payload)
        response.headers["Content-Type"] = content_type
        return response

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sockets = site._server.sockets if site._server is not None else []  # type: ignore[attr-defined]
    port = sockets[0].getsockname()[1]
    proxy.url = f"http://127.0.0.1:{port}"
    try:
        yield proxy
    finally:
        for waiter in stalled:
            waiter.cancel()
        await runner.cleanup()
        await session.close()
