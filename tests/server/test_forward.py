"""The tool table's forwarding: a tool whose request has a field the service method does not take
is refused when the table is built, not on its first call."""

from __future__ import annotations

from typing import Any

import pytest

from agent_memory.api import TOOLS
from agent_memory.tools import HANDLERS, forward


def test_a_request_field_the_method_does_not_take_fails_the_table() -> None:
    async def store_note(self: Any, caller: Any, key: str) -> None:  # no value, no ttl_minutes
        return None

    with pytest.raises(TypeError, match=r"store_stm: .*store_note takes no \['value', 'ttl_minutes'\]"):
        forward("store_stm", store_note)


def test_every_tool_has_one_handler() -> None:
    assert set(HANDLERS) == set(TOOLS)
