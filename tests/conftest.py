"""Shared fixtures. Backend fixtures live in tests/fixtures/ (one module per backend)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from agent_memory.storage.engine import ItemEngine

pytest_plugins = ["tests.fixtures.dynamodb", "tests.fixtures.sqlite"]

FULL_MATRIX = os.environ.get("AGENT_MEMORY_TEST_FULL", "") not in ("", "0")
"""Set by .ci/run: also run the variants marked ``full_matrix`` (redundant for a quick check)."""

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


# The slowest variants whose path the quick run covers with another variant (the same code on the
# other backend, or the same backend through a cheaper entry point). Listed here, in one place,
# rather than marked in each file; a test file may also mark a variant ``full_matrix`` itself.
FULL_MATRIX_ONLY = frozenset(
    {
        # DynamoDB: the storage contract suites and [dynamodb-2024-90-16] cover the store; these
        # repeat whole scenarios over it (40-150 s on 2 cores, most of the suite's DynamoDB time).
        "tests/memory/test_analytics.py::test_report_matches_ground_truth[dynamodb-7-160-26]",
        "tests/memory/test_analytics.py::test_report_is_json_serialisable_and_small[dynamodb]",
        "tests/memory/test_learner.py::test_learning_on_dynamodb",
        "tests/server/test_tools_inprocess.py::test_trading_desk_round[dynamodb]",
        "tests/test_client.py::test_two_agents_share_one_memory_over_stdio[dynamodb]",
        "tests/server/test_http.py::test_identity_comes_from_the_token[dynamodb]",
        "tests/server/test_http.py::test_requests_without_a_valid_token_are_refused[dynamodb]",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without AGENT_MEMORY_TEST_FULL=1, leave out the variants of the full matrix."""
    for item in items:
        if item.nodeid in FULL_MATRIX_ONLY:
            item.add_marker(pytest.mark.full_matrix)
    if FULL_MATRIX:
        return
    keep = [item for item in items if item.get_closest_marker("full_matrix") is None]
    if len(keep) < len(items):
        kept = {id(item) for item in keep}
        config.hook.pytest_deselected(items=[item for item in items if id(item) not in kept])
        items[:] = keep


def pytest_report_header(config: pytest.Config) -> str:
    if FULL_MATRIX:
        return "full matrix (AGENT_MEMORY_TEST_FULL=1)"
    return "quick matrix: variants marked full_matrix are deselected (AGENT_MEMORY_TEST_FULL=1 runs them)"
