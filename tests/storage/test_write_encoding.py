"""How writes encode what they store (issue #14): decision items and an ack's delivery built field
by field, rows encoded by orjson (json for what it refuses), time keys and quota buckets formatted
without strptime/strftime per call. Each must give exactly what the general path gives."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import pytest

from agent_memory.errors import InvalidInput
from agent_memory.models import STATE_SECTIONS, AgentState, Decision, Delivery, Note, Outcome
from agent_memory.storage import keys
from agent_memory.storage.engine import Cond, ConditionFailed, Item, ItemEngine, Put, Update, WriteOp
from agent_memory.storage.records.base import dump, dump_compact
from agent_memory.storage.records.decisions import decision_fields, outcome_fields
from agent_memory.storage.records.quotas import bucket_end, bucket_of
from agent_memory.storage.records.signals import delivery_fields
from agent_memory.storage.records.state import _note_fields, _state_fields
from agent_memory.storage.sqlite.items import load_row, row
from tests.fixtures.sqlite import sqlite_engine


def _time(rng: random.Random) -> datetime:
    zone = rng.choice([UTC, timezone(timedelta(hours=rng.randint(-12, 12)))])
    return datetime(
        rng.choice([999, 2026, 9998]), rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23),
        rng.randint(0, 59), rng.randint(0, 59), rng.choice([0, 5, rng.randint(0, 999_999)]), tzinfo=zone,
    )  # fmt: skip


def test_decision_and_outcome_fields_are_the_compact_dump() -> None:
    rng = random.Random(14)
    for _ in range(2000):
        t = _time(rng)
        outcome = Outcome(
            success=rng.random() < 0.5,
            quality_score=rng.choice([None, 0.0, 0.5, 1.0]),
            latency_ms=rng.choice([None, 0.0, 12.5, 3.0]),
            signals_generated=rng.choice([0, 3]),
            errors=rng.choice([[], ["late"]]),
            recorded_at=t,
        )
        decision = Decision(
            decision_id="d",
            agent_id="a",
            agent_version=rng.choice([None, "v1", ""]),
            decision_type="T",
            created_at=t,
            expires_at=t + timedelta(days=90),
            context=rng.choice([{}, {"a": 1.0, "b": (1, 2), "c": {"d": [1.5, None, True]}}]),
            reasoning=rng.choice([{}, {"x": "é"}]),
            parent_decision_id=rng.choice([None, "p"]),
            parent_agent_id=rng.choice([None, "b"]),
            patterns_applied=rng.choice([[], ["p1", "p2"]]),
            memory_influenced=rng.random() < 0.5,
            outcome=rng.choice([None, outcome]),
        )
        # Same keys, order, types and values as pydantic's dump (json.dumps shows all four).
        assert json.dumps(decision_fields(decision)) == json.dumps(dump_compact(decision, "outcome"))
        assert json.dumps(outcome_fields(outcome)) == json.dumps(dump_compact(outcome))


def test_delivery_fields_are_the_dump() -> None:
    rng = random.Random(14)
    for _ in range(1000):
        t = _time(rng)
        status: Literal["processed", "rejected"] = rng.choice(["processed", "rejected"])
        decision_id = rng.choice([None, "risk-1"])
        expected = dump(Delivery(status=status, processed_at=t, decision_id=decision_id))
        assert json.dumps(delivery_fields(status, t, decision_id)) == json.dumps(expected)


def test_state_and_note_items_are_the_dump() -> None:
    rng = random.Random(14)
    for _ in range(1000):
        t = _time(rng)
        sections = {
            name: rng.choice([{}, {"a": 1.0, "b": [1, {"c": None}]}, {"é": "x"}]) for name in STATE_SECTIONS
        }
        state = AgentState(
            agent_id="a",
            version=rng.randint(0, 5),
            agent_version=rng.choice([None, "v2"]),
            updated_at=rng.choice([None, t]),
            updated_by=rng.choice([None, "a"]),
            **sections,
        )
        assert json.dumps(_state_fields(state)) == json.dumps(dump(state))
        note = Note(
            agent_id="a",
            key="k/1",
            value=rng.choice([*VALUES, (1, 2), {"t": (1,)}]),
            created_at=t,
            expires_at=t,
        )
        assert json.dumps(_note_fields(note)) == json.dumps(dump(note))


VALUES: list[Any] = [
    "café ☕", "", "line\nbreak\t\u2028\x00", 0, -0.0, 1e-05, 1e16, 1.5e100, 1e-120, 2**63 - 1, 2**63,
    -(2**64), 10**37 + 1, 123456789012345678901234567, [1, [2, [3]]], {"k": {"n": None, "b": False}},
]  # fmt: skip


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_rows_read_back_as_written(value: Any) -> None:
    item = {"pk": "p", "sk": "s", "v": value, "pad": "x" * 300}
    stored = row("state", item)
    # The row's text is JSON any reader takes, and its stored form (compressed here) loads back.
    assert json.loads(stored.data) == {"v": value, "pad": "x" * 300}
    loaded = load_row((stored.stored, "p", "s", None, None, None, None, None, None))
    assert json.dumps(loaded, sort_keys=True) == json.dumps(item, sort_keys=True)


def test_a_lone_surrogate_is_refused_by_name() -> None:
    with pytest.raises(InvalidInput, match=r"attribute 'v\.k' is not valid Unicode"):
        row("state", {"pk": "p", "sk": "s", "v": {"k": "\ud800"}})


async def test_rows_written_with_either_encoder_read_back(tmp_path: Path) -> None:
    async with sqlite_engine(tmp_path / "m.db") as engine:
        items = [{"pk": "p", "sk": str(i), "v": v, "pad": "y" * (i * 40)} for i, v in enumerate(VALUES)]
        await engine.write([Put("state", item) for item in items])
        for item in items:
            got = await engine.get("state", "p", item["sk"])
            assert json.dumps(got, sort_keys=True) == json.dumps(item, sort_keys=True)


def test_time_keys_and_buckets_are_as_strftime_formats_them() -> None:
    rng = random.Random(14)
    for _ in range(3000):
        t = _time(rng)
        utc = t.astimezone(UTC)
        assert keys.iso(t) == utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert keys.bucket(t, "hour") == utc.strftime("%Y-%m-%dT%H")
        assert keys.bucket(t, "day") == utc.strftime("%Y-%m-%d")
        near, far = utc - timedelta(hours=47), utc - timedelta(hours=49)
        assert bucket_of(t, near) == utc.strftime("%Y%m%d%H")
        assert bucket_of(t, far) == utc.strftime("%Y%m%d")
        for bucket, length in (
            (utc.strftime("%Y%m%d%H"), timedelta(hours=1)),
            (utc.strftime("%Y%m%d"), timedelta(days=1)),
        ):
            if len(bucket) in (8, 10):
                fmt = "%Y%m%d%H" if len(bucket) == 10 else "%Y%m%d"
                assert bucket_end(bucket) == datetime.strptime(bucket, fmt).replace(tzinfo=UTC) + length
    with pytest.raises(ValueError):
        bucket_end("2026x20208")


# --- creates: puts conditional on their item not existing -------------------------------------------


async def test_creates_report_the_first_failing_operation_with_its_item(engine: ItemEngine) -> None:
    """The embedded store inserts such puts without reading them first (the key's unique index
    refuses an existing one) and reads them only to report a failure: the failure reported must
    be the first in the operations' order, with the item as stored, as on DynamoDB."""
    taken = {"pk": "taken", "sk": "s", "owner": "someone"}
    await engine.write([Put("ltm", taken), Put("ltm", {"pk": "n", "sk": "s", "v": 1})])

    def create(pk: str) -> Put:
        return Put("ltm", {"pk": pk, "sk": "s", "owner": "me"}, (Cond.not_exists(),))

    failing_update = Update("ltm", "n", "s", add={"v": 1}, conditions=(Cond.eq("v", 5),))
    cases: list[tuple[list[WriteOp], int, Item]] = [
        ([create("a"), create("taken"), create("b")], 1, taken),
        ([create("a"), create("b"), create("c"), create("taken")], 3, taken),
        ([create("taken"), failing_update], 0, taken),  # the create is first: it is reported
        ([create("a"), failing_update, create("taken")], 1, {"pk": "n", "sk": "s", "v": 1}),
    ]
    for ops, index, item in cases:
        with pytest.raises(ConditionFailed) as failed:
            await engine.write(ops)
        assert (failed.value.index, failed.value.item) == (index, item)
        # Nothing of a refused transaction is written.
        for pk in ("a", "b", "c"):
            assert await engine.get("ltm", pk, "s") is None
        assert await engine.get("ltm", "taken", "s") == taken
        assert await engine.get("ltm", "n", "s") == {"pk": "n", "sk": "s", "v": 1}
    await engine.write([create("a"), create("b"), Update("ltm", "n", "s", add={"v": 1})])
    assert await engine.get("ltm", "b", "s") == {"pk": "b", "sk": "s", "owner": "me"}
    assert await engine.get("ltm", "n", "s") == {"pk": "n", "sk": "s", "v": 2}
