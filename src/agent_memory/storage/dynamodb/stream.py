"""The archive function: DynamoDB Streams records of the decisions table -> the S3 archive.

Deployed by deploy/template.yaml as a Lambda on the decisions table's stream (view OLD_IMAGE),
filtered to deletions made by TTL. Each invocation writes the expired items of its batch as gzip
JSON Lines, one object per agent and day (:mod:`agent_memory.storage.archive`). Any failure raises,
so Lambda retries the batch (bisecting it on repeated failures, then parking it in the failure
queue, which has an alarm): an expired decision is archived or visibly stuck, never dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from agent_memory.config import Settings
from agent_memory.errors import ConfigurationError
from agent_memory.storage.archive import ArchiveLocation, location, write_archive
from agent_memory.storage.dynamodb.codec import from_wire
from agent_memory.storage.engine import Item

TTL_PRINCIPAL = "dynamodb.amazonaws.com"


def is_ttl_deletion(record: Mapping[str, Any]) -> bool:
    """A REMOVE made by the TTL process (not by a user or the application)."""
    identity = record.get("userIdentity") or {}
    return (
        record.get("eventName") == "REMOVE"
        and identity.get("type") == "Service"
        and identity.get("principalId") == TTL_PRINCIPAL
    )


def expired_items(records: Iterable[Mapping[str, Any]]) -> list[Item]:
    """The old images of the records that are TTL deletions."""
    items = []
    for record in records:
        if not is_ttl_deletion(record):
            continue
        image = record.get("dynamodb", {}).get("OldImage")
        if not image:
            # The stream must carry old images: without them the item would be lost unarchived.
            raise ConfigurationError(
                "a TTL deletion arrived without its old image: set the decisions table's stream "
                "view type to OLD_IMAGE (or NEW_AND_OLD_IMAGES)"
            )
        items.append(from_wire(image))
    return items


async def archive_records(records: Iterable[Mapping[str, Any]], target: ArchiveLocation) -> dict[str, Any]:
    items = expired_items(records)
    objects = await write_archive(target, items) if items else []
    return {"archived": len(items), "objects": objects}


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """AWS Lambda entry point (event source: the decisions table's stream).

    Settings from the environment; ``AGENT_MEMORY_ARCHIVE_URL`` (``s3://bucket/prefix/``) is required.
    """
    settings = Settings()
    if not settings.archive_url:
        raise ConfigurationError("the archive function needs AGENT_MEMORY_ARCHIVE_URL (s3://bucket/prefix/)")
    return asyncio.run(archive_records(event.get("Records", []), location(settings.archive_url)))
