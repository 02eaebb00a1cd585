"""Shared fixtures. Backend fixtures live in tests/fixtures/ (one module per backend)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from agent_memory.storage.engine import ItemEngine

pytest_plugins = ["tests.fixtures.dynamodb", "tests.fixtures.sqlite"]

BACKENDS = [b for b in os.environ.get("AGENT_MEMORY_TEST_BACKENDS", "sqlite,dynamodb").split(",") if b]


@pytest.fixture(params=BACKENDS)
async def engine(request: pytest.FixtureRequest, tmp_path: object) -> AsyncIterator[ItemEngine]:
    """A fresh, empty engine of each backend (the contract suites run against every one)."""
    if request.param == "sqlite":
        from tests.fixtures.sqlite import sqlite_engine

        async with sqlite_engine(tmp_path / "memory.db") as eng:  # type: ignore[operator]
            yield eng
    else:
        from tests.fixtures.dynamodb import dynamo_engine

        endpoint = request.getfixturevalue("dynamodb_endpoint")
        async with dynamo_engine(endpoint) as eng:
            yield eng
