"""Records read back without re-validation (storage/records/trusted.py) are the records full
validation would give, and an item of an unexpected shape is still refused by validation."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from agent_memory.models import (
    AgentProfile,
    AgentState,
    Decision,
    Delivery,
    InboxEntry,
    Note,
    Outcome,
    Pattern,
    PatternCondition,
    PatternEvidence,
    PatternFeedback,
    Signal,
    StateCheckpoint,
    utcnow,
)
from agent_memory.storage.records.trusted import STORED, stored

NOW = utcnow()


def _records() -> list[BaseModel]:
    signal = Signal(
        signal_id="sig_1",
        signal_type="WHALE_ACTIVITY",
        source_agent="hunter",
        target_agents=["risk", "exec"],
        severity="high",
        confidence=1,
        data={"whales": 3, "ratio": 0.25},
        recommended_action="look",
        created_at=NOW,
        expires_at=NOW + timedelta(hours=1),
        processing_status={"risk": Delivery(status="processed", processed_at=NOW, decision_id="dec_1")},
    )
    state = AgentState(
        agent_id="hunter", version=3, current={"cycle": 2}, updated_at=NOW, updated_by="hunter"
    )
    return [
        Decision(
            decision_id="dec_1",
            agent_id="hunter",
            decision_type="SOURCE_SELECTION",
            created_at=NOW,
            expires_at=NOW + timedelta(days=90),
            context={"market": {"trend": "bullish", "volatility": 0.3}, "n": [1, 2.5, None, True]},
            reasoning={"chosen": "whales"},
            patterns_applied=["pat_1"],
            outcome=Outcome(success=True, quality_score=1.0, latency_ms=12, errors=["slow"]),
        ),
        Decision(
            decision_id="dec_2",
            agent_id="hunter",
            decision_type="SOURCE_SELECTION",
            created_at=NOW,
            expires_at=NOW,
        ),
        Pattern(
            pattern_id="pat_1",
            agent_id="hunter",
            description="bullish with whales",
            conditions=[
                PatternCondition(field="market.trend", op="eq", value="bullish"),
                PatternCondition(field="n", op="gte", value=3),
            ],
            confidence=0.5,
            success_rate=1,
            sample_size=10,
            shared_with=["*"],
            created_at=NOW,
            updated_at=NOW,
            feedback=PatternFeedback(applied_count=2, applied_successes=1, last_accessed=NOW),
            evidence=PatternEvidence(measured_confidence=0.4, basis="applications"),
        ),
        signal,
        InboxEntry(agent_id="risk", signal=signal, delivery=Delivery()),
        Note(agent_id="hunter", key="seen", value=[1, {"a": None}], created_at=NOW, expires_at=NOW),
        state,
        StateCheckpoint(agent_id="hunter", version=3, label="before", created_at=NOW, state=state),
        AgentProfile(agent_id="hunter", role="observer", first_seen=NOW, last_seen=NOW),
    ]


def _as_stored(record: BaseModel) -> dict[str, Any]:
    # What the store keeps: JSON, the fields that hold their default left out.
    data: dict[str, Any] = json.loads(record.model_dump_json(exclude_defaults=True))
    return data


@pytest.mark.parametrize("record", _records(), ids=lambda r: type(r).__name__)
def test_a_stored_record_is_the_validated_one(record: BaseModel) -> None:
    data = _as_stored(record)
    cls = type(record)
    validated = cls.model_validate(data, context=STORED)
    built = stored(cls, data)
    assert built == validated == record
    assert built.model_fields_set == validated.model_fields_set
    assert built.model_dump_json() == validated.model_dump_json()
    for name in cls.model_fields:  # the same Python types, not merely equal values (1 vs 1.0)
        assert type(getattr(built, name)) is type(getattr(validated, name)), name


def test_integral_numbers_in_float_fields_become_floats() -> None:
    data = _as_stored(_records()[0])
    data["outcome"]["quality_score"] = 1  # DynamoDB gives integral numbers back as ints
    built = stored(Decision, data)
    assert built.outcome is not None and type(built.outcome.quality_score) is float


@pytest.mark.parametrize(
    "change",
    [
        {"created_at": "not a time"},
        {"created_at": "2026-12-02T10:00:00"},  # no timezone
        {"unexpected": 1},
        {"outcome": {"success": True, "surprise": 1}},
    ],
)
def test_an_item_of_another_shape_is_refused_as_validation_refuses_it(change: dict[str, Any]) -> None:
    data = {**_as_stored(_records()[0]), **change}
    with pytest.raises(ValidationError):
        Decision.model_validate(data, context=STORED)
    with pytest.raises(ValidationError):
        stored(Decision, data)


def test_a_missing_required_field_is_refused() -> None:
    data = _as_stored(_records()[0])
    del data["created_at"]
    with pytest.raises(ValidationError):
        stored(Decision, data)
