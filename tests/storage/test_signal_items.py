"""The signal items as publish and ack write them (issue #14), on every backend:

- read_inbox's summaries, made from the stored inbox items, are the summaries of the entries read
  back (``SignalSummary.of``); an item of another shape is still built, so refused, as before;
- a signal item holds a delivery per acknowledgement only (a target without one is pending) and
  no index keys; the source keeps no ref to its own signal among its targets;
- signals written before (a pending delivery per target, the type index keys, a ref for the source
  itself) read, acknowledge and conflict exactly as those written now;
- the head an acknowledgement reads (the tool's path: no Signal built) is that of the signal read
  back, for items of every shape, and it writes and answers as ``ack_signal`` does.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from agent_memory.api.compact import PREVIEW_CHARS, dump, to_text
from agent_memory.api.results import SignalSummary
from agent_memory.errors import AccessDenied, Conflict, InvalidInput, NotFound
from agent_memory.memory.identity import Caller
from agent_memory.memory.service import Memory
from agent_memory.models import Signal
from agent_memory.storage import keys
from agent_memory.storage.engine import ItemEngine, Put
from agent_memory.storage.records.base import dump as dump_record
from agent_memory.storage.records.signals import SignalHead, signal_head
from tests.support import FakeClock, memory_on

HUNTER, RISK, EXEC = Caller("market-hunter"), Caller("risk-manager"), Caller("trade-executor")
OBSERVER = Caller("dashboard", "observer")

PAYLOADS: list[dict[str, Any]] = [
    {"data": {}},
    {"data": {"whale_count": 5}, "severity": "high"},
    {"data": {"long": "x" * (PREVIEW_CHARS + 5)}, "context": {"market": {"trend": "bullish"}}},
    {"data": {"ratio": 2 / 3, "big": 12345678901234567890123456789012345678}, "confidence": 1.0},
    {"data": {"text": 'naïve \u2028 "quoted"'}, "recommended_action": "MONITOR", "severity": "low"},
    {"data": {"n": [1, 2.5, None, True]}, "context": {"many": list(range(60))}, "confidence": 0.0},
]


async def _team(engine: ItemEngine, clock: FakeClock | None = None) -> Memory:
    memory = memory_on(engine, clock)
    for caller in (HUNTER, RISK, EXEC):
        await memory.register(caller)
    return memory


async def _summaries_both_ways(memory: Memory, reader: Caller) -> None:
    for status in ("pending", "processed", "rejected"):
        cursor: str | None = None
        while True:
            fast = await memory.read_inbox_summaries(reader, status, limit=2, cursor=cursor)  # type: ignore[arg-type]
            slow = await memory.read_inbox(reader, status, limit=2, cursor=cursor)  # type: ignore[arg-type]
            built = [SignalSummary.of(e) for e in slow.items]
            assert fast.next_cursor == slow.next_cursor
            assert fast.entries == built
            assert [dump(s) for s in fast.entries] == [dump(s) for s in built]
            assert to_text([dump(s) for s in fast.entries]) == to_text([dump(s) for s in built])
            if fast.next_cursor is None:
                break
            cursor = fast.next_cursor


async def test_inbox_summaries_are_those_of_the_entries(engine: ItemEngine) -> None:
    memory = await _team(engine)
    decision, _ = await memory.log_decision(RISK, "RISK_ASSESSMENT", decision_id="risk-1")
    for i, payload in enumerate(PAYLOADS):
        await memory.publish_signal(
            HUNTER,
            signal_type="WHALE_ACTIVITY" if i % 2 else "MARKET_HALT",
            target_agents=[RISK.agent_id, EXEC.agent_id],
            **{"confidence": 0.85, **payload},
            signal_id=f"sig-{i}",
        )
    await memory.ack_signal(RISK, "sig-1", "processed", decision.decision_id)
    await memory.ack_signal(RISK, "sig-2", "rejected")
    await memory.ack_signal(RISK, "sig-3", "processed")
    assert [s.signal_id for s in (await memory.read_inbox_summaries(RISK)).entries] == [
        "sig-5", "sig-4", "sig-0",
    ]  # fmt: skip
    processed = (await memory.read_inbox_summaries(RISK, "processed")).entries
    assert [(s.signal_id, s.status, s.decision_id) for s in processed] == [
        ("sig-3", "processed", None), ("sig-1", "processed", "risk-1"),
    ]  # fmt: skip
    await _summaries_both_ways(memory, RISK)
    await _summaries_both_ways(memory, EXEC)
    filtered = await memory.read_inbox_summaries(EXEC, signal_type="MARKET_HALT")
    assert [s.signal_id for s in filtered.entries] == ["sig-4", "sig-2", "sig-0"]


async def test_an_inbox_item_of_another_shape_is_validated_as_before(engine: ItemEngine) -> None:
    memory = await _team(engine)
    await memory.publish_signal(
        HUNTER,
        signal_type="X",
        data={"a": 1},
        target_agents=[RISK.agent_id],
        confidence=0.5,
        signal_id="s-odd",
    )
    page = await engine.query("signals", keys.inbox_pk(RISK.agent_id), limit=10)
    (item,) = page.items
    odd = [
        {**item, "signal": {**item["signal"], "unknown_field": 1}},
        {**item, "signal": {**item["signal"], "created_at": "2027-01-01T00:00:00"}},
        {**item, "signal": {**item["signal"], "confidence": "high"}},
        {**item, "delivery": {**item["delivery"], "processed_at": "yesterday"}},
    ]
    for shape in odd:
        await engine.write([Put("signals", shape)])
        with pytest.raises(ValidationError):
            await memory.read_inbox(RISK)
        with pytest.raises(ValidationError):
            await memory.read_inbox_summaries(RISK)


async def test_the_signal_item_holds_acknowledgements_and_the_source_no_ref_to_itself(
    engine: ItemEngine,
) -> None:
    memory = await _team(engine)
    targets = [HUNTER.agent_id, RISK.agent_id, EXEC.agent_id]
    await memory.publish_signal(
        HUNTER,
        signal_type="WHALE_ACTIVITY",
        data={"n": 1},
        target_agents=targets,
        confidence=0.5,
        signal_id="s-1",
    )
    key = (keys.signal_pk(HUNTER.agent_id, "s-1"), keys.SIGNAL_SK)
    item = await engine.get("signals", *key)
    assert item is not None
    assert not [k for k in item if k.startswith(keys.delivery_attr(""))]
    assert "gsi1pk" not in item and "gsi1sk" not in item
    refs = {t: await engine.get("signals", keys.signal_ref_pk(t, "s-1"), HUNTER.agent_id) for t in targets}
    assert refs[HUNTER.agent_id] is None and refs[RISK.agent_id] and refs[EXEC.agent_id]

    signal = await memory.get_signal(HUNTER, "s-1")
    assert list(signal.processing_status) == targets
    assert {d.status for d in signal.processing_status.values()} == {"pending"}

    # The source is one of its targets: it finds and acknowledges its own signal by its own key.
    entry, acked = await memory.ack_signal(HUNTER, "s-1", "rejected")
    assert acked and entry.delivery.status == "rejected"
    assert list(entry.signal.processing_status) == targets  # the publisher sees every delivery
    await memory.ack_signal(RISK, "s-1", "processed")
    item = await engine.get("signals", *key)
    assert item is not None
    assert sorted(k for k in item if k.startswith(keys.delivery_attr(""))) == [
        keys.delivery_attr(HUNTER.agent_id), keys.delivery_attr(RISK.agent_id),
    ]  # fmt: skip
    signal = await memory.get_signal(HUNTER, "s-1")
    assert list(signal.processing_status) == targets
    assert [d.status for d in signal.processing_status.values()] == ["rejected", "processed", "pending"]
    # A target sees its own delivery only, pending ones included.
    assert list((await memory.get_signal(EXEC, "s-1")).processing_status) == [EXEC.agent_id]
    assert (await memory.get_signal(EXEC, "s-1")).processing_status[EXEC.agent_id].status == "pending"
    with pytest.raises(Conflict):
        await memory.ack_signal(HUNTER, "s-1", "processed")
    assert not (await memory.ack_signal(HUNTER, "s-1", "rejected"))[1]


async def _as_written_before(engine: ItemEngine, source: str, signal_id: str) -> None:
    """Rewrite a signal as the store wrote it before issue #14's changes: a pending delivery per
    target without one, the type index keys, and a ref for the source among its targets."""
    key = (keys.signal_pk(source, signal_id), keys.SIGNAL_SK)
    item = await engine.get("signals", *key)
    assert item is not None
    old = dict(item)
    pending = {"status": "pending", "processed_at": None, "decision_id": None}
    for target in item["target_agents"]:
        old.setdefault(keys.delivery_attr(target), pending)
    old["gsi1pk"] = keys.signal_type_pk(item["signal_type"])
    old["gsi1sk"] = keys.signal_type_sk(datetime.fromisoformat(item["created_at"]), signal_id)
    writes = [Put("signals", old)]
    if source in item["target_agents"]:
        ref = {
            "pk": keys.signal_ref_pk(source, signal_id),
            "sk": keys.signal_ref_sk(source),
            "ttl": item["ttl"],
            "source_agent": source,
        }
        writes.append(Put("signals", ref))
    await engine.write(writes)


async def test_signals_written_before_read_and_acknowledge_the_same(engine: ItemEngine) -> None:
    clock = FakeClock()
    memory = await _team(engine, clock)
    targets = [HUNTER.agent_id, RISK.agent_id, EXEC.agent_id]
    for signal_id in ("old-1", "new-1"):
        await memory.publish_signal(
            HUNTER, signal_type="W", data={"n": 1}, target_agents=targets, confidence=0.5, signal_id=signal_id
        )
    await _as_written_before(engine, HUNTER.agent_id, "old-1")
    # Another source's signal of the same id, to the hunter: asked which one, both layouts alike.
    await memory.publish_signal(
        RISK, signal_type="W", data={}, target_agents=[HUNTER.agent_id], confidence=0.5, signal_id="old-1"
    )
    await memory.publish_signal(
        RISK, signal_type="W", data={}, target_agents=[HUNTER.agent_id], confidence=0.5, signal_id="new-1"
    )
    for signal_id in ("old-1", "new-1"):
        with pytest.raises(InvalidInput, match="from_agent"):
            await memory.ack_signal(HUNTER, signal_id, "processed")
        before = await memory.get_signal(HUNTER, signal_id, from_agent=HUNTER.agent_id)
        assert list(before.processing_status) == targets
        assert {d.status for d in before.processing_status.values()} == {"pending"}
        entry, acked = await memory.ack_signal(HUNTER, signal_id, "processed", from_agent=HUNTER.agent_id)
        assert acked and entry.delivery.status == "processed"
        # The risk manager used the id too (for a signal to the hunter): it names the source.
        with pytest.raises(InvalidInput, match="from_agent"):
            await memory.ack_signal(RISK, signal_id, "rejected")
        _, acked = await memory.ack_signal(RISK, signal_id, "rejected", from_agent=HUNTER.agent_id)
        assert acked
        with pytest.raises(Conflict):
            await memory.ack_signal(RISK, signal_id, "processed", from_agent=HUNTER.agent_id)
        with pytest.raises(AccessDenied):
            await memory.ack_signal(RISK, signal_id, "processed", from_agent=RISK.agent_id)
        after = await memory.get_signal(OBSERVER, signal_id, from_agent=HUNTER.agent_id)
        assert [(t, d.status) for t, d in after.processing_status.items()] == [
            (HUNTER.agent_id, "processed"), (RISK.agent_id, "rejected"), (EXEC.agent_id, "pending"),
        ]  # fmt: skip
    # Whatever the layout, the pending counts and the inboxes agree.
    assert (await memory.recall_stm(EXEC)).pending_signals == 2
    assert [s.signal_id for s in (await memory.read_inbox_summaries(EXEC)).entries] == ["new-1", "old-1"]


async def _head_both_ways(memory: Memory, source: str, signal_id: str) -> SignalHead:
    """The head an acknowledgement reads, checked against the head of the signal read back."""
    head = await memory.store.get_signal_head(source, signal_id)
    signal = await memory.store.get_signal(source, signal_id)
    assert head is not None and signal is not None
    assert head == signal_head(signal)
    assert list(head.doc) == list(signal_head(signal).doc)  # the same text on the embedded store
    assert to_text(head.doc) == to_text(dump_record(signal, "processing_status"))
    return head


async def test_the_head_an_ack_reads_is_that_of_the_signal(engine: ItemEngine) -> None:
    memory = await _team(engine)
    for i, payload in enumerate(PAYLOADS):
        await memory.publish_signal(
            HUNTER,
            signal_type="W",
            target_agents=[RISK.agent_id, EXEC.agent_id],
            **{"confidence": 0.85, **payload},
            signal_id=f"sig-{i}",
        )
        await _head_both_ways(memory, HUNTER.agent_id, f"sig-{i}")
    await memory.ack_signal(RISK, "sig-1", "processed")
    await _head_both_ways(memory, HUNTER.agent_id, "sig-1")
    await _as_written_before(engine, HUNTER.agent_id, "sig-2")
    await _head_both_ways(memory, HUNTER.agent_id, "sig-2")


async def test_a_signal_item_of_another_shape_gives_the_head_of_its_signal(engine: ItemEngine) -> None:
    memory = await _team(engine)
    await memory.publish_signal(
        HUNTER,
        signal_type="W",
        data={"n": 1},
        target_agents=[RISK.agent_id],
        confidence=0.5,
        recommended_action="HOLD",
        signal_id="s-odd",
    )
    key = (keys.signal_pk(HUNTER.agent_id, "s-odd"), keys.SIGNAL_SK)
    item = await engine.get("signals", *key)
    assert item is not None
    created = datetime.fromisoformat(item["created_at"])
    without = {k: v for k, v in item.items() if k not in ("recommended_action", "context")}
    shapes = [
        {**item, "created_at": created.isoformat()},  # +00:00, not Z
        {**item, "created_at": created.astimezone(timezone(timedelta(hours=2))).isoformat()},
        {**item, "created_at": created.replace(microsecond=0).isoformat()[:-6] + ".000000Z"},
        {**item, "confidence": 1},  # DynamoDB gives back 1.0 as 1
        without,  # fields at their default left out
    ]
    for shape in shapes:
        await engine.write([Put("signals", shape)])
        head = await _head_both_ways(memory, HUNTER.agent_id, "s-odd")
        assert head.doc["created_at"].endswith("Z")
    for refused in ({**item, "unknown_field": 1}, {**item, "created_at": "yesterday"}):
        await engine.write([Put("signals", refused)])
        with pytest.raises(ValidationError):
            await memory.store.get_signal_head(HUNTER.agent_id, "s-odd")


async def test_acknowledge_writes_and_answers_as_ack(engine: ItemEngine) -> None:
    clock = FakeClock(step=timedelta(0))  # both acknowledgements at the same time
    memory = await _team(engine, clock)
    targets = [HUNTER.agent_id, RISK.agent_id, EXEC.agent_id]
    decision, _ = await memory.log_decision(RISK, "RISK_ASSESSMENT", decision_id="risk-1")
    for signal_id in ("by-ack", "by-acknowledge"):
        await memory.publish_signal(
            HUNTER, signal_type="W", data={"n": 1}, target_agents=targets, confidence=0.5, signal_id=signal_id
        )
    entry, acked = await memory.ack_signal(RISK, "by-ack", "processed", decision.decision_id)
    assert acked and entry.delivery.decision_id == decision.decision_id
    assert await memory.acknowledge_signal(RISK, "by-acknowledge", "processed", decision.decision_id)

    async def written(signal_id: str) -> list[Any]:
        signal = await engine.get("signals", keys.signal_pk(HUNTER.agent_id, signal_id), keys.SIGNAL_SK)
        inbox = await engine.query("signals", keys.inbox_pk(RISK.agent_id), sk_prefix="processed#")
        (done,) = [i for i in inbox.items if i["signal"]["signal_id"] == signal_id]
        return [
            to_text({k: v for k, v in item.items() if k not in ("pk", "sk", "request_token")}).replace(
                signal_id, "ID"
            )
            for item in (signal, done)
            if item is not None
        ]

    assert await written("by-ack") == await written("by-acknowledge")
    # Again the same: a no-op; otherwise a Conflict carrying the signal as the caller sees it.
    assert not await memory.acknowledge_signal(RISK, "by-acknowledge", "processed", decision.decision_id)
    with pytest.raises(Conflict) as conflict:
        await memory.acknowledge_signal(RISK, "by-acknowledge", "rejected")
    assert isinstance(conflict.value.current, Signal)
    assert list(conflict.value.current.processing_status) == [RISK.agent_id]
    with pytest.raises(NotFound):
        await memory.acknowledge_signal(Caller("stranger"), "by-acknowledge", "processed")
