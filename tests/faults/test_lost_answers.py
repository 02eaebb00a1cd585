"""Answers lost between a server that applied a write and its MCP client, on every backend: the
client's retry answers like the first call, and nothing is applied twice."""

from __future__ import annotations

import pytest
from mcp import Client

from agent_memory.client import MemoryClient
from agent_memory.errors import VersionConflict
from agent_memory.server.app import build_server
from agent_memory.storage.engine import ItemEngine
from agent_memory.storage.store import MemoryStore
from tests.faults.lossy import LossyTransport
from tests.support import FakeClock, settings_for

LOST_ANSWER_TIMEOUT_S = 5.0
"""The client's per-call timeout in these tests: how long a lost answer is waited for. Every call
has it, so it must also outlast a slow answer on a loaded machine: an answer that is only late is
retried by the client as if lost, which breaks the counts these tests assert (2 s did, once, on
DynamoDB Local under the whole suite)."""


def _server(engine: ItemEngine, agent_id: str = "hunter") -> LossyTransport:
    clock = FakeClock()
    server = build_server(settings_for(agent_id=agent_id), store=MemoryStore(engine, clock), clock=clock)
    return LossyTransport(server)


async def test_update_state_retried_after_a_lost_answer_answers_like_the_first(engine: ItemEngine) -> None:
    lossy = _server(engine)
    async with Client(lossy) as raw:
        memory = MemoryClient.from_client(raw, timeout_s=LOST_ANSWER_TIMEOUT_S)
        first = await memory.update_state({"current": {"cycle": 1}}, 0, checkpoint="one")
        lossy.drop_answers("update_state")  # applied, then its answer is lost
        second = await memory.update_state({"current": {"cycle": 2}, "configuration": {"x": None}}, 1)
        assert lossy.dropped["update_state"] == 1 and lossy.sent["update_state"] == 3
        # The client sent the call again with the same request id: the answer of the first.
        assert (first.version, second.version) == (1, 2)
        state = await memory.get_state()
        assert (state.version, state.current) == (2, {"cycle": 2})
        # Another writer on the same version still loses: each version is won once.
        with pytest.raises(VersionConflict) as stale:
            await memory.update_state({"current": {"cycle": 3}}, 1)
        assert stale.value.current is not None and stale.value.current["version"] == 2


async def test_update_state_is_idempotent_by_request_id_over_mcp(engine: ItemEngine) -> None:
    """The same through the bare MCP client (what any MCP host sends): the tool's request_id."""
    lossy = _server(engine)
    async with Client(lossy) as raw:
        args = {"patch": {"current": {"cycle": 1}}, "expected_version": 0, "request_id": "upd-1"}
        first = await raw.call_tool("update_state", args)
        again = await raw.call_tool("update_state", args)
        assert not first.is_error and not again.is_error, again.content
        assert first.structured_content == again.structured_content == {"version": 1}
        # The same id with another patch is another request; no id at all is another writer.
        other = await raw.call_tool("update_state", {**args, "patch": {"current": {"cycle": 9}}})
        bare = await raw.call_tool("update_state", {k: v for k, v in args.items() if k != "request_id"})
        for refused in (other, bare):
            assert refused.is_error and refused.structured_content is not None
            assert refused.structured_content["code"] == "version_conflict"
        state = await raw.call_tool("get_state", {})
        assert state.structured_content is not None and state.structured_content["version"] == 1


async def test_writes_retried_after_lost_answers_are_stored_once(engine: ItemEngine) -> None:
    """log_decision and publish_signal: the client's ids make its retry a no-op."""
    lossy = _server(engine)
    async with Client(lossy) as raw:
        memory = MemoryClient.from_client(raw, timeout_s=LOST_ANSWER_TIMEOUT_S)
        lossy.drop_answers("log_decision")
        logged = await memory.log_decision("TRADE", context={"n": 1})
        lossy.drop_answers("publish_signal")
        published = await memory.publish_signal("WHALE", {"n": 1}, ["hunter"], 0.9)
        assert lossy.dropped == {"log_decision": 1, "publish_signal": 1}
        assert lossy.sent["log_decision"] == lossy.sent["publish_signal"] == 2
        # The answers are the retries' (created: false), and there is one of each.
        assert not logged.created and not published.created
        recent = await memory.recall_stm()
        assert [d.decision_id for d in recent.decisions] == [logged.decision_id]
        inbox = await memory.read_inbox()
        assert [e.signal_id for e in inbox.entries] == [published.signal_id]


async def test_a_call_not_safe_to_repeat_is_not_retried(engine: ItemEngine) -> None:
    lossy = _server(engine)
    async with Client(lossy) as raw:
        memory = MemoryClient.from_client(raw, timeout_s=LOST_ANSWER_TIMEOUT_S)
        lossy.drop_answers("consume_budget")
        with pytest.raises(Exception) as late:
            await memory.consume_budget("exchange/orders", 5, "1h")
        assert getattr(late.value, "code", None) == "timeout" and lossy.sent["consume_budget"] == 1
        status = await memory.consume_budget("exchange/orders", 5, "1h", cost=0)
        assert status.remaining == 4  # spent once, by the call whose answer was lost
