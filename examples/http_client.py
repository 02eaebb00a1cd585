"""Call an agent-memory HTTP server as one agent, with its bearer token.

    agent-memory tokens add --agent-id risk-manager --file tokens.json   # prints the token once
    agent-memory serve --transport http --tokens-file tokens.json        # in another terminal
    AGENT_MEMORY_TOKEN=am_... python examples/http_client.py

The server takes the agent's identity from the token, never from tool arguments.
"""

from __future__ import annotations

import asyncio
import os

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

URL = os.environ.get("AGENT_MEMORY_URL", "http://127.0.0.1:8765/mcp")


async def main() -> None:
    token = os.environ["AGENT_MEMORY_TOKEN"]
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        Client(streamable_http_client(URL, http_client=http)) as client,
    ):
        logged = await client.call_tool(
            "log_decision", {"decision_type": "RISK_ASSESSMENT", "context": {"exposure": 0.2}}
        )
        assert logged.structured_content is not None, logged.content
        state = await client.call_tool("get_state", {})  # who the token says we are
        assert state.structured_content is not None, state.content
        print(f"logged {logged.structured_content['decision_id']} as {state.structured_content['agent_id']}")
        recent = await client.call_tool("recall_stm", {})
        assert recent.structured_content is not None, recent.content
        print(f"recall_stm: {len(recent.structured_content['decisions'])} recent decision(s)")


if __name__ == "__main__":
    asyncio.run(main())
