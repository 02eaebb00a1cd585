"""`agent-memory tables create` makes the tables TABLE_SPECS defines: stream, encryption and
point-in-time recovery included (moto's DynamoDB, which implements the backups API)."""

from __future__ import annotations

import uuid

from agent_memory.config import Settings
from agent_memory.storage.dynamodb.admin import TABLE_SPECS, create_tables, delete_tables, table_status
from tests.fixtures.aws import aws_client


async def test_create_tables_applies_the_whole_spec(moto_endpoint: str) -> None:
    prefix = f"spec{uuid.uuid4().hex[:8]}_"
    settings = Settings(
        backend="dynamodb", dynamodb_endpoint_url=moto_endpoint, aws_region="us-east-1", table_prefix=prefix
    )
    try:
        statuses = await create_tables(settings)
        assert {s.table: s.point_in_time_recovery for s in statuses} == dict.fromkeys(TABLE_SPECS, "ENABLED")
        assert all(s.ready for s in statuses)
        ddb = aws_client(moto_endpoint, "dynamodb")
        for spec in TABLE_SPECS.values():
            table = ddb.describe_table(TableName=prefix + spec.physical)["Table"]
            assert table.get("StreamSpecification", {}).get("StreamViewType") == spec.stream
            assert table["SSEDescription"]["Status"] == "ENABLED"
            assert table["SSEDescription"]["SSEType"] == "KMS"
        # Idempotent: a second run changes nothing and reports the same.
        again = await create_tables(settings)
        assert [s.model_dump() for s in again] == [s.model_dump() for s in await table_status(settings)]
    finally:
        await delete_tables(settings, wait=False)
