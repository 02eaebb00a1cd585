"""DynamoDB-specific behaviour of the item engine, against Amazon DynamoDB Local.

The backend-independent semantics are in the shared contract suite; these tests cover what only
the DynamoDB engine has: number conversion at its edge, size limits checked before sending,
``ReturnValuesOnConditionCheckFailure`` plumbing, capacity accounting, DAX routing, and the
translation of botocore failures.
"""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from agent_memory.errors import InvalidInput, LimitExceeded, StorageUnavailable
from agent_memory.storage import usage
from agent_memory.storage.dynamodb.codec import check_item_size, item_size, to_attr
from agent_memory.storage.dynamodb.engine import TRANSACTION_ATTEMPTS, DynamoEngine
from agent_memory.storage.engine import (
    MAX_ITEM_BYTES,
    MAX_TRANSACTION_ITEMS,
    Check,
    Cond,
    ConditionFailed,
    Delete,
    Put,
    TransactionConflict,
    Update,
    WriteOp,
)
from tests.fixtures.dynamodb import dynamo_engine, dynamo_settings


@pytest.fixture
async def dyn(dynamodb_endpoint: str) -> AsyncIterator[DynamoEngine]:
    async with dynamo_engine(dynamodb_endpoint) as engine:
        yield engine


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- numbers and types ------------------------------------------------------------------------

THIRTY_EIGHT_DIGITS = int("9" * 38)


@pytest.mark.parametrize(
    "value",
    [
        0,
        -7,
        0.1,
        0.1 + 0.2,
        -2.5,
        1e-130,
        -1e-130,
        9.99999999999999e125,
        1.5e-100,
        THIRTY_EIGHT_DIGITS,
        -THIRTY_EIGHT_DIGITS,
        2**63 + 1,
        1.5e125,
        1e23,  # travels as 1E+23, though the float is 99999999999999991611392
        2**63,
        10**20,
        123456789.123456789,
    ],
)
async def test_numbers_round_trip_exactly(dyn: DynamoEngine, value: int | float) -> None:
    await dyn.write([Put("state", {"pk": "n", "sk": "1", "v": value, "nested": {"l": [value]}})])
    item = await dyn.get("state", "n", "1")
    assert item is not None
    assert item["v"] == value
    assert item["nested"] == {"l": [value]}
    if isinstance(value, int) or not value.is_integer():
        assert type(item["v"]) is type(value)


async def test_integral_float_comes_back_as_int(dyn: DynamoEngine) -> None:
    await dyn.write([Put("state", {"pk": "n", "sk": "1", "v": 3.0, "big": 1e20})])
    item = await dyn.get("state", "n", "1")
    assert item == {"pk": "n", "sk": "1", "v": 3, "big": 10**20}
    assert item is not None and type(item["v"]) is int


async def test_round_int_beyond_float_precision_comes_back_as_float(dyn: DynamoEngine) -> None:
    # The documented ambiguity: 10**40 travels as 1E+40, exactly what the float 1e40 sends.
    await dyn.write([Put("state", {"pk": "n", "sk": "1", "v": 10**40})])
    item = await dyn.get("state", "n", "1")
    assert item is not None and item["v"] == 1e40 and type(item["v"]) is float


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (int("1" * 39), "39 significant digits"),
        (float("nan"), "NaN"),
        (float("inf"), "infinity"),
        (float("-inf"), "infinity"),
        (1e-131, "1E-130"),
        (1e126, "1E-130"),
        (-(10**127), "1E-130"),
        (Decimal("NaN"), "NaN"),
    ],
)
async def test_numbers_dynamodb_cannot_hold_are_rejected(
    dyn: DynamoEngine, value: Any, fragment: str
) -> None:
    with usage.metered() as used, pytest.raises(InvalidInput) as caught:
        await dyn.write([Put("state", {"pk": "n", "sk": "1", "payload": {"items": [1, value]}})])
    assert fragment in caught.value.message
    assert "'payload.items[1]'" in caught.value.message
    assert used.requests == 0
    assert await dyn.get("state", "n", "1") is None


async def test_invalid_numbers_in_updates_and_conditions_are_rejected(dyn: DynamoEngine) -> None:
    with pytest.raises(InvalidInput, match="'score'"):
        await dyn.update(Update("state", "n", "1", set={"score": float("nan")}))
    with pytest.raises(InvalidInput, match="'count'"):
        await dyn.update(Update("state", "n", "1", add={"count": float("inf")}))
    with pytest.raises(InvalidInput, match="'version'"):
        await dyn.write([Delete("state", "n", "1", (Cond.eq("version", float("nan")),))])
    assert await dyn.get("state", "n", "1") is None


async def test_bool_none_and_nested_values_keep_their_types(dyn: DynamoEngine) -> None:
    item = {
        "pk": "t",
        "sk": "1",
        "yes": True,
        "no": False,
        "nothing": None,
        "empty": "",
        "text": "héllo ✓ 漢字",
        "list": [True, 0, 1, None, "", [], {}],
        "map": {"a": {"b": {"c": [1.25, False, {"d": None}]}}},
        "empty_list": [],
        "empty_map": {},
    }
    await dyn.write([Put("state", item)])
    back = await dyn.get("state", "t", "1")
    assert back == item
    assert back is not None
    assert back["yes"] is True and back["no"] is False
    assert back["list"][0] is True and type(back["list"][1]) is int


def test_bool_is_encoded_as_bool_not_number() -> None:
    assert to_attr(True) == {"BOOL": True}
    assert to_attr(1) == {"N": "1"}
    assert to_attr(None) == {"NULL": True}
    assert to_attr(0.1) == {"N": "0.1"}


async def test_unsupported_types_are_rejected(dyn: DynamoEngine) -> None:
    with pytest.raises(InvalidInput, match=r"'tags'.*set"):
        await dyn.write([Put("state", {"pk": "t", "sk": "1", "tags": {"a", "b"}})])
    with pytest.raises(InvalidInput, match="non-string key"):
        await dyn.write([Put("state", {"pk": "t", "sk": "1", "m": {1: "x"}})])


# --- sizes --------------------------------------------------------------------------------------


def test_item_size_follows_dynamodb_rules() -> None:
    assert item_size({"pk": "abc"}) == 2 + 3
    assert item_size({"s": "é"}) == 1 + 2  # UTF-8 bytes
    assert item_size({"n": 123}) == 1 + 3  # 3 digits -> 2 bytes + 1
    assert item_size({"n": 0.1}) == 1 + 2
    assert item_size({"n": 10**30}) == 1 + 2  # trailing zeros do not count
    assert item_size({"b": True, "z": None}) == (1 + 1) + (1 + 1)
    assert item_size({"l": []}) == 1 + 3
    assert item_size({"l": ["ab", 1]}) == 1 + 3 + (2 + 1) + (2 + 1)
    assert item_size({"m": {"key": "v"}}) == 1 + 3 + (3 + 1 + 1)


async def test_item_over_400kb_is_rejected_before_sending(dyn: DynamoEngine) -> None:
    item = {"pk": "big", "sk": "1", "body": "x" * MAX_ITEM_BYTES}
    size = item_size(item)
    with usage.metered() as used, pytest.raises(LimitExceeded) as caught:
        await dyn.write([Put("ltm", item)])
    assert str(MAX_ITEM_BYTES) in caught.value.message
    assert str(size) in caught.value.message
    assert used.requests == 0
    assert await dyn.get("ltm", "big", "1") is None


async def test_item_at_the_limit_passes_the_check(dyn: DynamoEngine) -> None:
    base = {"pk": "edge", "sk": "1", "body": ""}
    at_limit = {**base, "body": "y" * (MAX_ITEM_BYTES - item_size(base))}
    assert check_item_size(at_limit) == MAX_ITEM_BYTES
    # DynamoDB Local applies the service's own 400 KB limit: the item at the limit round-trips.
    item = at_limit
    await dyn.write([Put("ltm", item)])
    back = await dyn.get("ltm", "edge", "1")
    assert back is not None and back["body"] == item["body"]


async def test_oversized_update_and_transaction_are_rejected_before_sending(dyn: DynamoEngine) -> None:
    huge = "z" * (MAX_ITEM_BYTES + 1)
    with usage.metered() as used:
        with pytest.raises(LimitExceeded):
            await dyn.update(Update("ltm", "u", "1", set={"body": huge}))
        with pytest.raises(LimitExceeded):
            await dyn.write(
                [Put("ltm", {"pk": "ok", "sk": "1"}), Put("ltm", {"pk": "u", "sk": "1", "b": huge})]
            )
        too_many = [Put("ltm", {"pk": "many", "sk": str(i)}) for i in range(MAX_TRANSACTION_ITEMS + 1)]
        with pytest.raises(LimitExceeded, match=str(MAX_TRANSACTION_ITEMS)):
            await dyn.write(too_many)
    assert used.requests == 0
    assert [i async for i in dyn.scan("ltm")] == []


async def test_update_growing_an_item_past_the_limit_is_refused(dyn: DynamoEngine) -> None:
    # Only the service knows the attributes an update leaves alone; its refusal maps to the same error.
    await dyn.write([Put("ltm", {"pk": "g", "sk": "1", "a": "a" * 300_000})])
    with pytest.raises(LimitExceeded):
        await dyn.update(Update("ltm", "g", "1", set={"b": "b" * 150_000}))
    item = await dyn.get("ltm", "g", "1")
    assert item is not None and "b" not in item


async def test_transaction_of_max_items_is_accepted(dyn: DynamoEngine) -> None:
    await dyn.write([Put("ltm", {"pk": "many", "sk": f"{i:03d}"}) for i in range(MAX_TRANSACTION_ITEMS)])
    page = await dyn.query("ltm", "many", limit=1000)
    assert len(page.items) == MAX_TRANSACTION_ITEMS and page.last_key is None


# --- condition failures carry the current item ---------------------------------------------------


async def test_single_write_condition_failure_carries_current_item(dyn: DynamoEngine) -> None:
    current = {"pk": "d", "sk": "1", "version": 2, "body": "now"}
    await dyn.write([Put("decisions", current)])

    with pytest.raises(ConditionFailed) as put_failed:
        await dyn.write([Put("decisions", {"pk": "d", "sk": "1", "body": "other"}, (Cond.not_exists(),))])
    assert (put_failed.value.index, put_failed.value.item) == (0, current)

    with pytest.raises(ConditionFailed) as update_failed:
        await dyn.update(
            Update("decisions", "d", "1", set={"body": "x"}, conditions=(Cond.eq("version", 1),))
        )
    assert (update_failed.value.index, update_failed.value.item) == (0, current)

    with pytest.raises(ConditionFailed) as delete_failed:
        await dyn.write([Delete("decisions", "d", "1", (Cond.lacks("version"),))])
    assert delete_failed.value.item == current

    with pytest.raises(ConditionFailed) as missing:
        await dyn.write([Delete("decisions", "nope", "1", (Cond.exists(),))])
    assert (missing.value.index, missing.value.item) == (0, None)

    assert await dyn.get("decisions", "d", "1") == current


async def test_transaction_condition_failure_names_the_operation(dyn: DynamoEngine) -> None:
    current = {"pk": "s", "sk": "1", "owner": "a"}
    await dyn.write([Put("state", current)])
    ops: list[WriteOp] = [
        Put("state", {"pk": "new", "sk": "1"}),
        Update("state", "counter", "1", add={"n": 1}),
        Check("state", "s", "1", (Cond.eq("owner", "b"),)),
        Delete("state", "other", "1"),
    ]
    with pytest.raises(ConditionFailed) as failed:
        await dyn.write(ops)
    assert (failed.value.index, failed.value.item) == (2, current)
    # All or nothing.
    assert await dyn.get("state", "new", "1") is None
    assert await dyn.get("state", "counter", "1") is None

    with pytest.raises(ConditionFailed) as absent:
        await dyn.write(
            [
                Put("state", {"pk": "new", "sk": "1"}),
                Update("state", "gone", "1", conditions=(Cond.exists(),)),
            ]
        )
    assert (absent.value.index, absent.value.item) == (1, None)
    assert await dyn.get("state", "new", "1") is None


async def test_single_check_is_evaluated(dyn: DynamoEngine) -> None:
    await dyn.write([Put("state", {"pk": "c", "sk": "1", "v": 1})])
    await dyn.write([Check("state", "c", "1", (Cond.eq("v", 1),))])
    with pytest.raises(ConditionFailed) as failed:
        await dyn.write([Check("state", "c", "1", (Cond.eq("v", 2),))])
    assert failed.value.item == {"pk": "c", "sk": "1", "v": 1}


async def test_transaction_conflicts_are_retried_then_raised(dyn: DynamoEngine) -> None:
    # A conflict needs two transactions on one item at the same instant, which a test cannot
    # schedule, so the service's answer is simulated on the client the engine owns; everything
    # else is real.
    client: Any = dyn._client
    real = client.transact_write_items
    conflicts = {"left": 2}

    async def conflicting(**params: Any) -> Any:
        if conflicts["left"] > 0:
            conflicts["left"] -= 1
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                    "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}],
                },
                "TransactWriteItems",
            )
        return await real(**params)

    client.transact_write_items = conflicting
    try:
        ops = [Put("state", {"pk": "x", "sk": "1"}), Put("state", {"pk": "y", "sk": "1"})]
        with usage.metered() as used:
            await dyn.write(ops)
        assert used.by_operation == {"TransactWriteItems": 3}
        assert await dyn.get("state", "y", "1") == {"pk": "y", "sk": "1"}

        conflicts["left"] = 100
        with usage.metered() as used, pytest.raises(TransactionConflict):
            await dyn.write(ops)
        assert used.by_operation == {"TransactWriteItems": TRANSACTION_ATTEMPTS}
    finally:
        client.transact_write_items = real


# --- queries ------------------------------------------------------------------------------------


async def test_gsi_query_with_consistent_true_is_accepted(dyn: DynamoEngine) -> None:
    # DynamoDB refuses ConsistentRead on a GSI; consistent=True there only means "not from DAX".
    await dyn.write([Put("signals", {"pk": "s", "sk": "1", "gsi1pk": "g", "gsi1sk": "a"})])
    page = await dyn.query("signals", "g", index="gsi1", consistent=True)
    assert [i["pk"] for i in page.items] == ["s"]


async def test_last_key_is_none_exactly_when_exhausted(dyn: DynamoEngine) -> None:
    await dyn.write(
        [Put("ltm", {"pk": "p", "sk": f"{i}", "gsi2pk": "g", "gsi2sk": f"{i}"}) for i in range(4)]
    )
    full = await dyn.query("ltm", "p", limit=4)
    assert len(full.items) == 4 and full.last_key is None
    first = await dyn.query("ltm", "g", index="gsi2", limit=2)
    assert first.last_key == {"pk": "p", "sk": "1", "gsi2pk": "g", "gsi2sk": "1"}
    rest = await dyn.query("ltm", "g", index="gsi2", limit=2, start=first.last_key)
    assert [i["sk"] for i in rest.items] == ["2", "3"] and rest.last_key is None


async def test_query_rejects_unknown_index(dyn: DynamoEngine) -> None:
    with pytest.raises(ValueError, match="no index"):  # a record-layer bug, not bad data
        await dyn.query("state", "p", index="gsi1")


# --- usage accounting ----------------------------------------------------------------------------


async def test_usage_counts_requests_and_units(dyn: DynamoEngine) -> None:
    small = {"pk": "u", "sk": "1", "v": 1}
    two_kb = {"pk": "u", "sk": "2", "body": "b" * 2000, "gsi1pk": "g", "gsi1sk": "2"}
    five_kb = {"pk": "u", "sk": "3", "body": "c" * 5000, "gsi1pk": "g", "gsi1sk": "3"}
    with usage.metered() as writes:
        await dyn.write([Put("decisions", small)])  # 1 WCU
        await dyn.write([Put("decisions", five_kb)])  # 5 WCU
        await dyn.write([Put("decisions", two_kb), Check("decisions", "u", "1")])  # 2*2 + 2*1
    assert writes.requests == 3
    assert writes.by_operation == {"PutItem": 2, "TransactWriteItems": 1}
    assert writes.write_units == 1 + 5 + 4 + 2
    assert writes.read_units == 0

    with usage.metered() as reads:
        await dyn.get("decisions", "u", "1")  # 1 RCU
        await dyn.get("decisions", "u", "1", consistent=False)  # 0.5 RCU
        await dyn.get("decisions", "u", "missing")  # an empty answer still costs 1
        await dyn.query("decisions", "u")  # ~7 KB strongly consistent: 2 RCU
        await dyn.query("decisions", "g", index="gsi1")  # ~7 KB from an index: 1 RCU
    assert reads.by_operation == {"GetItem": 3, "Query": 2}
    assert reads.read_units == 1 + 0.5 + 1 + 2 + 1
    assert reads.write_units == 0

    with usage.metered() as failed, pytest.raises(ConditionFailed):
        await dyn.write([Put("decisions", small, (Cond.not_exists(),))])
    # A failed conditional write is billed like a write; fetching the current item is not needed
    # because DynamoDB returned it with the failure.
    assert failed.by_operation == {"PutItem": 1}
    assert failed.write_units == 1

    with usage.metered() as updated:
        await dyn.update(Update("decisions", "u", "3", set={"v": 1}))
    assert updated.by_operation == {"UpdateItem": 1}
    assert updated.write_units == 5  # the item as it is after the update


# --- DAX routing ----------------------------------------------------------------------------------


class SpyDax:
    """Stands in for the synchronous DAX client: a boto3 DynamoDB client on the same emulator, recording which methods the engine calls on it."""

    def __init__(self, endpoint: str) -> None:
        self.client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        def call(**params: Any) -> Any:
            self.calls.append(name)
            return method(**params)

        return call


async def test_staleness_tolerant_reads_go_to_dax_and_nothing_else(dynamodb_endpoint: str) -> None:
    spy = SpyDax(dynamodb_endpoint)
    async with dynamo_engine(dynamodb_endpoint, dax_client=spy) as dyn:
        item = {"pk": "d", "sk": "1", "gsi1pk": "g", "gsi1sk": "1", "n": 0.5}
        with usage.metered() as used:
            await dyn.write([Put("decisions", item)])
            await dyn.update(Update("decisions", "d", "1", add={"hits": 1}))
            await dyn.write([Update("decisions", "d", "2", set={"x": True}), Check("decisions", "d", "1")])
            await dyn.write([Delete("decisions", "d", "2")])
            assert await dyn.get("decisions", "d", "1", consistent=True) is not None
            await dyn.query("decisions", "d", consistent=True)
            await dyn.query("decisions", "g", index="gsi1", consistent=True)
            _ = [i async for i in dyn.scan("decisions")]
            assert spy.calls == []

            expected = {**item, "hits": 1}
            assert await dyn.get("decisions", "d", "1", consistent=False) == expected
            assert spy.calls == ["get_item"]
            page = await dyn.query("decisions", "d", consistent=False)
            assert page.items == [expected]
            page = await dyn.query("decisions", "g", index="gsi1", consistent=False)
            assert page.items == [expected]
            assert spy.calls == ["get_item", "query", "query"]
        assert used.by_operation["DaxGetItem"] == 1
        assert used.by_operation["DaxQuery"] == 2
        assert used.by_operation["GetItem"] == 1


async def test_without_dax_eventually_consistent_reads_use_dynamodb(dyn: DynamoEngine) -> None:
    await dyn.write([Put("state", {"pk": "e", "sk": "1"})])
    with usage.metered() as used:
        assert await dyn.get("state", "e", "1", consistent=False) == {"pk": "e", "sk": "1"}
    assert used.by_operation == {"GetItem": 1}
    assert used.read_units == 0.5


# --- failures of the store -----------------------------------------------------------------------


@pytest.mark.usefixtures("dynamodb_endpoint")  # for its fake credentials
async def test_unreachable_endpoint_raises_storage_unavailable() -> None:
    settings = dynamo_settings(f"http://127.0.0.1:{_closed_port()}")
    fast = Config(connect_timeout=0.5, read_timeout=0.5, retries={"mode": "standard", "max_attempts": 1})
    engine = await DynamoEngine.open(settings, client_config=fast)
    started = time.monotonic()
    try:
        with pytest.raises(StorageUnavailable, match="cannot reach") as caught:
            await engine.get("state", "a", "b")
        assert isinstance(caught.value.__cause__, EndpointConnectionError)
        with pytest.raises(StorageUnavailable):
            await engine.write([Put("state", {"pk": "a", "sk": "b"})])
        with pytest.raises(StorageUnavailable):
            await engine.write([Put("state", {"pk": "a", "sk": "b"}), Put("state", {"pk": "a", "sk": "c"})])
        with pytest.raises(StorageUnavailable):
            await engine.query("state", "a")
    finally:
        await engine.close()
    assert time.monotonic() - started < 10


async def test_missing_tables_raise_storage_unavailable(dynamodb_endpoint: str) -> None:
    engine = await DynamoEngine.open(dynamo_settings(dynamodb_endpoint, "never_created_"))
    try:
        with pytest.raises(StorageUnavailable, match="does not exist"):
            await engine.get("state", "a", "b")
    finally:
        await engine.close()


async def test_close_is_idempotent(dynamodb_endpoint: str) -> None:
    engine = await DynamoEngine.open(dynamo_settings(dynamodb_endpoint))
    await engine.close()
    await engine.close()
