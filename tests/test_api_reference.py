"""docs/API_REFERENCE.md is generated from the server's schemas: fail when it is stale."""

from __future__ import annotations

from pathlib import Path

from agent_memory.server.reference import render

REFERENCE = Path(__file__).parents[1] / "docs" / "API_REFERENCE.md"


async def test_api_reference_is_current() -> None:
    expected = await render()
    assert REFERENCE.read_text() == expected, (
        "docs/API_REFERENCE.md is stale: run `python -m agent_memory.server.reference > docs/API_REFERENCE.md`"
    )
