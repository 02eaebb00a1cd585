"""Stores written by earlier versions stay readable: decisions with every optional field stored
(nulls, empty lists), id items with decision_id/ref_pk/ref_sk, and (SQLite) rows whose JSON repeats
the key columns. Read, searched, given an outcome and retried like new ones."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

from agent_memory.memory.identity import Caller
from agent_memory.models import Outcome
from agent_memory.storage import keys
from agent_memory.storage.engine import ItemEngine, Put
from agent_memory.storage.records.base import REQUEST_TOKEN
from agent_memory.storage.sqlite import SqliteEngine
from agent_memory.storage.sqlite import items as rows
from tests.support import T0, FakeClock, memory_on

HUNTER = Caller("market-hunter")
_CREATED_AT = T0 - timedelta(minutes=30)
CREATED = keys.iso(_CREATED_AT)
EXPIRES = keys.iso(_CREATED_AT + timedelta(days=90))
TTL = keys.epoch(_CREATED_AT + timedelta(days=90))


def _old_items(decision_id: str) -> list[dict[str, object]]:
    """A decision and its id item exactly as the previous layout wrote them."""
    pk = keys.decision_pk(HUNTER.agent_id, "SOURCE_SELECTION")
    sk = f"{CREATED}#{decision_id}"
    decision: dict[str, object] = {
        "decision_id": decision_id,
        "agent_id": HUNTER.agent_id,
        "agent_version": None,
        "decision_type": "SOURCE_SELECTION",
        "created_at": CREATED,
        "expires_at": EXPIRES,
        "context": {"whale_count": 7},
        "reasoning": {},
        "parent_decision_id": None,
        "patterns_applied": [],
        "memory_influenced": False,
        "pk": pk,
        "sk": sk,
        "ttl": TTL,
        "gsi2pk": "decision_type#SOURCE_SELECTION",
        "gsi2sk": f"{CREATED}#{HUNTER.agent_id}#{decision_id}",
        "gsi3pk": keys.decision_timeline_pk(HUNTER.agent_id),
        "gsi3sk": sk,
    }
    id_item = {
        # (at the key of per-author ids: the migration from global ids keeps these attributes)
        "pk": keys.decision_id_pk(HUNTER.agent_id, decision_id),
        "sk": keys.ID_SK,
        "ttl": TTL,
        "decision_id": decision_id,
        "agent_id": HUNTER.agent_id,
        "decision_type": "SOURCE_SELECTION",
        "created_at": CREATED,
        "memory_influenced": False,
        "pattern_refs": [],
        "ref_pk": pk,
        "ref_sk": sk,
    }
    return [id_item, decision]


async def _check_readable(memory, decision_id: str) -> None:  # type: ignore[no-untyped-def]
    stored = await memory.get_decision(HUNTER, decision_id)
    assert stored.context == {"whale_count": 7} and stored.agent_version is None
    assert stored.patterns_applied == [] and stored.outcome is None
    found = await memory.search_decisions(HUNTER, decision_type="SOURCE_SELECTION")
    assert [d.decision_id for d in found.items] == [decision_id]
    updated, created = await memory.record_outcome(
        HUNTER, decision_id, Outcome(success=True, quality_score=0.5)
    )
    assert created and updated.outcome is not None and updated.outcome.quality_score == 0.5
    wins = await memory.search_decisions(HUNTER, success=True)
    assert [d.decision_id for d in wins.items] == [decision_id]
    assert (await memory.get_decision(HUNTER, decision_id)).outcome == updated.outcome


async def test_decisions_of_the_previous_layout_are_read_and_updated(engine: ItemEngine) -> None:
    memory = memory_on(engine, FakeClock(now=T0))
    await engine.write([Put("decisions", item) for item in _old_items("dec-old")])
    await _check_readable(memory, "dec-old")


async def test_new_decisions_store_no_defaults_and_a_lean_id_item(engine: ItemEngine) -> None:
    memory = memory_on(engine, FakeClock(now=T0))
    decision, _ = await memory.log_decision(
        HUNTER, "SOURCE_SELECTION", context={"a": 1}, decision_id="dec-new"
    )
    id_item = await engine.get("decisions", keys.decision_id_pk(HUNTER.agent_id, "dec-new"), keys.ID_SK)
    assert id_item is not None
    # (and the write's request token, which tells a retry of this write from another writer)
    assert set(id_item) == {"pk", "sk", "ttl", "agent_id", "decision_type", "created_at", REQUEST_TOKEN}
    item = await engine.get(
        "decisions",
        keys.decision_pk(HUNTER.agent_id, "SOURCE_SELECTION"),
        keys.decision_sk(decision.created_at, "dec-new"),
    )
    assert item is not None
    for absent in (
        "agent_version",
        "parent_decision_id",
        "patterns_applied",
        "memory_influenced",
        "reasoning",
    ):
        assert absent not in item
    assert await memory.get_decision(HUNTER, "dec-new") == decision


async def test_sqlite_rows_with_keys_in_their_json_load(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    engine = await SqliteEngine.open(path)
    await engine.close()
    conn = sqlite3.connect(path)
    for item in _old_items("dec-old"):
        gsi = [item.get(f"gsi{n}{half}") for n in (1, 2, 3) for half in ("pk", "sk")]
        conn.execute(
            "INSERT INTO items (tbl, pk, sk, data, ttl, gsi1pk, gsi1sk, gsi2pk, gsi2sk, gsi3pk, gsi3sk) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ("decisions", item["pk"], item["sk"], json.dumps(item), item["ttl"], *gsi),
        )
    conn.commit()
    conn.close()
    engine = await SqliteEngine.open(path)
    try:
        await _check_readable(memory_on(engine, FakeClock(now=T0)), "dec-old")
        # The row rewritten by the update is in the new layout: its JSON no longer holds the keys.
        row = (
            sqlite3.connect(path)
            .execute("SELECT data FROM items WHERE sk LIKE ?", (f"{CREATED}#%",))
            .fetchone()
        )
        stored = rows.load(row[0])
        assert "gsi2sk" not in stored and "outcome" in stored
    finally:
        await engine.close()
