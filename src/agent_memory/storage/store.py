"""The typed storage contract: records in, records out, over any :class:`ItemEngine`.

This module and :mod:`agent_memory.storage.records` (one module per record family) are the only
place that knows how records map onto items (with :mod:`keys`). They enforce
what must hold on every backend: conditional creates, versioned updates, idempotent retries,
transactional fan-out, rollups written in the same transaction as what they count, expiry filtered
on every read, opaque cursors. Access rules (who may read what) live one layer up, in
:mod:`agent_memory.memory`.

Every method documents the requests it sends; docs/DYNAMODB.md tabulates them per tool.
Raises: :class:`Conflict` / :class:`VersionConflict` (with the current record),
:class:`NotFound`, :class:`InvalidInput`, :class:`LimitExceeded`, :class:`StorageUnavailable`.
"""

from __future__ import annotations

from agent_memory.storage.records.base import MAX_SCANNED, STORED
from agent_memory.storage.records.budgets import BudgetRecords
from agent_memory.storage.records.decisions import DecisionQuery, DecisionRecords, DecisionRef
from agent_memory.storage.records.patterns import PatternRecords
from agent_memory.storage.records.quotas import QuotaRecords
from agent_memory.storage.records.registry import RegistryRecords
from agent_memory.storage.records.rollups import RollupRecords, RollupRow
from agent_memory.storage.records.signals import SignalRecords
from agent_memory.storage.records.state import StateRecords

__all__ = ["MAX_SCANNED", "STORED", "DecisionQuery", "DecisionRef", "MemoryStore", "RollupRow"]


class MemoryStore(
    DecisionRecords,
    PatternRecords,
    SignalRecords,
    StateRecords,
    RegistryRecords,
    RollupRecords,
    BudgetRecords,
    QuotaRecords,
):
    """Records over an item engine. Construct with the engine and a clock (tests pass a fake).

    One class per record family, in :mod:`agent_memory.storage.records`: decisions, patterns,
    signals, state (state, checkpoints and notes), registry (agents and tool usage), rollups.
    """
