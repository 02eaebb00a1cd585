"""Table administration on Amazon DynamoDB Local."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import boto3
import pytest
from botocore.config import Config

from agent_memory.config import Settings
from agent_memory.errors import StorageUnavailable
from agent_memory.storage.dynamodb.admin import MISSING, create_tables, delete_tables, table_status
from agent_memory.storage.dynamodb.engine import DynamoEngine
from agent_memory.storage.engine import PHYSICAL_NAMES, TABLES, TTL_ATTRIBUTE, Put
from tests.fixtures.dynamodb import dynamo_settings


@pytest.fixture
async def settings(dynamodb_endpoint: str) -> AsyncIterator[Settings]:
    settings = dynamo_settings(dynamodb_endpoint)
    yield settings
    await delete_tables(settings)


def _boto(settings: Settings) -> object:
    return boto3.client("dynamodb", endpoint_url=settings.dynamodb_endpoint_url, region_name="us-east-1")


async def test_status_reports_missing_before_create(settings: Settings) -> None:
    statuses = await table_status(settings)
    assert [s.table for s in statuses] == list(TABLES)
    assert [s.name for s in statuses] == [settings.table_prefix + PHYSICAL_NAMES[t] for t in TABLES]
    assert all(s.status == MISSING and s.ttl_status == MISSING and not s.ready for s in statuses)


async def test_create_makes_active_tables_with_ttl_and_indexes(settings: Settings) -> None:
    statuses = await create_tables(settings)
    assert [s.table for s in statuses] == list(TABLES)
    for status in statuses:
        assert status.status == "ACTIVE"
        assert (status.ttl_status, status.ttl_attribute) == ("ENABLED", TTL_ATTRIBUTE)
        assert status.indexes == {index: "ACTIVE" for index in TABLES[status.table]}
        assert status.item_count == 0
        assert status.ready

    client = _boto(settings)
    for table in TABLES:
        description = client.describe_table(TableName=settings.table_prefix + PHYSICAL_NAMES[table])["Table"]  # type: ignore[attr-defined]
        assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert description["KeySchema"] == [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ]
        assert all(a["AttributeType"] == "S" for a in description["AttributeDefinitions"])
        for index in description.get("GlobalSecondaryIndexes", []):
            name = index["IndexName"]
            assert index["KeySchema"] == [
                {"AttributeName": f"{name}pk", "KeyType": "HASH"},
                {"AttributeName": f"{name}sk", "KeyType": "RANGE"},
            ]
            assert index["Projection"] == {"ProjectionType": "ALL"}


async def test_create_is_idempotent_and_keeps_data(settings: Settings) -> None:
    await create_tables(settings)
    engine = await DynamoEngine.open(settings)
    try:
        await engine.write([Put("state", {"pk": "keep", "sk": "me"})])
        again = await create_tables(settings)
        assert all(s.ready for s in again)
        assert await engine.get("state", "keep", "me") == {"pk": "keep", "sk": "me"}
    finally:
        await engine.close()


async def test_create_repairs_missing_ttl(settings: Settings) -> None:
    await create_tables(settings)
    name = settings.table_prefix + PHYSICAL_NAMES["signals"]
    _boto(settings).update_time_to_live(  # type: ignore[attr-defined]
        TableName=name, TimeToLiveSpecification={"Enabled": False, "AttributeName": TTL_ATTRIBUTE}
    )
    before = {s.table: s for s in await table_status(settings)}
    assert before["signals"].ttl_status == "DISABLED" and not before["signals"].ready
    after = {s.table: s for s in await create_tables(settings, wait=False)}
    assert after["signals"].ttl_status == "ENABLED" and after["signals"].ready


async def test_delete_is_idempotent(settings: Settings) -> None:
    await create_tables(settings)
    deleted = await delete_tables(settings)
    assert sorted(deleted) == sorted(settings.table_prefix + PHYSICAL_NAMES[t] for t in TABLES)
    assert all(s.status == MISSING for s in await table_status(settings))
    assert await delete_tables(settings) == []


@pytest.mark.usefixtures("dynamodb_endpoint")  # for its fake credentials
async def test_unreachable_endpoint_raises_storage_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = dynamo_settings(f"http://127.0.0.1:{port}")
    fast = Config(connect_timeout=0.5, retries={"mode": "standard", "max_attempts": 1})
    with pytest.raises(StorageUnavailable, match="cannot reach"):
        await table_status(settings, client_config=fast)
    with pytest.raises(StorageUnavailable):
        await create_tables(settings, client_config=fast)
