"""The item engine contract: every backend must pass this suite unchanged.

Written only against the ``engine`` fixture (tests/conftest.py), which is parametrised over the
backends, so a behaviour pinned here is a behaviour the record layer may rely on everywhere.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent_memory.errors import InvalidInput, LimitExceeded
from agent_memory.storage.engine import (
    MAX_ITEM_BYTES,
    MAX_TRANSACTION_ITEMS,
    TABLES,
    Check,
    Cond,
    ConditionFailed,
    Delete,
    IndexName,
    Item,
    ItemEngine,
    Put,
    TableName,
    Update,
    WriteOp,
)

ALL_INDEXES: list[tuple[TableName, IndexName]] = [(t, i) for t, idx in TABLES.items() for i in idx]


async def put(engine: ItemEngine, table: TableName, item: Item) -> Item:
    await engine.write([Put(table, item)])
    return item


async def all_pages(
    engine: ItemEngine, table: TableName, pk: str, limit: int, **kwargs: Any
) -> list[list[Item]]:
    """Every page of a query, checking the continuation keys on the way."""
    index = kwargs.get("index")
    key_names = {"pk", "sk"} if index is None else {"pk", "sk", f"{index}pk", f"{index}sk"}
    pages: list[list[Item]] = []
    start = None
    for _ in range(1000):
        page = await engine.query(table, pk, limit=limit, start=start, **kwargs)
        assert len(page.items) <= limit
        pages.append(page.items)
        if page.last_key is None:
            return pages
        assert set(page.last_key) == key_names
        assert page.items, "a page with a continuation key must not be empty"
        assert page.last_key == {name: page.items[-1][name] for name in key_names}
        start = page.last_key
    raise AssertionError("pagination did not terminate")


def sort_keys(items: list[Item], attr: str = "sk") -> list[str]:
    return [item[attr] for item in items]


# --- items ---------------------------------------------------------------------------------------

NESTED: Item = {
    "pk": "agent#a1",
    "sk": "decision#0001",
    "text": 'héllo wörld — 日本語 🚀 \u00e9\u0301 tab\tnewline\n quote" backslash\\',
    "empty": "",
    "zero": 0,
    "negative": -17,
    "big": 12345678901234567890123456789012345678,
    "beyond_float": 2**53 + 1,
    "tenth": 0.1,
    "pi": 3.14159,
    "small": 1e-7,
    "neg_float": -2.5,
    "yes": True,
    "no": False,
    "nothing": None,
    "list": [1, "two", 3.5, None, True, [], {}, [{"deep": ["er", {"deepest": 0.3}]}]],
    "map": {"a": {"b": {"c": [1, 2, 3]}}, "unicode ключ": "значение"},
    "empty_list": [],
    "empty_map": {},
}


async def test_put_get_round_trips_nested_json_values(engine: ItemEngine) -> None:
    await put(engine, "decisions", NESTED)
    got = await engine.get("decisions", NESTED["pk"], NESTED["sk"])
    assert got == NESTED
    assert got is not None
    # == treats True as 1 and 1 as 1.0; types that must survive are checked one by one.
    assert got["yes"] is True and got["no"] is False and got["nothing"] is None
    assert type(got["tenth"]) is float and got["tenth"] == 0.1
    assert type(got["big"]) is int and got["big"] == 12345678901234567890123456789012345678
    assert got["beyond_float"] == 2**53 + 1
    assert got["list"][4] is True


async def test_numbers_at_the_limits_round_trip(engine: ItemEngine) -> None:
    item = {
        "pk": "p",
        "sk": "s",
        "digits38": -(10**38 - 1),
        "tiny": 1e-130,
        "third": 1 / 3,
    }
    await put(engine, "ltm", item)
    assert await engine.get("ltm", "p", "s") == item


async def test_get_missing_returns_none(engine: ItemEngine) -> None:
    assert await engine.get("decisions", "nobody", "nothing") is None
    await put(engine, "decisions", {"pk": "p", "sk": "s"})
    assert await engine.get("decisions", "p", "other") is None
    assert await engine.get("decisions", "other", "s") is None


async def test_tables_are_separate(engine: ItemEngine) -> None:
    for table in TABLES:
        await put(engine, table, {"pk": "p", "sk": "s", "table": table})
    for table in TABLES:
        assert await engine.get(table, "p", "s") == {"pk": "p", "sk": "s", "table": table}


async def test_a_query_returns_whole_items_on_every_table(engine: ItemEngine) -> None:
    """On every table, with or without indexes (the SQLite engine selects only the key columns a
    table's indexes fill), a query's items are those put, attributes named like index keys too."""
    for table in TABLES:
        items: list[Item] = [
            {"pk": "q", "sk": "a", "n": 1},
            {"pk": "q", "sk": "b", "gsi1pk": "g", "gsi1sk": "x", "gsi3pk": "h", "ttl": 4102444800},
        ]
        for item in items:
            await put(engine, table, item)
        page = await engine.query(table, "q")
        assert page.items == items, table
        assert [await engine.get(table, "q", i["sk"]) for i in items] == items


async def test_put_replaces_the_whole_item(engine: ItemEngine) -> None:
    await put(engine, "state", {"pk": "p", "sk": "s", "old": 1, "shared": "a"})
    await put(engine, "state", {"pk": "p", "sk": "s", "new": 2, "shared": "b"})
    assert await engine.get("state", "p", "s") == {"pk": "p", "sk": "s", "new": 2, "shared": "b"}


# --- conditions ----------------------------------------------------------------------------------

EXISTING: Item = {
    "pk": "p",
    "sk": "s",
    "version": 3,
    "name": "x",
    "flag": True,
    "meta": {"a": [1, 2]},
}
NEW: Item = {"pk": "p", "sk": "s", "version": 4, "name": "new"}

CONDITION_CASES: list[tuple[tuple[Cond, ...], bool, bool]] = [
    # (conditions, target exists, conditions hold)
    ((Cond.exists(),), True, True),
    ((Cond.exists(),), False, False),
    ((Cond.not_exists(),), True, False),
    ((Cond.not_exists(),), False, True),
    ((Cond.has("name"),), True, True),
    ((Cond.has("zzz"),), True, False),
    ((Cond.has("name"),), False, False),
    ((Cond.lacks("name"),), True, False),
    ((Cond.lacks("zzz"),), True, True),
    ((Cond.lacks("name"),), False, True),
    ((Cond.eq("version", 3),), True, True),
    ((Cond.eq("version", 4),), True, False),
    ((Cond.eq("version", 3.0),), True, True),
    ((Cond.eq("version", "3"),), True, False),
    ((Cond.eq("name", "x"),), True, True),
    ((Cond.eq("name", "X"),), True, False),
    ((Cond.eq("flag", True),), True, True),
    ((Cond.eq("meta", {"a": [1, 2]}),), True, True),
    ((Cond.eq("meta", {"a": [2, 1]}),), True, False),
    ((Cond.eq("zzz", 3),), True, False),
    ((Cond.eq("version", 3),), False, False),
    ((Cond.exists(), Cond.eq("version", 3), Cond.lacks("zzz")), True, True),
    ((Cond.exists(), Cond.eq("version", 3), Cond.has("zzz")), True, False),
    ((Cond.not_exists(), Cond.lacks("name")), False, True),
]


def _case_id(case: tuple[tuple[Cond, ...], bool, bool]) -> str:
    conds, exists, holds = case
    parts = [f"{c.kind}({c.attr}={c.value!r})" if c.attr else c.kind for c in conds]
    return f"{'+'.join(parts)}-{'present' if exists else 'absent'}-{'holds' if holds else 'fails'}"


@pytest.mark.parametrize(
    ("conditions", "exists", "holds"), CONDITION_CASES, ids=map(_case_id, CONDITION_CASES)
)
async def test_condition_on_a_single_put(
    engine: ItemEngine, conditions: tuple[Cond, ...], exists: bool, holds: bool
) -> None:
    if exists:
        await put(engine, "decisions", EXISTING)
    before = EXISTING if exists else None
    if holds:
        await engine.write([Put("decisions", NEW, conditions)])
        assert await engine.get("decisions", "p", "s") == NEW
    else:
        with pytest.raises(ConditionFailed) as failed:
            await engine.write([Put("decisions", NEW, conditions)])
        assert failed.value.index == 0
        assert failed.value.item == before
        assert await engine.get("decisions", "p", "s") == before


@pytest.mark.parametrize(
    ("conditions", "exists", "holds"), CONDITION_CASES, ids=map(_case_id, CONDITION_CASES)
)
async def test_condition_of_a_check_in_a_transaction(
    engine: ItemEngine, conditions: tuple[Cond, ...], exists: bool, holds: bool
) -> None:
    if exists:
        await put(engine, "decisions", EXISTING)
    other = {"pk": "other", "sk": "s", "n": 1}
    ops: list[WriteOp] = [Put("ltm", other), Check("decisions", "p", "s", conditions)]
    if holds:
        await engine.write(ops)
        assert await engine.get("ltm", "other", "s") == other
    else:
        with pytest.raises(ConditionFailed) as failed:
            await engine.write(ops)
        assert failed.value.index == 1
        assert failed.value.item == (EXISTING if exists else None)
        assert await engine.get("ltm", "other", "s") is None
    assert await engine.get("decisions", "p", "s") == (EXISTING if exists else None)


async def test_failed_condition_on_update_changes_nothing(engine: ItemEngine) -> None:
    await put(engine, "state", EXISTING)
    op = Update("state", "p", "s", set={"name": "y"}, add={"version": 1}, conditions=(Cond.eq("version", 2),))
    with pytest.raises(ConditionFailed) as failed:
        await engine.update(op)
    assert (failed.value.index, failed.value.item) == (0, EXISTING)
    with pytest.raises(ConditionFailed):
        await engine.write([op])
    assert await engine.get("state", "p", "s") == EXISTING


async def test_failed_condition_on_update_of_a_missing_item_creates_nothing(engine: ItemEngine) -> None:
    with pytest.raises(ConditionFailed) as failed:
        await engine.update(Update("state", "p", "s", set={"a": 1}, conditions=(Cond.exists(),)))
    assert (failed.value.index, failed.value.item) == (0, None)
    assert await engine.get("state", "p", "s") is None


async def test_delete_removes_the_item(engine: ItemEngine) -> None:
    await put(engine, "signals", {"pk": "p", "sk": "s"})
    await put(engine, "signals", {"pk": "p", "sk": "t"})
    await engine.write([Delete("signals", "p", "s")])
    assert await engine.get("signals", "p", "s") is None
    assert await engine.get("signals", "p", "t") == {"pk": "p", "sk": "t"}


async def test_delete_of_a_missing_item_is_a_no_op(engine: ItemEngine) -> None:
    await engine.write([Delete("signals", "p", "s")])
    assert await engine.get("signals", "p", "s") is None


async def test_delete_with_a_condition(engine: ItemEngine) -> None:
    await put(engine, "decisions", EXISTING)
    with pytest.raises(ConditionFailed) as failed:
        await engine.write([Delete("decisions", "p", "s", (Cond.eq("version", 2),))])
    assert (failed.value.index, failed.value.item) == (0, EXISTING)
    assert await engine.get("decisions", "p", "s") == EXISTING

    with pytest.raises(ConditionFailed) as failed:
        await engine.write([Delete("decisions", "p", "missing", (Cond.exists(),))])
    assert (failed.value.index, failed.value.item) == (0, None)

    await engine.write([Delete("decisions", "p", "s", (Cond.eq("version", 3), Cond.has("name")))])
    assert await engine.get("decisions", "p", "s") is None


# --- transactions ---------------------------------------------------------------------------------


async def test_transaction_applies_every_operation(engine: ItemEngine) -> None:
    await put(engine, "decisions", {"pk": "b", "sk": "s", "n": 1})
    await put(engine, "decisions", {"pk": "d", "sk": "s"})
    await put(engine, "state", {"pk": "c", "sk": "s", "version": 7})
    await engine.write(
        [
            Put("decisions", {"pk": "a", "sk": "s", "v": "new"}, (Cond.not_exists(),)),
            Update("decisions", "b", "s", add={"n": 2}, conditions=(Cond.eq("n", 1),)),
            Delete("decisions", "d", "s", (Cond.exists(),)),
            Check("state", "c", "s", (Cond.eq("version", 7),)),
        ]
    )
    assert await engine.get("decisions", "a", "s") == {"pk": "a", "sk": "s", "v": "new"}
    assert await engine.get("decisions", "b", "s") == {"pk": "b", "sk": "s", "n": 3}
    assert await engine.get("decisions", "d", "s") is None
    assert await engine.get("state", "c", "s") == {"pk": "c", "sk": "s", "version": 7}


async def test_transaction_with_a_failing_check_at_index_2_applies_nothing(engine: ItemEngine) -> None:
    await put(engine, "decisions", {"pk": "b", "sk": "s", "n": 1})
    with pytest.raises(ConditionFailed) as failed:
        await engine.write(
            [
                Put("decisions", {"pk": "a", "sk": "s"}),
                Update("decisions", "b", "s", add={"n": 1}),
                Check("state", "missing", "s", (Cond.exists(),)),
            ]
        )
    assert (failed.value.index, failed.value.item) == (2, None)
    assert await engine.get("decisions", "a", "s") is None
    assert await engine.get("decisions", "b", "s") == {"pk": "b", "sk": "s", "n": 1}


async def test_transaction_with_a_failing_put_at_index_2_applies_nothing(engine: ItemEngine) -> None:
    taken = {"pk": "e", "sk": "s", "owner": "someone"}
    await put(engine, "ltm", taken)
    await put(engine, "ltm", {"pk": "d", "sk": "s"})
    with pytest.raises(ConditionFailed) as failed:
        await engine.write(
            [
                Delete("ltm", "d", "s"),
                Put("ltm", {"pk": "a", "sk": "s"}, (Cond.not_exists(),)),
                Put("ltm", {"pk": "e", "sk": "s", "owner": "me"}, (Cond.not_exists(),)),
            ]
        )
    assert (failed.value.index, failed.value.item) == (2, taken)
    assert await engine.get("ltm", "d", "s") == {"pk": "d", "sk": "s"}
    assert await engine.get("ltm", "a", "s") is None
    assert await engine.get("ltm", "e", "s") == taken


async def test_transaction_reports_the_first_failing_operation(engine: ItemEngine) -> None:
    await put(engine, "ltm", {"pk": "x", "sk": "s", "v": 1})
    with pytest.raises(ConditionFailed) as failed:
        await engine.write(
            [
                Put("ltm", {"pk": "a", "sk": "s"}),
                Update("ltm", "x", "s", set={"v": 2}, conditions=(Cond.eq("v", 5),)),
                Check("ltm", "y", "s", (Cond.exists(),)),
            ]
        )
    assert (failed.value.index, failed.value.item) == (1, {"pk": "x", "sk": "s", "v": 1})


async def test_concurrent_transactions_each_stand_or_fail_alone(engine: ItemEngine) -> None:
    """Writes in flight together (the embedded engine commits them in one SQLite transaction):
    each is applied whole or not at all, a failed condition fails only its own write, with its
    own index and item, and a condition sees what the writes before it in the same moment did."""
    await put(engine, "ltm", {"pk": "taken", "sk": "s", "owner": "someone"})
    await put(engine, "ltm", {"pk": "n", "sk": "s", "v": 0})

    async def ok(k: int) -> None:
        await engine.write(
            [
                Put("ltm", {"pk": f"a{k}", "sk": "s", "k": k}, (Cond.not_exists(),)),
                Update("ltm", "n", "s", add={"v": 1}),
            ]
        )

    failing = engine.write(
        [
            Put("ltm", {"pk": "half", "sk": "s"}),
            Update("ltm", "n", "s", add={"v": 100}),
            Put("ltm", {"pk": "taken", "sk": "s", "owner": "me"}, (Cond.not_exists(),)),
        ]
    )
    bumps = [engine.update(Update("ltm", "c", "s", add={"n": 1})) for _ in range(3)]
    results = await asyncio.gather(ok(0), ok(1), failing, ok(2), *bumps, ok(0), return_exceptions=True)
    failed = results[2]
    assert isinstance(failed, ConditionFailed)
    assert (failed.index, failed.item) == (2, {"pk": "taken", "sk": "s", "owner": "someone"})
    # Two writes creating a0 in the same moment: one creates it, the other sees it and fails.
    first, again = sorted((results[0], results[-1]), key=lambda r: r is not None)
    assert first is None and isinstance(again, ConditionFailed) and again.index == 0
    assert again.item == {"pk": "a0", "sk": "s", "k": 0}
    assert results[1] is None and results[3] is None
    assert sorted(r["n"] for r in results[4:7]) == [1, 2, 3]  # type: ignore[index]
    assert await engine.get("ltm", "half", "s") is None
    assert await engine.get("ltm", "n", "s") == {"pk": "n", "sk": "s", "v": 3}
    assert await engine.get("ltm", "taken", "s") == {"pk": "taken", "sk": "s", "owner": "someone"}
    for k in range(3):
        assert await engine.get("ltm", f"a{k}", "s") == {"pk": f"a{k}", "sk": "s", "k": k}
    assert await engine.get("ltm", "c", "s") == {"pk": "c", "sk": "s", "n": 3}


async def test_transaction_over_the_item_limit_is_refused_whole(engine: ItemEngine) -> None:
    ops = [Put("signals", {"pk": "p", "sk": f"{i:04d}"}) for i in range(MAX_TRANSACTION_ITEMS + 1)]
    with pytest.raises(LimitExceeded) as refused:
        await engine.write(ops)
    assert str(MAX_TRANSACTION_ITEMS) in str(refused.value)
    assert await engine.get("signals", "p", "0000") is None
    assert (await engine.query("signals", "p")).items == []


async def test_transaction_at_the_item_limit_is_applied(engine: ItemEngine) -> None:
    ops = [Put("signals", {"pk": "p", "sk": f"{i:04d}"}) for i in range(MAX_TRANSACTION_ITEMS)]
    await engine.write(ops)
    pages = await all_pages(engine, "signals", "p", limit=40)
    assert len([item for page in pages for item in page]) == MAX_TRANSACTION_ITEMS


# --- updates --------------------------------------------------------------------------------------


async def test_update_creates_a_missing_item_and_returns_it(engine: ItemEngine) -> None:
    created = await engine.update(
        Update("state", "p", "s", set={"name": "x", "tags": ["a"]}, add={"count": 2})
    )
    assert created == {"pk": "p", "sk": "s", "name": "x", "tags": ["a"], "count": 2}
    assert await engine.get("state", "p", "s") == created


async def test_update_sets_adds_and_removes(engine: ItemEngine) -> None:
    await put(engine, "state", {"pk": "p", "sk": "s", "a": 1, "b": "x", "c": [1], "n": 5, "f": 1.5})
    after = await engine.update(
        Update(
            "state",
            "p",
            "s",
            set={"b": "y", "d": {"nested": True}, "e": None},
            add={"n": -2, "m": 3, "f": 0.25},
            remove=("c", "absent"),
        )
    )
    expected = {
        "pk": "p",
        "sk": "s",
        "a": 1,
        "b": "y",
        "d": {"nested": True},
        "e": None,
        "n": 3,
        "m": 3,
        "f": 1.75,
    }
    assert after == expected
    assert after["e"] is None and "c" not in after
    assert await engine.get("state", "p", "s") == expected


async def test_update_adds_numbers_as_decimals(engine: ItemEngine) -> None:
    await engine.update(Update("state", "p", "s", set={"x": 0.1}))
    after = await engine.update(Update("state", "p", "s", add={"x": 0.2}))
    assert after["x"] == 0.3


async def test_update_with_a_passing_condition(engine: ItemEngine) -> None:
    await put(engine, "decisions", {"pk": "p", "sk": "s", "version": 1, "body": "a"})
    after = await engine.update(
        Update(
            "decisions", "p", "s", set={"body": "b"}, add={"version": 1}, conditions=(Cond.eq("version", 1),)
        )
    )
    assert after == {"pk": "p", "sk": "s", "version": 2, "body": "b"}
    created = await engine.update(
        Update("decisions", "q", "s", set={"v": 1}, conditions=(Cond.not_exists(),))
    )
    assert created == {"pk": "q", "sk": "s", "v": 1}


async def test_update_in_a_transaction(engine: ItemEngine) -> None:
    await engine.write([Update("state", "p", "s", add={"n": 1}), Update("state", "q", "s", set={"m": "x"})])
    assert await engine.get("state", "p", "s") == {"pk": "p", "sk": "s", "n": 1}
    assert await engine.get("state", "q", "s") == {"pk": "q", "sk": "s", "m": "x"}


async def test_update_moves_an_item_between_index_partitions(engine: ItemEngine) -> None:
    await put(engine, "decisions", {"pk": "p", "sk": "s", "gsi1pk": "old", "gsi1sk": "k"})
    await engine.update(Update("decisions", "p", "s", set={"gsi1pk": "new"}))
    assert (await engine.query("decisions", "old", index="gsi1")).items == []
    assert sort_keys((await engine.query("decisions", "new", index="gsi1")).items) == ["s"]
    await engine.update(Update("decisions", "p", "s", remove=("gsi1sk",)))
    assert (await engine.query("decisions", "new", index="gsi1")).items == []


# --- queries --------------------------------------------------------------------------------------


async def _base_fixture(engine: ItemEngine) -> list[str]:
    sks = [f"s{i:02d}" for i in range(10)]
    for sk in reversed(sks):
        await put(engine, "decisions", {"pk": "P", "sk": sk, "n": int(sk[1:])})
    # Neighbours that must never leak into partition P of decisions.
    await put(engine, "decisions", {"pk": "P2", "sk": "s05"})
    await put(engine, "decisions", {"pk": "O", "sk": "s05"})
    await put(engine, "ltm", {"pk": "P", "sk": "s05"})
    return sks


async def test_query_returns_a_partition_in_sort_key_order(engine: ItemEngine) -> None:
    sks = await _base_fixture(engine)
    forward = await engine.query("decisions", "P")
    assert sort_keys(forward.items) == sks
    assert forward.last_key is None
    backward = await engine.query("decisions", "P", forward=False)
    assert sort_keys(backward.items) == sks[::-1]
    assert (await engine.query("decisions", "nobody")).items == []
    # A page that reaches the end of the range says so, even when it is exactly full.
    exact = await engine.query("decisions", "P", limit=len(sks))
    assert sort_keys(exact.items) == sks
    assert exact.last_key is None


async def test_query_sort_key_bounds(engine: ItemEngine) -> None:
    await _base_fixture(engine)
    assert sort_keys((await engine.query("decisions", "P", sk_gte="s07")).items) == ["s07", "s08", "s09"]
    assert sort_keys((await engine.query("decisions", "P", sk_lte="s02")).items) == ["s00", "s01", "s02"]
    between = await engine.query("decisions", "P", sk_gte="s03", sk_lte="s05")
    assert sort_keys(between.items) == ["s03", "s04", "s05"]
    between_back = await engine.query("decisions", "P", sk_gte="s03", sk_lte="s05", forward=False)
    assert sort_keys(between_back.items) == ["s05", "s04", "s03"]
    # Bounds between existing keys.
    assert sort_keys((await engine.query("decisions", "P", sk_gte="s035", sk_lte="s051")).items) == [
        "s04",
        "s05",
    ]
    assert (await engine.query("decisions", "P", sk_gte="s10")).items == []


async def test_query_limit_takes_the_first_items_in_order(engine: ItemEngine) -> None:
    sks = await _base_fixture(engine)
    page = await engine.query("decisions", "P", limit=3)
    assert sort_keys(page.items) == sks[:3]
    assert page.last_key == {"pk": "P", "sk": "s02"}
    back = await engine.query("decisions", "P", limit=3, forward=False)
    assert sort_keys(back.items) == sks[::-1][:3]
    assert back.last_key == {"pk": "P", "sk": "s07"}


async def test_query_sort_keys_compare_as_utf8_bytes_and_prefix_selects(engine: ItemEngine) -> None:
    # Byte order differs from UTF-16 order (U+FFFF vs an astral character) and from case-folded order.
    sks = ["a", "B", "a#1", "a#2", "ab", "a\u00e9", "a\uffff", "a\U0001f600", "a\U0001f600x", "b", "b#1"]
    for sk in sks:
        await put(engine, "ltm", {"pk": "P", "sk": sk})
    expected = sorted(sks, key=lambda s: s.encode("utf-8"))
    assert sort_keys((await engine.query("ltm", "P")).items) == expected

    def starting(prefix: str) -> list[str]:
        return [s for s in expected if s.startswith(prefix)]

    for prefix in ["a", "a#", "a\U0001f600", "b", "B", "c", "a\u00e9"]:
        forward = await engine.query("ltm", "P", sk_prefix=prefix)
        assert sort_keys(forward.items) == starting(prefix), prefix
        backward = await engine.query("ltm", "P", sk_prefix=prefix, forward=False)
        assert sort_keys(backward.items) == starting(prefix)[::-1], prefix


def _index_items(index: IndexName) -> tuple[list[Item], list[Item]]:
    """Items in partition G of ``index`` (in index order), and items that must not appear there."""
    ipk, isk = f"{index}pk", f"{index}sk"
    inside = [
        # The base keys sort opposite to the index sort key: the order must come from the index.
        {"pk": f"base{9 - i}", "sk": f"z{9 - i}", ipk: "G", isk: f"t{i:02d}", "i": i}
        for i in range(8)
    ]
    others = [name for name in ("gsi1", "gsi2", "gsi3") if name != index]
    outside: list[Item] = [
        {"pk": "o1", "sk": "s", ipk: "OTHER", isk: "t03"},
        {"pk": "o2", "sk": "s"},
        {"pk": "o3", "sk": "s", ipk: "G"},  # no index sort key: not in the sparse index
        {"pk": "o4", "sk": "s", isk: "t04"},
        {"pk": "G", "sk": "t05"},  # G as a base partition, not an index partition
    ]
    for other in others:
        outside.append({"pk": f"x{other}", "sk": "s", f"{other}pk": "G", f"{other}sk": "t01"})
    return inside, outside


@pytest.mark.parametrize(("table", "index"), ALL_INDEXES, ids=[f"{t}-{i}" for t, i in ALL_INDEXES])
async def test_index_query_order_and_sparseness(
    engine: ItemEngine, table: TableName, index: IndexName
) -> None:
    inside, outside = _index_items(index)
    for item in [*outside, *reversed(inside)]:
        await put(engine, table, item)
    isk = f"{index}sk"
    forward = await engine.query(table, "G", index=index)
    assert forward.items == inside
    assert forward.last_key is None
    backward = await engine.query(table, "G", index=index, forward=False)
    assert backward.items == inside[::-1]
    assert sort_keys((await engine.query(table, "G", index=index, sk_gte="t05")).items, isk) == [
        "t05",
        "t06",
        "t07",
    ]
    assert sort_keys((await engine.query(table, "G", index=index, sk_lte="t01")).items, isk) == ["t00", "t01"]
    between = await engine.query(table, "G", index=index, sk_gte="t02", sk_lte="t04", forward=False)
    assert sort_keys(between.items, isk) == ["t04", "t03", "t02"]
    assert sort_keys((await engine.query(table, "G", index=index, sk_prefix="t0")).items, isk) == [
        f"t{i:02d}" for i in range(8)
    ]
    assert (await engine.query(table, "G", index=index, sk_prefix="u")).items == []


async def test_index_query_limit_and_continuation_key(engine: ItemEngine) -> None:
    inside, _ = _index_items("gsi2")
    for item in inside:
        await put(engine, "ltm", item)
    page = await engine.query("ltm", "G", index="gsi2", limit=3)
    assert page.items == inside[:3]
    last = inside[2]
    assert page.last_key == {"pk": last["pk"], "sk": last["sk"], "gsi2pk": "G", "gsi2sk": last["gsi2sk"]}
    rest = await engine.query("ltm", "G", index="gsi2", start=page.last_key)
    assert rest.items == inside[3:]
    assert rest.last_key is None


# --- pagination -----------------------------------------------------------------------------------


@pytest.mark.parametrize("forward", [True, False], ids=["forward", "backward"])
async def test_base_pagination_covers_every_item_once(engine: ItemEngine, forward: bool) -> None:
    sks = [f"k{i:03d}" for i in range(23)]
    for sk in sks:
        await put(engine, "decisions", {"pk": "P", "sk": sk})
    await put(engine, "decisions", {"pk": "Q", "sk": "k005"})
    expected = sks if forward else sks[::-1]
    for limit in (1, 5, 23, 50):
        pages = await all_pages(engine, "decisions", "P", limit, forward=forward)
        assert sort_keys(pages[0]) == expected[:limit]
        assert [sk for page in pages for sk in sort_keys(page)] == expected, limit
        assert all(len(page) == limit for page in pages[:-1])
    ranged = await all_pages(engine, "decisions", "P", 4, forward=forward, sk_gte="k004", sk_lte="k017")
    expected_range = [sk for sk in expected if "k004" <= sk <= "k017"]
    assert [sk for page in ranged for sk in sort_keys(page)] == expected_range
    prefixed = await all_pages(engine, "decisions", "P", 3, forward=forward, sk_prefix="k01")
    assert [sk for page in prefixed for sk in sort_keys(page)] == [
        sk for sk in expected if sk.startswith("k01")
    ]


@pytest.mark.parametrize(("table", "index"), ALL_INDEXES, ids=[f"{t}-{i}" for t, i in ALL_INDEXES])
@pytest.mark.parametrize("forward", [True, False], ids=["forward", "backward"])
async def test_index_pagination_covers_every_item_once(
    engine: ItemEngine, table: TableName, index: IndexName, forward: bool
) -> None:
    ipk, isk = f"{index}pk", f"{index}sk"
    # Index sort keys repeat (four items share each), so pages must continue inside a tie.
    items = [{"pk": f"p{i % 5}", "sk": f"s{i:02d}", ipk: "G", isk: f"t{i % 6}"} for i in range(24)]
    for item in items:
        await put(engine, table, item)
    await put(engine, table, {"pk": "p0", "sk": "nope", ipk: "H", isk: "t1"})
    await put(engine, table, {"pk": "p0", "sk": "sparse", ipk: "G"})
    for limit in (1, 4, 7, 24):
        pages = await all_pages(engine, table, "G", limit, index=index, forward=forward)
        got = [item for page in pages for item in page]
        assert len(got) == len(items), limit
        assert sorted(got, key=lambda i: i["sk"]) == items
        keys = sort_keys(got, isk)
        assert keys == sorted(keys, reverse=not forward)
        assert all(len(page) == limit for page in pages[:-1])
    ranged = await all_pages(engine, table, "G", 3, index=index, forward=forward, sk_gte="t2", sk_lte="t4")
    got = [item for page in ranged for item in page]
    assert sorted(i["sk"] for i in got) == sorted(i["sk"] for i in items if "t2" <= i[isk] <= "t4")


# --- scan -----------------------------------------------------------------------------------------


async def test_scan_yields_every_item_of_one_table(engine: ItemEngine) -> None:
    items = [{"pk": f"p{i % 7}", "sk": f"s{i:03d}", "n": i} for i in range(60)]
    for item in items:
        await put(engine, "signals", item)
    await put(engine, "state", {"pk": "p0", "sk": "s000", "other": True})
    scanned = [item async for item in engine.scan("signals")]
    assert sorted(scanned, key=lambda i: i["sk"]) == items
    assert [item async for item in engine.scan("decisions")] == []


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "attribute"),
    [
        ({"score": float("nan")}, "score"),
        ({"score": float("inf")}, "score"),
        ({"deep": {"list": [1, float("-inf")]}}, "deep"),
    ],
    ids=["nan", "inf", "nested-neg-inf"],
)
async def test_nan_and_infinity_are_refused(engine: ItemEngine, bad: Item, attribute: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        await engine.write([Put("decisions", {"pk": "p", "sk": "s", **bad})])
    assert attribute in str(refused.value)
    assert await engine.get("decisions", "p", "s") is None
    with pytest.raises(InvalidInput) as refused:
        await engine.update(Update("decisions", "p", "s", set=bad))
    assert attribute in str(refused.value)
    assert await engine.get("decisions", "p", "s") is None


@pytest.mark.parametrize(
    "number",
    [10**38 + 1, -(10**39 + 7), 1e-131, 1e126, -1e200],
    ids=["39-digits", "40-digits-negative", "too-small", "too-large", "far-too-large"],
)
async def test_numbers_dynamodb_cannot_hold_are_refused(engine: ItemEngine, number: float) -> None:
    with pytest.raises(InvalidInput) as refused:
        await engine.write([Put("ltm", {"pk": "p", "sk": "s", "amount": number})])
    assert "amount" in str(refused.value)
    assert await engine.get("ltm", "p", "s") is None


async def test_an_oversize_item_is_refused_and_not_stored(engine: ItemEngine) -> None:
    with pytest.raises(LimitExceeded):
        await engine.write([Put("ltm", {"pk": "p", "sk": "s", "body": "x" * (MAX_ITEM_BYTES + 1)})])
    assert await engine.get("ltm", "p", "s") is None
    with pytest.raises(LimitExceeded):
        await engine.write(
            [
                Put("ltm", {"pk": "q", "sk": "s"}),
                Put("ltm", {"pk": "p", "sk": "s", "body": "é" * (MAX_ITEM_BYTES // 2 + 1)}),
            ]
        )
    assert await engine.get("ltm", "q", "s") is None
    assert await engine.get("ltm", "p", "s") is None


async def test_an_update_growing_an_item_past_the_limit_is_refused(engine: ItemEngine) -> None:
    item = {"pk": "p", "sk": "s", "a": "x" * (MAX_ITEM_BYTES * 3 // 4)}
    await put(engine, "ltm", item)
    with pytest.raises(LimitExceeded):
        await engine.update(Update("ltm", "p", "s", set={"b": "y" * (MAX_ITEM_BYTES // 2)}))
    assert await engine.get("ltm", "p", "s") == item
