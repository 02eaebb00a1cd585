"""The item engine: the few primitives every backend implements.

The memory's records (decisions, patterns, state, signals, notes, rollups) are mapped onto keyed
items once, in :mod:`agent_memory.storage.store`, following the DynamoDB key design of the plan.
A backend only has to provide these primitives, with DynamoDB's semantics:

- four tables (:data:`TABLES`), each keyed by ``pk`` (partition) and ``sk`` (sort), with up to three
  global secondary indexes whose keys are the item attributes ``gsi1pk``/``gsi1sk`` ... ``gsi3pk``/
  ``gsi3sk`` (an item without the pair is absent from that index: sparse indexes);
- all sort keys are strings compared byte-wise (the record layer encodes times and numbers as
  fixed-width strings, so the order is the same on every backend);
- ``ttl`` is an epoch-seconds number attribute; backends may delete such items lazily, and the
  record layer filters expired items on every read, so lagging deletion is never visible;
- conditional writes: single operations or all-or-nothing transactions (at most
  :data:`MAX_TRANSACTION_ITEMS` operations), raising :class:`ConditionFailed` with the item as it is;
- queries return at most ``limit`` items in sort-key order and a continuation key.

Item values are JSON-like: str, bool, int, float, None, list, dict. Backends must round-trip them
exactly (DynamoDB stores numbers as Decimal; the DynamoDB engine converts at its edge).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeAlias

from agent_memory.errors import TransactionConflict
from agent_memory.item_rules import MAX_ITEM_BYTES, MAX_TRANSACTION_ITEMS

__all__ = [
    "MAX_ITEM_BYTES",
    "MAX_TRANSACTION_ITEMS",
    "PHYSICAL_NAMES",
    "TABLES",
    "TTL_ATTRIBUTE",
    "Check",
    "Cond",
    "ConditionFailed",
    "Delete",
    "IndexName",
    "Item",
    "ItemEngine",
    "Key",
    "Put",
    "QueryPage",
    "TableName",
    "TransactionConflict",
    "Update",
    "WriteOp",
]

Item: TypeAlias = dict[str, Any]
Key: TypeAlias = dict[str, str]
TableName = Literal["decisions", "ltm", "state", "signals"]
IndexName = Literal["gsi1", "gsi2", "gsi3"]

# Which global secondary indexes each table has. Every index projects ALL attributes.
TABLES: Mapping[TableName, tuple[IndexName, ...]] = {
    "decisions": ("gsi1", "gsi2", "gsi3"),
    "ltm": ("gsi1", "gsi2", "gsi3"),
    "state": (),
    "signals": ("gsi1",),
}
# Physical table names (before the configurable prefix) are the plan's.
PHYSICAL_NAMES: Mapping[TableName, str] = {
    "decisions": "agent_decisions",
    "ltm": "agent_memory_ltm",
    "state": "agent_state",
    "signals": "agent_signals",
}
TTL_ATTRIBUTE = "ttl"


@dataclass(frozen=True)
class Cond:
    """One condition on the item a write targets. Several conditions on one write are ANDed.

    kinds:
    - ``item_exists`` / ``item_not_exists``: the item (its ``pk``) exists or not;
    - ``attr_exists`` / ``attr_not_exists``: attribute ``attr`` is present or absent;
    - ``eq``: attribute ``attr`` exists and equals ``value``;
    - ``at_most``: number attribute ``attr`` (0 when absent) is at most ``value`` (quota counters).
    """

    kind: Literal["item_exists", "item_not_exists", "attr_exists", "attr_not_exists", "eq", "at_most"]
    attr: str | None = None
    value: Any = None

    @staticmethod
    def exists() -> Cond:
        return Cond("item_exists")

    @staticmethod
    def not_exists() -> Cond:
        return Cond("item_not_exists")

    @staticmethod
    def has(attr: str) -> Cond:
        return Cond("attr_exists", attr)

    @staticmethod
    def lacks(attr: str) -> Cond:
        return Cond("attr_not_exists", attr)

    @staticmethod
    def eq(attr: str, value: Any) -> Cond:
        return Cond("eq", attr, value)

    @staticmethod
    def at_most(attr: str, value: int) -> Cond:
        return Cond("at_most", attr, value)


@dataclass(frozen=True)
class Put:
    """Write a whole item (replacing any existing one). ``item`` holds ``pk`` and ``sk``."""

    table: TableName
    item: Item
    conditions: tuple[Cond, ...] = ()


@dataclass(frozen=True)
class Update:
    """Change some attributes of an item, creating it if absent (unless a condition forbids).

    ``set`` assigns top-level attributes; ``add`` adds numbers to top-level number attributes
    (a missing attribute counts as 0); ``remove`` deletes top-level attributes. An attribute may
    appear in only one of the three.
    """

    table: TableName
    pk: str
    sk: str
    set: Mapping[str, Any] = field(default_factory=dict)
    add: Mapping[str, int | float] = field(default_factory=dict)
    remove: tuple[str, ...] = ()
    conditions: tuple[Cond, ...] = ()


@dataclass(frozen=True)
class Delete:
    table: TableName
    pk: str
    sk: str
    conditions: tuple[Cond, ...] = ()


@dataclass(frozen=True)
class Check:
    """A condition on another item inside a transaction; writes nothing."""

    table: TableName
    pk: str
    sk: str
    conditions: tuple[Cond, ...] = ()


WriteOp: TypeAlias = Put | Update | Delete | Check


class ConditionFailed(Exception):
    """A write's condition did not hold.

    ``index`` is the position of the failing operation in the list given to
    :meth:`ItemEngine.write` (0 for a single write); ``item`` is that operation's target item as it
    is now, or None if it does not exist.
    """

    def __init__(self, index: int, item: Item | None) -> None:
        super().__init__(f"condition failed on operation {index}")
        self.index = index
        self.item = item


@dataclass(frozen=True)
class QueryPage:
    items: list[Item]
    last_key: Key | None
    """Pass as ``start`` to continue; None when the partition range is exhausted."""


class ItemEngine(Protocol):
    """The primitives a storage backend implements. See the module docstring for semantics.

    Raises: :class:`ConditionFailed` on a failed condition; :class:`agent_memory.errors.LimitExceeded`
    for an item over :data:`MAX_ITEM_BYTES` or a transaction over :data:`MAX_TRANSACTION_ITEMS`
    (the item rules are in :mod:`agent_memory.item_rules`); :class:`~agent_memory.errors.InvalidInput`
    for a value the rules refuse; :class:`~agent_memory.errors.TransactionConflict` when concurrent
    transactions kept cancelling a write after the engine's own retries; a subclass of
    :class:`~agent_memory.errors.StorageUnavailable` for a storage fault, classified by the table in
    :mod:`agent_memory.storage.faults` (transient: throttled, busy, unreachable or past the call's
    deadline; permanent: full, corrupt, read-only). Programming errors (a wrong argument type, an
    operation that is not a WriteOp) raise TypeError/ValueError.
    """

    async def get(self, table: TableName, pk: str, sk: str, *, consistent: bool = True) -> Item | None:
        """The item with this key, or None. ``consistent=False`` may be served from DAX."""
        ...

    async def query(
        self,
        table: TableName,
        pk: str,
        *,
        index: IndexName | None = None,
        sk_gte: str | None = None,
        sk_lte: str | None = None,
        sk_prefix: str | None = None,
        forward: bool = True,
        limit: int = 100,
        start: Key | None = None,
        consistent: bool = True,
    ) -> QueryPage:
        """Items of one partition (of the table or of ``index``) in sort-key order.

        ``sk_gte``/``sk_lte`` bound the sort key inclusively; ``sk_prefix`` (exclusive with the two
        bounds) selects sort keys beginning with it. ``forward=False`` gives descending order.
        ``consistent=False`` declares the read staleness-tolerant: the DynamoDB engine may then serve
        it from DAX (whose caches writes do not invalidate) and reads eventually consistent.
        ``consistent=True`` on an index means "never from a cache"; DynamoDB's indexes are always
        eventually consistent themselves.
        """
        ...

    async def write(self, ops: Sequence[WriteOp]) -> None:
        """Apply one operation, or several as one all-or-nothing transaction."""
        ...

    async def update(self, op: Update) -> Item:
        """Apply one update and return the item as it is after it."""
        ...

    def scan(self, table: TableName) -> AsyncIterator[Item]:
        """Every item of a table, in no particular order. Admin only (export, tests): never on a
        tool path."""
        ...

    async def close(self) -> None: ...
