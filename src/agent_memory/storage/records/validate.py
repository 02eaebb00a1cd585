"""Validation of raw items before an import writes them (issue #12: import wrote raw items, so a
line could forge a pattern "by" another agent, and one bad registry row broke ``list_agents``,
``publish_signal(['*'])`` and analytics).

Every record item is rebuilt through its record model (full validation: ids, sizes, numbers) and
its keys are recomputed from the record: an item whose keys do not match its content (a pattern
under alice's key that says it is bob's) is refused. Index and counter items are checked for the
shape the store writes. An item of no known family is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from agent_memory.models import (
    AgentProfile,
    AgentState,
    Decision,
    InboxEntry,
    Note,
    Pattern,
    Signal,
    StateCheckpoint,
    check_number,
)
from agent_memory.storage import keys
from agent_memory.storage.engine import Item, TableName
from agent_memory.storage.records.base import strip_keys
from agent_memory.storage.records.patterns import READER_REPORTED

_FEEDBACK = (
    "fb_applied", "fb_successes", "fb_author_applied", "fb_author_successes", "fb_access", "fb_last",
    READER_REPORTED,
)  # fmt: skip
_INDEX = ("gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk", "ttl")


class InvalidItem(ValueError):
    """An item that does not validate; the message says why."""


def _model(cls: type[BaseModel], data: dict[str, Any]) -> Any:
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "item"
        raise InvalidItem(f"not a valid {cls.__name__}: {where}: {first.get('msg')}") from None


def _expect(item: Item, pk: str, sk: str) -> None:
    if item["pk"] != pk or item["sk"] != sk:
        raise InvalidItem(
            f"keys ({item['pk']!r}, {item['sk']!r}) do not match the record's content "
            f"(expected {pk!r}, {sk!r})"
        )


def _numbers(item: Item, *skip: str) -> None:
    for name, value in item.items():
        if name in ("pk", "sk", *skip):
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise InvalidItem(f"counter {name!r} is not a number")
        check_number(value, name)


def _decision(item: Item) -> None:
    d = _model(Decision, strip_keys(item, *_INDEX))
    _expect(
        item, keys.decision_pk(d.agent_id, d.decision_type), keys.decision_sk(d.created_at, d.decision_id)
    )


def _pattern(item: Item) -> None:
    data = strip_keys(item, *_FEEDBACK, *_INDEX)
    p = _model(Pattern, data)
    _expect(item, keys.pattern_pk(p.agent_id), p.pattern_id)


def _pattern_version(item: Item) -> None:
    p = _model(Pattern, strip_keys(item, *_FEEDBACK, *_INDEX))
    _expect(item, keys.pattern_history_pk(p.agent_id), keys.pattern_history_sk(p.pattern_id, p.version))


def _state(item: Item) -> None:
    if item["sk"] == keys.STATE_SK:
        s = _model(AgentState, strip_keys(item))
        _expect(item, keys.state_pk(s.agent_id), keys.STATE_SK)
    else:
        c = _model(StateCheckpoint, strip_keys(item))
        _expect(item, keys.state_pk(c.agent_id), keys.checkpoint_sk(c.version))


def _note(item: Item) -> None:
    n = _model(Note, strip_keys(item, "ttl"))
    _expect(item, keys.note_pk(n.agent_id), n.key)


def _registry(item: Item) -> None:
    a = _model(AgentProfile, strip_keys(item))
    _expect(item, keys.REGISTRY_PK, keys.registry_sk(a.agent_id))


def _signal(item: Item) -> None:
    prefix = keys.delivery_attr("")
    data = {k: v for k, v in strip_keys(item, *_INDEX).items() if not k.startswith(prefix)}
    data["processing_status"] = {k[len(prefix) :]: v for k, v in item.items() if k.startswith(prefix)}
    s = _model(Signal, data)
    _expect(item, keys.signal_pk(s.source_agent, s.signal_id), keys.SIGNAL_SK)
    for target in s.processing_status:
        if target not in s.target_agents:
            raise InvalidItem(f"delivery for {target!r}, who is not a target of the signal")


def _inbox(item: Item) -> None:
    e = _model(InboxEntry, strip_keys(item, "ttl"))
    _expect(
        item,
        keys.inbox_pk(e.agent_id),
        keys.inbox_sk(e.delivery.status, e.signal.created_at, e.signal.source_agent, e.signal.signal_id),
    )
    if e.agent_id not in e.signal.target_agents:
        raise InvalidItem(f"inbox entry of {e.agent_id!r}, who is not a target of the signal")


def _agent(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidItem("item without agent_id")
    _model(
        AgentProfile,
        {"agent_id": value, "first_seen": "2000-01-01T00:00:00Z", "last_seen": "2000-01-01T00:00:00Z"},
    )
    return value


def _decision_id_item(item: Item) -> None:
    agent = _agent(item.get("agent_id"))
    decision_id = str(item["pk"]).rsplit("#decision_id#", 1)[-1]
    _expect(item, keys.decision_id_pk(agent, decision_id), keys.ID_SK)
    for name in ("decision_type", "created_at"):
        if not isinstance(item.get(name), str):
            raise InvalidItem(f"decision id item without {name}")


def _pattern_by_id(item: Item) -> None:
    agent = _agent(item.get("agent_id"))
    _expect(item, str(item["pk"]), keys.pattern_author_sk(agent))


def _signal_ref(item: Item) -> None:
    source = _agent(item.get("source_agent"))
    _expect(item, str(item["pk"]), keys.signal_ref_sk(source))


def _counters(*skip: str) -> Callable[[Item], None]:
    return lambda item: _numbers(item, *skip)


def _accept(item: Item) -> None:
    return None


# (table, pk prefix, pk suffix, checker): the first match wins; order matters. Families whose
# key has a fixed middle (ids within an author's partitions) come first, in _BY_MIDDLE.
_BY_MIDDLE: list[tuple[TableName, str, Callable[[Item], None]]] = [
    ("decisions", "#decision_id#", _decision_id_item),
    ("signals", "#signal_ref#", _signal_ref),
    ("signals", "#signal#", _signal),
]
_FAMILIES: list[tuple[TableName, str, str, Callable[[Item], None]]] = [
    ("decisions", "agent:", "", _decision),
    ("ltm", "pattern#", "", _pattern_by_id),
    ("ltm", "agent:", "#pattern_history", _pattern_version),
    ("ltm", "agent:", "#pattern", _pattern),
    ("ltm", "agent:", "#learner", _accept),
    ("ltm", "shared_to#", "", _accept),
    ("ltm", "shared_by#", "", _counters()),
    ("ltm", "reports#", "", _counters("fb_last")),  # application counters of a pattern
    ("ltm", "migration", "", _accept),
    ("state", "agent:", "#note", _note),
    ("state", "agent:", "#quota", _counters()),  # storage quota counters (records/quotas.py)
    ("state", "agent:", "", _state),
    ("state", "registry", "", _registry),
    ("state", "rollup#", "", _counters("bucket", "decision_type")),
    ("state", "sigrollup#", "", _counters("bucket")),
    ("state", "usage#", "", _counters("tool", "day")),
    ("signals", "inbox#", "", _inbox),
]


def validate_item(table: TableName, item: Item) -> None:
    """Raise :class:`InvalidItem` unless ``item`` is what the store itself would write."""
    pk = item.get("pk")
    if not isinstance(pk, str) or not isinstance(item.get("sk"), str):
        raise InvalidItem("pk and sk must be strings")
    if any(ord(c) < 0x20 for c in pk + item["sk"]):
        raise InvalidItem("keys hold control characters")
    if pk.startswith("agent:"):
        for family_table, middle, check in _BY_MIDDLE:
            if table == family_table and middle in pk:
                check(item)
                return
    for family_table, prefix, suffix, check in _FAMILIES:
        if table == family_table and pk.startswith(prefix) and pk.endswith(suffix):
            check(item)
            return
    raise InvalidItem(f"no record of table {table!r} has a key like {pk[:60]!r}")
