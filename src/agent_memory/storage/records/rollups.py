"""Rollup counters: decision rollups (hour and day) and signal rollups (hour), read back for
analytics. They are written in the same transaction as what they count (see decisions, signals)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent_memory import rollups
from agent_memory.storage import keys
from agent_memory.storage.engine import Key, Update
from agent_memory.storage.records.base import RecordBase, strip_keys


@dataclass(frozen=True)
class RollupRow:
    bucket: str
    decision_type: str | None
    counters: dict[str, Any]


def rollup_ops(agent: str, created: datetime, decision_type: str, delta: rollups.Delta) -> list[Update]:
    """The hourly and daily decision-rollup counters of one decision event."""
    grains: tuple[tuple[keys.Grain, str], ...] = (
        ("hour", keys.bucket(created, "hour")),
        ("day", keys.bucket(created, "day")),
    )
    return [
        Update(
            "state",
            keys.rollup_pk(agent, grain),
            keys.rollup_sk(bucket, decision_type),
            set={"bucket": bucket, "decision_type": decision_type},
            add=delta,
        )
        for grain, bucket in grains
    ]


class RollupRecords(RecordBase):
    def _rollup_ops(
        self, agent: str, created: datetime, decision_type: str, delta: rollups.Delta
    ) -> list[Update]:
        return rollup_ops(agent, created, decision_type, delta)

    async def query_rollups(
        self, agent: str, grain: keys.Grain, first: str, last: str, decision_type: str | None = None
    ) -> list[RollupRow]:
        """Decision rollups of one agent for buckets first..last (inclusive). Requests: one query
        per 1 MB of rollups (a 30-day window of daily rollups is a few KB)."""
        rows: list[RollupRow] = []
        start: Key | None = None
        while True:
            page = await self.engine.query(
                "state",
                keys.rollup_pk(agent, grain),
                sk_gte=first,
                sk_lte=last + "#\uffff",
                start=start,
                limit=1000,
            )
            for item in page.items:
                if decision_type is None or item.get("decision_type") == decision_type:
                    rows.append(RollupRow(item["bucket"], item.get("decision_type"), strip_keys(item)))
            if page.last_key is None:
                return rows
            start = page.last_key

    async def query_signal_rollups(self, agent: str, first: str, last: str) -> list[RollupRow]:
        rows: list[RollupRow] = []
        start: Key | None = None
        while True:
            page = await self.engine.query(
                "state",
                keys.signal_rollup_pk(agent, "hour"),
                sk_gte=first,
                sk_lte=last,
                start=start,
                limit=1000,
            )
            rows.extend(RollupRow(item["sk"], None, strip_keys(item)) for item in page.items)
            if page.last_key is None:
                return rows
            start = page.last_key
