"""Every DynamoDB request each tool makes, recorded with a botocore event hook, checked against the
generated policies: an agent's policy allows every key its own tools touch, and denies every read of
another agent's partitions and every write to another agent's private records.

The policies are evaluated by :func:`agent_memory.storage.dynamodb.iam.allows`, a small evaluator of
our own (moto's IAM does not evaluate ``dynamodb:LeadingKeys`` conditions); it refuses any condition
operator it does not know rather than ignoring it.
"""

from __future__ import annotations

import fnmatch
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aioboto3
from mcp import Client

from agent_memory.config import Settings
from agent_memory.server.app import build_server
from agent_memory.storage.dynamodb.admin import create_tables, delete_tables
from agent_memory.storage.dynamodb.engine import DynamoEngine
from agent_memory.storage.dynamodb.iam import Access, accesses, agent_policy, allows, owner_of, server_policy
from agent_memory.storage.store import MemoryStore
from tests.server.conftest import Agent
from tests.support import FakeClock, settings_for

HUNTER, RISK = "market-hunter", "risk-manager"
# What another agent's policy allows in your partitions: a delivery of its signal (the inbox entry,
# the ref by which you find it, your counters), and, on a signal you published, reading it and
# setting its delivery status (as its targets do when they ack).
DELIVERIES = {
    ("dynamodb:PutItem", "inbox#*"),
    ("dynamodb:UpdateItem", "sigrollup#*"),
    ("dynamodb:PutItem", "agent:*#signal_ref#*"),
    ("dynamodb:GetItem", "agent:*#signal#*"),
    ("dynamodb:UpdateItem", "agent:*#signal#*"),
}


class Recorder:
    """Appends the authorisations of every DynamoDB request the session's clients send."""

    def __init__(self) -> None:
        self.log: list[Access] = []

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.log.extend(accesses(model.name, params))


@asynccontextmanager
async def recorded_team(endpoint: str, recorder: Recorder) -> AsyncIterator[tuple[Agent, Agent, str]]:
    session = aioboto3.Session()
    session.events.register("provide-client-params.dynamodb.*", recorder)
    prefix = f"iam{uuid.uuid4().hex[:8]}_"
    settings = Settings(
        backend="dynamodb", dynamodb_endpoint_url=endpoint, aws_region="us-east-1", table_prefix=prefix
    )
    await create_tables(settings)
    engine = await DynamoEngine.open(settings, session=session)
    clock = FakeClock()
    store = MemoryStore(engine, clock)
    try:
        async with (
            Client(build_server(settings_for(agent_id=HUNTER), store=store, clock=clock)) as hunter_client,
            Client(build_server(settings_for(agent_id=RISK), store=store, clock=clock)) as risk_client,
        ):
            yield Agent(hunter_client), Agent(risk_client), prefix
    finally:
        await engine.close()
        await delete_tables(settings, wait=False)


async def test_each_agent_policy_covers_its_tools_and_no_other_agents_keys(moto_endpoint: str) -> None:
    recorder = Recorder()
    by_call: list[tuple[str, str, list[Access]]] = []

    async with recorded_team(moto_endpoint, recorder) as (hunter, risk, prefix):

        async def call(agent: str, client: Agent, tool: str, **args: Any) -> dict[str, Any]:
            start = len(recorder.log)
            result = await client.ok(tool, **args)
            by_call.append((agent, tool, recorder.log[start:]))
            return result

        h: Callable[..., Awaitable[dict[str, Any]]] = lambda tool, **a: call(HUNTER, hunter, tool, **a)  # noqa: E731
        r: Callable[..., Awaitable[dict[str, Any]]] = lambda tool, **a: call(RISK, risk, tool, **a)  # noqa: E731

        await r("get_state")
        await h("log_decision", decision_type="ENTRY", context={"trend": "up"}, decision_id="h-1")
        await h("record_outcome", decision_id="h-1", success=True, quality_score=0.8, latency_ms=120)
        await h("store_stm", key="plan", value={"buy": True}, ttl_minutes=30)
        await h("recall_stm")
        await h("search_decisions", decision_type="ENTRY")
        await h("search_decisions", success=True)
        await h("search_decisions")
        stored = await h(
            "store_pattern", description="up trend", conditions=[{"field": "trend", "op": "eq", "value": "up"}],
            outcomes={"p": 0.7}, confidence=0.7, success_rate=0.7, sample_size=20,
        )  # fmt: skip
        await h("share_pattern", pattern_id=stored["pattern_id"], shared_with=["*"])
        named = await h(
            "store_pattern", description="for risk only", conditions=[], outcomes={}, confidence=0.6,
            success_rate=0.6, sample_size=10, shared_with=[RISK],
        )  # fmt: skip
        await h("store_pattern", pattern_id=named["pattern_id"], expected_version=1, description="v2",
                conditions=[], outcomes={}, confidence=0.65, success_rate=0.6, sample_size=12,
                shared_with=[RISK])  # fmt: skip
        await h("pattern_history", pattern_id=stored["pattern_id"])
        await h("recall_patterns", context={"trend": "up"})
        await h("learn_patterns", window="7d", min_samples=5)
        published = await h(
            "publish_signal", signal_type="WHALE", data={"n": 1}, target_agents=["*"], confidence=0.9
        )
        await r("recall_patterns", context={"trend": "up"})
        recalled = await r("recall_patterns")
        assert {p["pattern_id"] for p in recalled["patterns"]} == {stored["pattern_id"], named["pattern_id"]}
        assert next(p for p in recalled["patterns"] if p["pattern_id"] == named["pattern_id"])["version"] == 2
        await r("read_inbox")
        await r("log_decision", decision_type="RISK", decision_id="r-1")
        await r("ack_signal", signal_id=published["signal_id"], status="processed", decision_id="r-1")
        await r("publish_signal", signal_type="LIMIT", data={}, target_agents=[HUNTER], confidence=0.5)
        await h("read_inbox")
        await h("update_state", patch={"current": {"cycle": 1}}, expected_version=0, checkpoint="c1")
        await h("get_state")
        await h("get_analytics", window="24h")
        await h("consume_budget", key="exchange/orders", limit=5, window="1m", cost=2)
        await r("consume_budget", key="exchange/orders", limit=5, window="1m", cost=0)

    policies = {HUNTER: agent_policy(HUNTER, prefix), RISK: agent_policy(RISK, prefix)}
    server = server_policy(prefix)
    tools_seen: set[str] = set()
    own_touched = 0
    for agent, tool, log in by_call:
        other = RISK if agent == HUNTER else HUNTER
        assert log, f"{tool} sent no request?"
        tools_seen.add(tool)
        for access in log:
            assert allows(server, access), (tool, access)
            assert allows(policies[agent], access), f"{agent}'s policy refuses its own {tool}: {access}"
            if owner_of(access.leading_key or "") != agent:
                continue
            own_touched += 1
            allowed_to_other = allows(policies[other], access)
            is_delivery = any(
                access.action == action and fnmatch.fnmatchcase(access.leading_key or "", pattern)
                for action, pattern in DELIVERIES
            )
            assert allowed_to_other == is_delivery, (
                f"{other} may {access.action} {access.leading_key} ({tool})"
            )
    assert tools_seen >= {
        "log_decision", "record_outcome", "store_stm", "recall_stm", "search_decisions", "store_pattern",
        "share_pattern", "pattern_history", "recall_patterns", "learn_patterns", "publish_signal",
        "read_inbox", "ack_signal", "update_state", "get_state", "get_analytics", "consume_budget",
    }  # fmt: skip
    assert own_touched > 40  # the check above is not vacuous (46 when written)


def test_policies_deny_scan_partiql_and_other_agents_partitions() -> None:
    hunter = agent_policy(HUNTER, "p_")
    table = "p_agent_decisions"
    assert not allows(hunter, Access("dynamodb:Scan", table, None, None))
    assert not allows(server_policy("p_"), Access("dynamodb:Scan", table, None, None))
    assert not allows(server_policy("p_"), Access("dynamodb:PartiQLSelect", table, None, None))
    assert allows(hunter, Access("dynamodb:Query", table, None, f"agent:{HUNTER}#decision#ENTRY"))
    assert not allows(hunter, Access("dynamodb:Query", table, None, f"agent:{RISK}#decision#ENTRY"))
    # A prefix of another id is not a match: market-hunter2's partitions are not market-hunter's.
    assert not allows(hunter, Access("dynamodb:GetItem", "p_agent_state", None, f"agent:{HUNTER}2"))
    assert not allows(hunter, Access("dynamodb:Query", "p_agent_signals", None, f"inbox#{RISK}"))
    assert allows(hunter, Access("dynamodb:PutItem", "p_agent_signals", None, f"inbox#{RISK}"))
    # Ids are per author: id items are in their author's partitions (issue #12).
    decision_id_item = f"agent:{RISK}#decision_id#r-1"
    assert allows(hunter, Access("dynamodb:GetItem", table, None, f"agent:{HUNTER}#decision_id#r-1"))
    assert not allows(hunter, Access("dynamodb:GetItem", table, None, decision_id_item))
    assert not allows(hunter, Access("dynamodb:PutItem", table, None, decision_id_item))
    # A signal's targets find it through refs in their own partitions, written by its publisher.
    ref = f"agent:{RISK}#signal_ref#s-1"
    assert allows(hunter, Access("dynamodb:PutItem", "p_agent_signals", None, ref))
    assert not allows(hunter, Access("dynamodb:Query", "p_agent_signals", None, ref))
    signal = f"agent:{RISK}#signal#s-1"
    assert allows(hunter, Access("dynamodb:UpdateItem", "p_agent_signals", None, signal))  # an ack
    assert not allows(hunter, Access("dynamodb:PutItem", "p_agent_signals", None, signal))
    assert not allows(hunter, Access("dynamodb:DeleteItem", "p_agent_signals", None, signal))
    # Another memory's tables (another prefix) are out of reach.
    assert not allows(hunter, Access("dynamodb:GetItem", "q_agent_state", None, f"agent:{HUNTER}"))


async def test_citing_a_shared_pattern_stays_in_the_reader_s_policy(moto_endpoint: str) -> None:
    recorder = Recorder()
    async with recorded_team(moto_endpoint, recorder) as (hunter, risk, prefix):
        stored = await hunter.ok(
            "store_pattern", description="up trend", conditions=[], outcomes={}, confidence=0.7,
            success_rate=0.7, sample_size=20, shared_with=[RISK],
        )  # fmt: skip
        start = len(recorder.log)
        logged = await risk.ok("log_decision", decision_type="RISK", patterns_applied=[stored["pattern_id"]])
        await risk.ok("record_outcome", decision_id=logged["decision_id"], success=True)
        refused = [a for a in recorder.log[start:] if not allows(agent_policy(RISK, prefix), a)]
    assert refused == []
