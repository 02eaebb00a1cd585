"""Per-author id spaces (issue #12): rewriting a store written with one global id namespace.

Before, decision, pattern and signal ids were global: a decision's id item was ``decision#{id}``,
a pattern's ``pattern#{id}`` (sk ``#id``), a signal ``signal#{id}``, and an inbox entry's sort key
``{status}#{iso}#{id}``. So an agent's write answered "already in use" for another agent's id,
and reads answered differently for ids that existed elsewhere. Now ids are per author (see
:mod:`agent_memory.storage.keys`):

=========  ==========================================  ==============================================
table      earlier item                                becomes
=========  ==========================================  ==============================================
decisions  ``decision#{id}`` / ``#id``                 ``agent:{agent}#decision_id#{id}`` / ``#id``
ltm        ``pattern#{id}`` / ``#id``                  ``pattern#{id}`` / ``{agent}``
signals    ``signal#{id}`` / ``#signal``               ``agent:{source}#signal#{id}`` / ``#signal``,
                                                       and ``agent:{target}#signal_ref#{id}`` /
                                                       ``{source}`` per target
signals    ``inbox#{a}`` / ``{status}#{iso}#{id}``     ``inbox#{a}`` / ``{status}#{iso}#{source}#{id}``
=========  ==========================================  ==============================================

:func:`upgrade` is the rewrite of one item, used by every path that meets earlier items: the
SQLite schema migration (version 4, in the transaction of the version bump), ``agent-memory
tables migrate`` on DynamoDB (:func:`migrate_items`: idempotent and resumable, one transaction per
earlier item) and ``agent-memory import`` of an earlier export.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from agent_memory.errors import ConfigurationError
from agent_memory.storage import keys
from agent_memory.storage.engine import Delete, Item, ItemEngine, Put, TableName, WriteOp

MARKER = "per_author_ids_v1"
"""Sort key of the migration marker (pk :data:`keys.MIGRATIONS_PK`, table ltm): the store holds
no item of the earlier layout."""
UPGRADED_TABLES: tuple[TableName, ...] = ("decisions", "ltm", "signals")


def _earlier_inbox_sk(sk: str) -> bool:
    # {status}#{iso}#{id}: ids and timestamps hold no '#', so two of them; now three.
    return sk.count("#") == 2


def is_earlier(table: TableName, item: Item) -> bool:
    """Whether ``item`` is of the earlier (global ids) layout."""
    pk, sk = str(item["pk"]), str(item["sk"])
    if table == "decisions":
        return pk.startswith("decision#") and sk == keys.ID_SK
    if table == "ltm":
        return pk.startswith("pattern#") and sk == keys.ID_SK
    if table == "signals":
        if pk.startswith("signal#"):
            return sk == keys.SIGNAL_SK
        return pk.startswith("inbox#") and _earlier_inbox_sk(sk)
    return False


def upgrade(table: TableName, item: Item) -> list[Item] | None:
    """The items that replace ``item`` when it is of the earlier layout (the caller deletes it);
    None when it is not."""
    if not is_earlier(table, item):
        return None
    pk, sk = str(item["pk"]), str(item["sk"])
    rest: dict[str, Any] = {k: v for k, v in item.items() if k not in ("pk", "sk")}
    if table == "decisions":
        decision_id = pk.removeprefix("decision#")
        return [{**rest, "pk": keys.decision_id_pk(str(item["agent_id"]), decision_id), "sk": keys.ID_SK}]
    if table == "ltm":
        author = str(item["agent_id"])
        return [{"pk": pk, "sk": keys.pattern_author_sk(author), "agent_id": author}]
    if pk.startswith("signal#"):
        signal_id, source = pk.removeprefix("signal#"), str(item["source_agent"])
        out: list[Item] = [{**rest, "pk": keys.signal_pk(source, signal_id), "sk": keys.SIGNAL_SK}]
        for target in item.get("target_agents") or []:
            ref: Item = {
                "pk": keys.signal_ref_pk(str(target), signal_id),
                "sk": keys.signal_ref_sk(source),
                "source_agent": source,
            }
            if "ttl" in item:
                ref["ttl"] = item["ttl"]
            out.append(ref)
        return out
    status, created, signal_id = sk.split("#")
    source = str(item["signal"]["source_agent"])
    return [{**rest, "pk": pk, "sk": f"{status}#{created}#{source}#{signal_id}"}]


def upgrade_ops(table: TableName, item: Item) -> list[WriteOp] | None:
    """One transaction that rewrites an earlier item (None when it is current)."""
    new = upgrade(table, item)
    if new is None:
        return None
    return [*(Put(table, n) for n in new), Delete(table, str(item["pk"]), str(item["sk"]))]


async def migrate_items(engine: ItemEngine) -> Counter[str]:
    """Rewrite every item of the earlier layout (a Scan of three tables: an operator's command,
    ``agent-memory tables migrate``, with the table-wide permission the server does not hold).

    Each earlier item is replaced in one transaction (its new items written, it deleted), so an
    interrupted run leaves every item either old or new, and running again finishes the rest;
    a store already migrated is scanned and left unchanged. Writes the marker at the end.
    Returns how many items of each table were rewritten.
    """
    done: Counter[str] = Counter()
    for table in UPGRADED_TABLES:
        async for item in engine.scan(table):
            ops = upgrade_ops(table, item)
            if ops is not None:
                await engine.write(ops)
                done[table] += 1
    await engine.write([Put("ltm", marker_item(sum(done.values())))])
    return done


def marker_item(rewritten: int) -> Item:
    return {"pk": keys.MIGRATIONS_PK, "sk": MARKER, "n": rewritten}


async def check_migrated(engine: ItemEngine, *, read_only: bool) -> None:
    """At start-up: refuse to serve a store that still holds items of the earlier layout (its
    records would answer "not found"). Requests: 1 get once migrated.

    A store without the marker that has never registered an agent was never served by an earlier
    version (new tables, for instance made by CloudFormation): it is marked and served. One that
    has: the operator runs ``agent-memory tables migrate`` first (SQLite stores migrate by
    themselves, in the schema migration).
    """
    if await engine.get("ltm", keys.MIGRATIONS_PK, MARKER) is not None:
        return
    used = await engine.query("state", keys.REGISTRY_PK, limit=1)
    if not used.items:
        if not read_only:
            await engine.write([Put("ltm", marker_item(0))])
        return
    raise ConfigurationError(
        "this store was written by an earlier agent-memory, whose decision, pattern and signal ids "
        "were global; ids are per agent now and the store must be migrated once: run "
        "'agent-memory tables migrate' (it needs Scan on the tables; safe to run again), then start "
        "the server"
    )
