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
        # The demo on DynamoDB: the demo's story is checked on SQLite, its store by the suites above.
        "tests/test_demo.py::test_demo_runs_on_the_configured_dynamodb",
    }
)


# Tests whose DynamoDB variants only repeat what the SQLite variant checks: their subject is the
# HTTP layer, the tokens, input validation or a size budget, decided before anything is stored
# (the storage contract suites and the DynamoDB variants kept in the quick run cover the store).
DYNAMODB_VARIANTS_FULL_MATRIX_ONLY = frozenset(
    {
        "tests/security/test_bounds.py::test_bodies_over_1_mib_are_refused_unread",
        "tests/security/test_bounds.py::test_a_large_payload_is_refused_by_size_with_a_clear_message",
        "tests/security/test_bounds.py::test_a_half_open_request_is_closed",
        "tests/security/test_bounds.py::test_connections_beyond_the_limit_get_503",
        "tests/security/test_bounds.py::test_rate_limit_is_per_agent_and_says_when_to_retry",
        "tests/security/test_hygiene.py::test_ids_with_a_trailing_newline_are_refused",
        "tests/security/test_hygiene.py::test_control_characters_never_reach_the_terminal",
        "tests/security/test_import.py::test_an_invalid_line_refuses_the_whole_import",
        "tests/security/test_tokens.py::test_tokens_are_listed_removed_and_rotated_without_a_restart",
        "tests/security/test_tokens.py::test_an_expired_token_is_refused",
        "tests/security/test_tokens.py::test_a_broken_tokens_file_grants_nothing",
        "tests/security/test_tokens.py::test_jwt_from_an_identity_provider",
        "tests/server/test_surface.py::test_tools_list_fits_the_budget",
        "tests/server/test_surface.py::test_prompt_arguments_are_validated",
        "tests/server/test_surface.py::test_default_pages_fit_the_budget_at_the_size_limits",
        "tests/server/test_budgets.py::test_budget_input_errors_say_what_to_change",
        "tests/server/test_budgets.py::test_read_only_server_lists_no_budget_tool",
        # Processes racing on one store: test_budgets and the contract suites check DynamoDB's
        # conditional writes in process; the SQLite variants keep the multi-process check.
        "tests/storage/test_budget_race.py::test_processes_racing_one_budget_get_exactly_the_limit",
        "tests/storage/test_multiprocess_memory.py::test_four_processes_lose_nothing",
    }
)


def _full_matrix_only(item: pytest.Item) -> bool:
    if item.nodeid in FULL_MATRIX_ONLY:
        return True
    base, _, variant = item.nodeid.partition("[")
    return base in DYNAMODB_VARIANTS_FULL_MATRIX_ONLY and "dynamodb" in variant.split("-")[0]


# The files whose tests take longest (processes started, whole scenarios; measured with
# --durations), run first so that the parallel workers end on short tests and finish together.
# Whole files move, in this order, so that their module fixtures are set up once.
SLOW_FIRST = (
    "tests/test_docs_commands.py",
    "tests/test_cli.py",
    "tests/security/test_tokens.py",
    "tests/test_demo.py",
    "tests/storage/test_multiprocess_memory.py",
    "tests/server/test_workers.py",
    "tests/storage/test_id_migration.py",
    "tests/server/test_schema_clients.py",
    "tests/storage/test_archive.py",
    "tests/security/test_sharing.py",
    "tests/security/test_integrity.py",
    "tests/faults/test_kill.py",
    "tests/test_client.py",
    "tests/storage/test_budget_race.py",
    "tests/security/test_quotas.py",
    "tests/test_claude_desktop_config.py",
)


def _slow_first(item: pytest.Item) -> int:
    path = item.nodeid.partition("::")[0]
    return SLOW_FIRST.index(path) if path in SLOW_FIRST else len(SLOW_FIRST)


@pytest.hookimpl(trylast=True)  # after pytest has grouped the items by their fixtures' scopes
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without AGENT_MEMORY_TEST_FULL=1, leave out the variants of the full matrix; the slow
    files first."""
    items.sort(key=_slow_first)  # stable: the order within a file, and of the other files, stays
    for item in items:
        if _full_matrix_only(item):
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
