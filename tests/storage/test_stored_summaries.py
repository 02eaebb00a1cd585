"""Summaries made from the stored items (``query_decision_summaries`` and ``query_note_summaries``,
what recall_stm and search_decisions answer) are the summaries of the records read back
(``DecisionSummary.of``, ``NoteSummary.of``), on every backend; an item of another shape is still
built, so refused by validation, as before."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from agent_memory.api.compact import PREVIEW_CHARS, dump, to_text
from agent_memory.api.results import DecisionSummary, NoteSummary
from agent_memory.memory.identity import Caller
from agent_memory.models import Outcome
from agent_memory.storage import keys
from agent_memory.storage.engine import ItemEngine, Put
from agent_memory.storage.store import DecisionQuery
from tests.support import FakeClock, memory_on

HUNTER, RISK = Caller("market-hunter"), Caller("risk-manager")
TYPE = "SOURCE_SELECTION"

CONTEXTS: list[dict[str, Any]] = [
    {},
    {"market": {"trend": "bullish", "volatility": 0.123456}, "n": [1, 2.5, None, True], "gone": None},
    {"long": "x" * (PREVIEW_CHARS + 5)},
    {"tiny": 1.23456789e-07, "big": 12345678901234567890123456789012345678, "ratio": 2 / 3},
    {"text": 'naïve \u2028 "quoted" \n', "nested": [[{"deep": None}]], "k": False},
    {"many": list(range(100))},
]


async def _summaries_both_ways(engine: ItemEngine, reader: Caller, agent: str) -> None:
    store = memory_on(engine).store
    for q in (DecisionQuery(agent, decision_type=TYPE), DecisionQuery(agent, consistent=False)):
        cursor: str | None = None
        while True:
            fast = await store.query_decision_summaries(
                q, limit=4, cursor=cursor, caller_agent=reader.agent_id
            )
            slow = await store.query_decisions(q, limit=4, cursor=cursor)
            built = [DecisionSummary.of(d, reader.agent_id) for d in slow.items]
            assert fast.next_cursor == slow.next_cursor
            assert fast.items == built
            assert [dump(s) for s in fast.items] == [dump(s) for s in built]
            assert to_text([dump(s) for s in fast.items]) == to_text([dump(s) for s in built])
            if fast.next_cursor is None:
                break
            cursor = fast.next_cursor


async def test_summaries_of_stored_items_are_those_of_the_records(engine: ItemEngine) -> None:
    clock = FakeClock()
    memory = memory_on(engine, clock)
    for caller in (HUNTER, RISK):
        await memory.register(caller)
    for i, context in enumerate(CONTEXTS):
        decision, _ = await memory.log_decision(
            HUNTER,
            TYPE,
            context=context,
            reasoning={"why": "x" * (i * 40), "score": i / 7} if i % 2 else {},
            decision_id=f"dec-{i}",
            parent_decision_id=f"dec-{i - 1}" if i else None,
            memory_influenced=i % 3 == 0,
        )
        if i % 2 == 0:
            outcome = Outcome(success=i % 4 == 0, quality_score=None if i == 2 else i / 9, latency_ms=12.5)
            await memory.record_outcome(HUNTER, decision.decision_id, outcome)
    await _summaries_both_ways(engine, HUNTER, HUNTER.agent_id)
    # Another agent's decisions name their author (an observer reads them).
    await _summaries_both_ways(engine, Caller("dashboard", "observer"), HUNTER.agent_id)


async def test_an_item_of_another_shape_is_validated_as_before(engine: ItemEngine) -> None:
    memory = memory_on(engine)
    await memory.register(HUNTER)
    decision, _ = await memory.log_decision(HUNTER, TYPE, context={"a": 1}, decision_id="dec-odd")
    pk, sk = keys.decision_pk(HUNTER.agent_id, TYPE), keys.decision_sk(decision.created_at, "dec-odd")
    item = await engine.get("decisions", pk, sk)
    assert item is not None
    await engine.write([Put("decisions", {**item, "unknown_field": 1})])
    q = DecisionQuery(HUNTER.agent_id, decision_type=TYPE)
    with pytest.raises(ValidationError):
        await memory.store.query_decisions(q, limit=10, cursor=None)
    with pytest.raises(ValidationError):
        await memory.store.query_decision_summaries(q, limit=10, cursor=None, caller_agent=HUNTER.agent_id)
    # A time without its offset is refused the same way.
    await engine.write([Put("decisions", {**item, "expires_at": "2027-01-01T00:00:00"})])
    with pytest.raises(ValidationError):
        await memory.store.query_decisions(q, limit=10, cursor=None)
    with pytest.raises(ValidationError):
        await memory.store.query_decision_summaries(q, limit=10, cursor=None, caller_agent=HUNTER.agent_id)


async def _notes_both_ways(memory: Any, agent: str) -> None:
    store = memory.store
    for resumable in (True, False):
        cursor: str | None = None
        while True:
            fast = await store.query_note_summaries(agent, limit=2, cursor=cursor, resumable=resumable)
            slow = await store.query_notes(agent, limit=2, cursor=cursor, resumable=resumable)
            built = [NoteSummary.of(n) for n in slow.items]
            assert fast.next_cursor == slow.next_cursor
            assert fast.items == built
            assert to_text([dump(s) for s in fast.items]) == to_text([dump(s) for s in built])
            if not fast.next_cursor or not resumable:
                break
            cursor = fast.next_cursor


async def test_note_summaries_of_stored_items_are_those_of_the_records(engine: ItemEngine) -> None:
    memory = memory_on(engine, FakeClock())
    await memory.register(HUNTER)
    values: list[Any] = [*CONTEXTS, "short", "y" * (PREVIEW_CHARS + 1), 3, 2.5, None, [1, "a"], True]
    for i, value in enumerate(values):
        await memory.store_note(HUNTER, f"note-{i:02d}", value, ttl_minutes=30 + i)
    await _notes_both_ways(memory, HUNTER.agent_id)


async def test_a_note_item_of_another_shape_is_validated_as_before(engine: ItemEngine) -> None:
    memory = memory_on(engine)
    await memory.register(HUNTER)
    await memory.store_note(HUNTER, "odd", {"a": 1})
    pk = keys.note_pk(HUNTER.agent_id)
    item = (await engine.query("state", pk)).items[0]
    for odd in ({**item, "unknown_field": 1}, {**item, "expires_at": "2027-01-01T00:00:00"}):
        await engine.write([Put("state", odd)])
        with pytest.raises(ValidationError):
            await memory.store.query_notes(HUNTER.agent_id, limit=10, cursor=None)
        with pytest.raises(ValidationError):
            await memory.store.query_note_summaries(HUNTER.agent_id, limit=10, cursor=None)
    # A time in another offset is read in UTC, by both.
    await engine.write([Put("state", {**item, "expires_at": "2030-01-01T02:00:00+02:00"})])
    await _notes_both_ways(memory, HUNTER.agent_id)


async def test_a_summary_is_remembered_for_its_item_alone(engine: ItemEngine) -> None:
    """Summaries are remembered under the stored item's whole content (and the reader): a read
    again gives the same summaries, and a changed item (an outcome recorded, a note rewritten),
    another reader, or an item whose text holds null is summarised afresh."""
    memory = memory_on(engine, FakeClock())
    for caller in (HUNTER, RISK):
        await memory.register(caller)
    store = memory.store
    q = DecisionQuery(HUNTER.agent_id, decision_type=TYPE)
    await memory.log_decision(HUNTER, TYPE, context={"a": 1}, decision_id="dec-m")
    await memory.log_decision(HUNTER, TYPE, context={"a": None}, decision_id="dec-n")

    async def summaries(reader: str | None) -> list[DecisionSummary]:
        return (await store.query_decision_summaries(q, limit=10, cursor=None, caller_agent=reader)).items

    first = await summaries(HUNTER.agent_id)
    assert await summaries(HUNTER.agent_id) == first
    assert [s.agent_id for s in await summaries("dashboard")] == [HUNTER.agent_id] * 2
    assert [s.agent_id for s in await summaries(HUNTER.agent_id)] == [None, None]
    await memory.record_outcome(HUNTER, "dec-m", Outcome(success=True, quality_score=0.5))
    after = {s.decision_id: s for s in await summaries(HUNTER.agent_id)}
    assert (after["dec-m"].success, after["dec-m"].quality_score) == (True, 0.5)
    assert after["dec-n"] == {s.decision_id: s for s in first}["dec-n"]
    for value in ({"v": 1}, {"v": 2}, {"v": 1}, "z" * 5000, "z" * 5000):
        await memory.store_note(HUNTER, "k", value)
        page = await store.query_note_summaries(HUNTER.agent_id, limit=10, cursor=None)
        assert page.items == [
            NoteSummary.of(n) for n in (await store.query_notes(HUNTER.agent_id, limit=10, cursor=None)).items
        ]
