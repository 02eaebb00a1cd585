"""Create, inspect and delete the four DynamoDB tables (for the CLI and the tests).

Creation is idempotent: an existing table is left exactly as it is (its key schema, indexes and
billing are not compared or changed), but TTL on ``ttl`` is still ensured, so re-running the
command repairs a table created without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError
from pydantic import BaseModel, ConfigDict, computed_field

from agent_memory.config import Settings
from agent_memory.errors import ConfigurationError, StorageUnavailable
from agent_memory.storage.dynamodb.requests import create_client, endpoint_description, translate_error
from agent_memory.storage.engine import PHYSICAL_NAMES, TABLES, TTL_ATTRIBUTE, IndexName, TableName

MISSING = "MISSING"
UNSUPPORTED = "UNSUPPORTED"
DEFAULT_MAX_WAIT_SECONDS = 300.0


class TableStatus(BaseModel):
    """One table as DynamoDB describes it."""

    model_config = ConfigDict(frozen=True)

    table: TableName
    """The logical table (``decisions``, ``ltm``, ``state``, ``signals``)."""
    name: str
    """The physical table name (prefix included)."""
    status: str
    """``ACTIVE``, ``CREATING``, ``UPDATING``, ``DELETING`` ... or ``MISSING``."""
    item_count: int | None = None
    """DynamoDB's item count (refreshed by the service about every six hours)."""
    ttl_status: str = MISSING
    """``ENABLED``, ``ENABLING``, ``DISABLED``, ``DISABLING`` or ``MISSING``."""
    ttl_attribute: str | None = None
    indexes: dict[str, str] = {}
    """Global secondary index name -> its status."""
    point_in_time_recovery: str = MISSING
    """``ENABLED``, ``DISABLED``, ``MISSING``, or ``UNSUPPORTED`` (an emulator without backups)."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ready(self) -> bool:
        """Active, with TTL on ``ttl`` and every index the engine expects active."""
        return (
            self.status == "ACTIVE"
            and self.ttl_status in ("ENABLED", "ENABLING")
            and self.ttl_attribute == TTL_ATTRIBUTE
            and all(self.indexes.get(index) == "ACTIVE" for index in TABLES[self.table])
        )


@dataclass(frozen=True)
class TableSpec:
    """Everything about one table that is not its name: the single definition that both
    :func:`create_tables` and the CloudFormation template (:func:`cloudformation_tables`) render,
    so the two cannot drift (tests/deploy/test_template.py compares them)."""

    table: TableName
    physical: str
    """The plan's table name, before the configurable prefix."""
    logical_id: str
    """The resource's name in the CloudFormation template."""
    indexes: tuple[IndexName, ...]
    stream: str | None = None
    """Stream view type, or None for no stream. The decisions table streams OLD_IMAGE so that TTL
    deletions reach the archive function (docs/DEPLOYMENT.md#archive)."""

    @property
    def attributes(self) -> list[str]:
        return ["pk", "sk", *(f"{index}{part}" for index in self.indexes for part in ("pk", "sk"))]

    def key_schema(self, prefix: str = "") -> list[dict[str, str]]:
        return [
            {"AttributeName": f"{prefix}pk", "KeyType": "HASH"},
            {"AttributeName": f"{prefix}sk", "KeyType": "RANGE"},
        ]


TABLE_SPECS: Mapping[TableName, TableSpec] = {
    "decisions": TableSpec(
        "decisions", PHYSICAL_NAMES["decisions"], "DecisionsTable", TABLES["decisions"], "OLD_IMAGE"
    ),
    "ltm": TableSpec("ltm", PHYSICAL_NAMES["ltm"], "MemoryLtmTable", TABLES["ltm"]),
    "state": TableSpec("state", PHYSICAL_NAMES["state"], "StateTable", TABLES["state"]),
    "signals": TableSpec("signals", PHYSICAL_NAMES["signals"], "SignalsTable", TABLES["signals"]),
}
BILLING_MODE = "PAY_PER_REQUEST"
"""On-demand: no capacity to plan, and an idle memory costs only its storage."""
SSE_KMS = {"SSEEnabled": True, "SSEType": "KMS"}
"""Encryption at rest with the AWS-managed KMS key (``alias/aws/dynamodb``), auditable in CloudTrail."""


def _gsis(spec: TableSpec) -> list[dict[str, Any]]:
    return [
        {"IndexName": index, "KeySchema": spec.key_schema(index), "Projection": {"ProjectionType": "ALL"}}
        for index in spec.indexes
    ]


def create_table_request(spec: TableSpec, name: str) -> dict[str, Any]:
    """The ``CreateTable`` parameters of ``spec`` under the physical ``name``. TTL and
    point-in-time recovery are separate calls after creation (the API has no field for them)."""
    request: dict[str, Any] = {
        "TableName": name,
        "BillingMode": BILLING_MODE,
        "KeySchema": spec.key_schema(),
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in spec.attributes],
        "SSESpecification": {"Enabled": True, "SSEType": "KMS"},
    }
    if spec.indexes:
        request["GlobalSecondaryIndexes"] = _gsis(spec)
    if spec.stream:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": spec.stream}
    return request


def cloudformation_tables(prefix_parameter: str = "TablePrefix") -> dict[str, dict[str, Any]]:
    """The four ``AWS::DynamoDB::Table`` resources (logical id -> resource), named
    ``${prefix_parameter}<plan name>``, with the same keys, indexes, billing, stream and encryption
    as :func:`create_table_request`, TTL on ``ttl`` and point-in-time recovery on. Tables are
    retained when the stack is deleted: deleting a stack must not delete the memory."""
    resources: dict[str, dict[str, Any]] = {}
    for spec in TABLE_SPECS.values():
        properties: dict[str, Any] = {
            "TableName": {"Fn::Sub": f"${{{prefix_parameter}}}{spec.physical}"},
            "BillingMode": BILLING_MODE,
            "KeySchema": spec.key_schema(),
            "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in spec.attributes],
            "TimeToLiveSpecification": {"AttributeName": TTL_ATTRIBUTE, "Enabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": dict(SSE_KMS),
        }
        if spec.indexes:
            properties["GlobalSecondaryIndexes"] = _gsis(spec)
        if spec.stream:
            properties["StreamSpecification"] = {"StreamViewType": spec.stream}
        resources[spec.logical_id] = {
            "Type": "AWS::DynamoDB::Table",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": properties,
        }
    return resources


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


async def _admin(
    settings: Settings,
    session: Any,
    client_config: Config | None,
    action: str,
    body: Callable[[Any], Awaitable[Any]],
) -> Any:
    """Run ``body(client)`` with a fresh client, translating botocore failures."""
    try:
        async with create_client(settings, session=session, config=client_config) as client:
            return await body(client)
    except NoRegionError as exc:
        raise ConfigurationError(
            "no AWS region for DynamoDB: set AGENT_MEMORY_AWS_REGION or AWS_DEFAULT_REGION"
        ) from exc
    except (ClientError, BotoCoreError, OSError) as exc:
        raise translate_error(exc, action, endpoint_description(settings)) from exc


async def _describe(client: Any, settings: Settings, table: TableName) -> TableStatus:
    name = settings.table_name(PHYSICAL_NAMES[table])
    try:
        description = (await client.describe_table(TableName=name))["Table"]
    except ClientError as exc:
        if _error_code(exc) == "ResourceNotFoundException":
            return TableStatus(table=table, name=name, status=MISSING)
        raise
    try:
        ttl = (await client.describe_time_to_live(TableName=name)).get("TimeToLiveDescription", {})
    except ClientError as exc:
        # The table may vanish between the two calls (a concurrent delete).
        if _error_code(exc) != "ResourceNotFoundException":
            raise
        ttl = {}
    return TableStatus(
        point_in_time_recovery=await _pitr_status(client, name),
        table=table,
        name=name,
        status=str(description.get("TableStatus", "UNKNOWN")),
        item_count=description.get("ItemCount"),
        ttl_status=str(ttl.get("TimeToLiveStatus", MISSING)),
        ttl_attribute=ttl.get("AttributeName"),
        indexes={
            str(index["IndexName"]): str(index.get("IndexStatus", "UNKNOWN"))
            for index in description.get("GlobalSecondaryIndexes", [])
        },
    )


async def _pitr_status(client: Any, name: str) -> str:
    try:
        backups = (await client.describe_continuous_backups(TableName=name))["ContinuousBackupsDescription"]
    except ClientError as exc:
        if _error_code(exc) == "ResourceNotFoundException":
            return MISSING
        # DynamoDB Local has no backups API; said so in the status, never silently.
        if _error_code(exc) == "UnknownOperationException":
            return UNSUPPORTED
        raise
    return str(backups.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus", MISSING))


async def _ensure_pitr(client: Any, status: TableStatus) -> TableStatus:
    """``status`` after turning point-in-time recovery on, if the table is ACTIVE and has it off."""
    if status.status != "ACTIVE" or status.point_in_time_recovery != "DISABLED":
        return status
    await client.update_continuous_backups(
        TableName=status.name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    return status.model_copy(update={"point_in_time_recovery": await _pitr_status(client, status.name)})


async def _describe_all(client: Any, settings: Settings) -> list[TableStatus]:
    return list(await asyncio.gather(*(_describe(client, settings, table) for table in TABLES)))


async def _wait_until(
    client: Any,
    settings: Settings,
    done: Callable[[TableStatus], bool],
    goal: str,
    max_wait: float,
) -> list[TableStatus]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_wait
    delay = 0.1
    while True:
        statuses = await _describe_all(client, settings)
        pending = [s.name for s in statuses if not done(s)]
        if not pending:
            return statuses
        if loop.time() + delay > deadline:
            raise StorageUnavailable(
                f"tables {', '.join(pending)} are not {goal} after {max_wait:.0f} s; "
                "check them in the AWS console, or run the command again later"
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)


def _active(status: TableStatus) -> bool:
    return status.status == "ACTIVE" and all(state == "ACTIVE" for state in status.indexes.values())


async def _ensure_ttl(client: Any, status: TableStatus) -> TableStatus:
    """``status`` after enabling TTL on ``ttl`` if needed (only for an ACTIVE table)."""
    if status.status != "ACTIVE":
        return status
    if status.ttl_status in ("ENABLED", "ENABLING"):
        if status.ttl_attribute != TTL_ATTRIBUTE:
            raise ConfigurationError(
                f"table {status.name} has TTL on attribute {status.ttl_attribute!r}, but the memory "
                f"expires items by {TTL_ATTRIBUTE!r}: disable TTL on the table and run create again"
            )
        return status
    try:
        await client.update_time_to_live(
            TableName=status.name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )
    except ClientError as exc:
        # Another process may have enabled it between the describe and this call.
        message = str(exc.response.get("Error", {}).get("Message", "")).lower()
        if not (_error_code(exc) == "ValidationException" and "already enabled" in message):
            raise
    ttl = (await client.describe_time_to_live(TableName=status.name)).get("TimeToLiveDescription", {})
    return status.model_copy(
        update={
            "ttl_status": str(ttl.get("TimeToLiveStatus", MISSING)),
            "ttl_attribute": ttl.get("AttributeName"),
        }
    )


async def create_tables(
    settings: Settings,
    *,
    wait: bool = True,
    max_wait: float = DEFAULT_MAX_WAIT_SECONDS,
    session: Any = None,
    client_config: Config | None = None,
) -> list[TableStatus]:
    """Create the four tables if absent, as :data:`TABLE_SPECS` defines them (on-demand billing,
    indexes, KMS encryption, the decisions stream), enable TTL on ``ttl`` and point-in-time
    recovery (where the endpoint has it: DynamoDB Local reports ``UNSUPPORTED``).

    With ``wait`` (the default), returns once every table and index is ACTIVE, or raises
    StorageUnavailable after ``max_wait`` seconds. Without it, TTL can only be enabled on tables
    that are already ACTIVE; run it again (or with ``wait``) to finish the others.
    """

    async def create(client: Any, table: TableName) -> None:
        try:
            await client.create_table(
                **create_table_request(TABLE_SPECS[table], settings.table_name(PHYSICAL_NAMES[table]))
            )
        except ClientError as exc:
            # An existing table (or one being created by a concurrent run) is left alone.
            if _error_code(exc) != "ResourceInUseException":
                raise

    async def body(client: Any) -> list[TableStatus]:
        await asyncio.gather(*(create(client, table) for table in TABLES))
        if wait:
            statuses = await _wait_until(client, settings, _active, "ACTIVE", max_wait)
        else:
            statuses = await _describe_all(client, settings)
        statuses = list(await asyncio.gather(*(_ensure_ttl(client, status) for status in statuses)))
        return list(await asyncio.gather(*(_ensure_pitr(client, status) for status in statuses)))

    result: list[TableStatus] = await _admin(settings, session, client_config, "creating the tables", body)
    return result


async def table_status(
    settings: Settings, *, session: Any = None, client_config: Config | None = None
) -> list[TableStatus]:
    """The four tables as they are now (``status="MISSING"`` for absent ones)."""

    async def body(client: Any) -> list[TableStatus]:
        return await _describe_all(client, settings)

    result: list[TableStatus] = await _admin(settings, session, client_config, "describing the tables", body)
    return result


async def delete_tables(
    settings: Settings,
    *,
    wait: bool = True,
    max_wait: float = DEFAULT_MAX_WAIT_SECONDS,
    session: Any = None,
    client_config: Config | None = None,
) -> list[str]:
    """Delete the four tables and everything in them; absent tables are skipped. Returns the
    names of the tables this call deleted. With ``wait``, returns once they are gone."""

    async def delete(client: Any, table: TableName) -> str | None:
        name = settings.table_name(PHYSICAL_NAMES[table])
        try:
            await client.delete_table(TableName=name)
        except ClientError as exc:
            # Missing, or already being deleted by someone else: either way, it is going.
            if _error_code(exc) not in ("ResourceNotFoundException", "ResourceInUseException"):
                raise
            return None
        return name

    async def body(client: Any) -> list[str]:
        names = await asyncio.gather(*(delete(client, table) for table in TABLES))
        deleted = [name for name in names if name is not None]
        if wait:
            await _wait_until(client, settings, lambda s: s.status == MISSING, "deleted", max_wait)
        return deleted

    result: list[str] = await _admin(settings, session, client_config, "deleting the tables", body)
    return result
