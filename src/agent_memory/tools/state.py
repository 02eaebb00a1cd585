"""The state tool that does more than forward: get_state, which shows one section whole or all
sections within the result budget."""

from __future__ import annotations

from agent_memory.api import requests as rq
from agent_memory.api import results as rs
from agent_memory.memory.identity import Caller
from agent_memory.tools._common import AppContext


async def get_state(app: AppContext, caller: Caller, req: rq.GetState) -> rs.StateResult:
    return rs.StateResult.of(await app.memory.get_state(caller), req.section)
