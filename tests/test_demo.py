"""The trading-desk demo: it runs three real stdio servers on one store, the hunter learns the
planted rule, and the desk's later decisions cite it."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_memory.config import Settings
from agent_memory.demo import LEARN_FROM, Market, Tick, hidden_pump_probability, run_demo
from agent_memory.models import Decision
from agent_memory.storage.dynamodb import create_tables, delete_tables
from agent_memory.storage.factory import open_store
from agent_memory.storage.store import DecisionQuery, MemoryStore
from tests.cli.support import cli
from tests.fixtures.dynamodb import dynamo_settings


async def _decisions(store: MemoryStore, agent: str, decision_type: str) -> list[Decision]:
    out: list[Decision] = []
    cursor: str | None = None
    while True:
        page = await store.query_decisions(
            DecisionQuery(agent, decision_type=decision_type, newest_first=False), limit=100, cursor=cursor
        )
        out += page.items
        if (cursor := page.next_cursor) is None:
            return out


def test_market_is_reproducible_and_follows_the_hidden_rule() -> None:
    def ticks(seed: int) -> list[Tick]:
        market = Market(seed)
        return [market.tick(c) for c in range(1, 6)]

    assert ticks(7) == ticks(7)
    assert ticks(8) != ticks(7)
    market = Market(3)
    run = [market.tick(c) for c in range(1, 401)]
    inside = [
        t for tick in run for t in tick.tokens if hidden_pump_probability(tick.trend, t.whale_count) > 0.5
    ]
    outside = [
        t for tick in run for t in tick.tokens if hidden_pump_probability(tick.trend, t.whale_count) < 0.5
    ]
    assert 0.78 < sum(t.pumped for t in inside) / len(inside) < 0.92
    assert 0.24 < sum(t.pumped for t in outside) / len(outside) < 0.36
    assert all(t.move_pct > 0 for t in inside + outside if t.pumped)
    assert all(t.move_pct < 0 for t in inside + outside if not t.pumped)


async def test_demo_learns_the_planted_rule_and_the_desk_applies_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "demo.db"
    code = await run_demo(Settings(sqlite_path=db), store_origin="--store", cycles=40, seed=7)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "found a rule it trusts" in out
    assert "get_analytics" in out and "memory-influenced" in out
    assert 'market.trend = "bullish" and whale_count >= 5' in out
    assert (
        f"agent-memory --sqlite-path {db} analytics" in out and f"{db} (embedded SQLite, from --store)" in out
    )

    async with open_store(Settings(sqlite_path=db)) as store:
        patterns = (await store.list_patterns("market-hunter", limit=100, cursor=None)).items
        rules = [
            p
            for p in patterns
            if p.source == "learned" and {c.field for c in p.conditions} == {"whale_count", "market.trend"}
        ]
        assert rules, [p.description for p in patterns]
        rule = next(p for p in rules if p.status == "active")
        assert rule.decision_type == "SOURCE_SELECTION"
        assert set(rule.shared_with) == {"risk-manager", "trade-executor"}
        assert rule.confidence > 0.6 and rule.success_rate > 0.75
        rule_ids = {p.pattern_id for p in rules}

        scans = await _decisions(store, "market-hunter", "SOURCE_SELECTION")
        assert len(scans) == 40 * 5 and all(d.outcome is not None for d in scans)
        cycle_of = {d.decision_id: i // 5 + 1 for i, d in enumerate(scans)}
        citing = [d for d in scans if rule_ids & set(d.patterns_applied)]
        assert len(citing) >= 10
        # Only after the first consolidation, and only where the rule holds.
        assert min(cycle_of[d.decision_id] for d in citing) > LEARN_FROM
        for decision in citing:
            assert decision.memory_influenced
            assert decision.context["market"]["trend"] == "bullish"
            assert decision.context["whale_count"] >= 3
        assert sum(d.outcome.success for d in citing if d.outcome) / len(citing) > 0.7

        # The pattern is shared: the risk manager and the executor cite it too, in decision chains.
        for agent, decision_type in (
            ("risk-manager", "RISK_ASSESSMENT"),
            ("trade-executor", "TRADE_EXECUTION"),
        ):
            decisions = await _decisions(store, agent, decision_type)
            assert decisions and all(d.parent_decision_id for d in decisions)
            assert any(rule_ids & set(d.patterns_applied) for d in decisions)
        applied = rule.feedback.applied_count
        assert applied >= len(citing)


async def _hunter_scans(settings: Settings) -> int:
    async with open_store(settings) as store:
        return len(await _decisions(store, "market-hunter", "SOURCE_SELECTION"))


async def test_demo_uses_the_store_given_by_the_global_option(tmp_path: Path) -> None:
    db = tmp_path / "chosen.db"
    result = cli("--sqlite-path", str(db), "demo", "--cycles", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "./chosen.db (embedded SQLite, from --sqlite-path)" in result.stdout
    assert await _hunter_scans(Settings(sqlite_path=db)) == 2 * 5
    assert not (tmp_path / ".data").exists()


async def test_demo_runs_on_the_configured_dynamodb(dynamodb_endpoint: str, tmp_path: Path) -> None:
    settings = dynamo_settings(dynamodb_endpoint)
    await create_tables(settings)
    try:
        env = {
            "AGENT_MEMORY_BACKEND": "dynamodb",
            "AGENT_MEMORY_DYNAMODB_ENDPOINT_URL": dynamodb_endpoint,
            "AGENT_MEMORY_AWS_REGION": "us-east-1",
            "AGENT_MEMORY_TABLE_PREFIX": settings.table_prefix,
        }
        result = cli("demo", "--cycles", "2", env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert f"DynamoDB tables {settings.table_prefix}agent_decisions" in result.stdout
        assert await _hunter_scans(settings) == 2 * 5
        assert not (tmp_path / ".data").exists()
    finally:
        await delete_tables(settings, wait=False)
