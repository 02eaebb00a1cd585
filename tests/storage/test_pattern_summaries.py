"""Patterns recalled from their stored items without building each record (``plain_pattern``:
``recall_pattern_summaries``, what the recall_patterns tool answers, and ``recall_patterns``) are
those of the records built from the same items, in the same order, on every backend; an item of
another shape is built, so validated (or refused), as before."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

import agent_memory.memory.patterns as recall_module
from agent_memory.api.compact import PREVIEW_CHARS, dump, to_text
from agent_memory.api.results import PatternSummary
from agent_memory.memory.identity import Caller
from agent_memory.memory.service import Memory
from agent_memory.models import PatternCondition
from agent_memory.storage import keys
from agent_memory.storage.engine import ItemEngine, Put
from agent_memory.storage.records.patterns import feedback_ops
from tests.support import T0, FakeClock, memory_on

HUNTER, RISK, SCOUT = Caller("market-hunter"), Caller("risk-manager"), Caller("scout")
OBSERVER = Caller("dashboard", "observer")
TYPE = "SOURCE_SELECTION"

CONDITIONS: list[list[PatternCondition]] = [
    [],
    [PatternCondition(field="market.trend", op="eq", value="bullish")],
    [
        PatternCondition(field="whale_count", op="gte", value=3),
        PatternCondition(field="vol", op="lt", value=0.5),
    ],
    [PatternCondition(field="tag", op="in", value=["a", "b"]), PatternCondition(field="flag", op="exists")],
    [PatternCondition(field="name", op="ne", value='naïve "x" ' + "y" * PREVIEW_CHARS)],
]

CONTEXTS: list[dict[str, Any] | None] = [
    None,
    {},
    {"market": {"trend": "bullish"}, "whale_count": 5, "vol": 0.2, "tag": "a", "flag": 1, "name": "z"},
    {"market": {"trend": "bearish"}, "whale_count": 1},
]


async def _seed(memory: Memory, engine: ItemEngine) -> None:
    for caller in (HUNTER, RISK, SCOUT):
        await memory.register(caller)
    for i in range(10):
        author = (HUNTER, RISK, SCOUT)[i % 3]
        await memory.store_pattern(
            author,
            pattern_id=f"pat-{i}",
            description=f"rule {i} " + ("long " * 60 if i == 4 else ""),
            conditions=CONDITIONS[i % len(CONDITIONS)],
            outcomes={"success_rate": 0.5},
            confidence=[0.5, 1, 0.25, 0.9, 0][i % 5],  # ints too: read back as floats
            success_rate=0.6,
            sample_size=10 * i,
            decision_type=TYPE if i % 2 else None,
            domain="trading" if i % 4 == 0 else "general",
            shared_with=[] if author == HUNTER else (["*"] if i % 2 else [HUNTER.agent_id, "scout"]),
            source="learned" if i % 3 == 1 else "manual",
            status="decayed" if i == 8 else "active",
        )
    # Applications (by the author and by others) move the counters readers see.
    for i, (author, by) in enumerate([(HUNTER, HUNTER), (RISK, HUNTER), (RISK, RISK), (SCOUT, HUNTER)]):
        pid = {HUNTER: "pat-0", RISK: "pat-1", SCOUT: "pat-2"}[author]
        for j in range(i + 1):
            ops = feedback_ops(
                [(author.agent_id, pid)], applied=True, success=j % 2 == 0, now=T0, by=by.agent_id
            )
            await engine.write(list(ops))


def _calls() -> list[tuple[Caller, dict[str, Any]]]:
    calls: list[tuple[Caller, dict[str, Any]]] = []
    for context in CONTEXTS:
        for reader in (HUNTER, RISK, SCOUT):
            calls.append((reader, {"context": context}))
        calls.append((HUNTER, {"context": context, "decision_type": TYPE, "limit": 3}))
    calls += [
        (HUNTER, {"domain": "trading"}),
        (HUNTER, {"min_confidence": 0.3}),
        (RISK, {"include_shared": False}),
        (OBSERVER, {"agent_id": RISK.agent_id}),
        (OBSERVER, {"agent_id": SCOUT.agent_id, "limit": 1}),
    ]
    return calls


async def _both_ways(memory: Memory, monkeypatch: pytest.MonkeyPatch) -> None:
    for reader, kwargs in _calls():
        fast = await memory.recall_pattern_summaries(reader, **kwargs)
        fast_records = await memory.recall_patterns(reader, **kwargs)
        with monkeypatch.context() as m:  # every item built, as before plain_pattern
            m.setattr(recall_module, "plain_pattern", lambda item, entry=False: None)
            slow_records = await memory.recall_patterns(reader, **kwargs)
        built = [PatternSummary.of(p, reader.agent_id) for p in slow_records]
        assert fast == built, (reader, kwargs)
        assert to_text([dump(s) for s in fast]) == to_text([dump(s) for s in built])
        assert [p.model_dump(mode="json") for p in fast_records] == [
            p.model_dump(mode="json") for p in slow_records
        ]
        assert [type(p.evidence) for p in fast_records] == [type(p.evidence) for p in slow_records]


async def test_recalled_summaries_of_stored_items_are_those_of_the_records(
    engine: ItemEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = memory_on(engine, FakeClock())
    await _seed(memory, engine)
    found = await memory.recall_pattern_summaries(HUNTER)
    assert {s.agent_id for s in found} >= {None, RISK.agent_id, SCOUT.agent_id}
    assert any(s.feedback is not None for s in found) and any(s.evidence is not None for s in found)
    await _both_ways(memory, monkeypatch)


async def test_pattern_items_of_another_shape_are_built_as_before(
    engine: ItemEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = memory_on(engine, FakeClock())
    await _seed(memory, engine)
    own_pk = keys.pattern_pk(HUNTER.agent_id)
    own = await engine.get("ltm", own_pk, "pat-3")
    entry_pk = keys.shared_reader_pk("*")
    entry = await engine.get("ltm", entry_pk, keys.shared_reader_sk(RISK.agent_id, "pat-1"))
    assert own is not None and entry is not None
    # Values validation reads back alike: built, with the same answers.
    odd_own = {**own, "version": 1.0, "created_at": "2026-01-01T02:00:00+02:00", "domain": "general"}
    odd_entry = {**entry, "evidence": {"measured_confidence": 1.0, "basis": "learned"}, "version": 1.0}
    await engine.write([Put("ltm", odd_own), Put("ltm", odd_entry)])
    await _both_ways(memory, monkeypatch)
    # Values validation refuses: refused by both.
    for bad in ({**own, "unknown_field": 1}, {**own, "updated_at": "2027-01-01T00:00:00"}):
        await engine.write([Put("ltm", bad)])
        with pytest.raises(ValidationError):
            await memory.recall_patterns(HUNTER)
        with pytest.raises(ValidationError):
            await memory.recall_pattern_summaries(HUNTER)
