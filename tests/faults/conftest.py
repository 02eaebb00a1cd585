"""Fixtures of the fault-injection suites: a DynamoDB engine behind a fault proxy."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from agent_memory.storage.dynamodb.admin import create_tables, delete_tables
from agent_memory.storage.dynamodb.engine import DynamoEngine
from tests.faults.proxy import FaultProxy, fault_proxy
from tests.fixtures.dynamodb import dynamo_settings


@pytest.fixture
def emulator(dynamodb_endpoint: str) -> str:
    """The URL of the session's DynamoDB emulator (whichever the fixtures provide)."""
    return dynamodb_endpoint


@asynccontextmanager
async def proxied_engine(emulator: str, **settings: Any) -> AsyncIterator[tuple[DynamoEngine, FaultProxy]]:
    """An engine on fresh tables whose every request passes through a fault proxy."""
    prefix = f"f{uuid.uuid4().hex[:12]}_"
    direct = dynamo_settings(emulator, prefix)
    await create_tables(direct)
    try:
        async with fault_proxy(emulator) as proxy:
            engine = await DynamoEngine.open(dynamo_settings(proxy.url, prefix, **settings))
            try:
                yield engine, proxy
            finally:
                await engine.close()
    finally:
        await delete_tables(direct, wait=False)
