"""The state tools that do more than forward: get_state, which shows one section whole or all
sections within the result budget, and update_state, whose patch its request model validated."""

from __future__ import annotations

from agent_memory.api import requests as rq
from agent_memory.api import results as rs
from agent_memory.memory.identity import Caller
from agent_memory.tools._common import AppContext


async def get_state(app: AppContext, caller: Caller, req: rq.GetState) -> rs.StateResult:
    return rs.StateResult.of(await app.memory.get_state(caller), req.section)


async def update_state(app: AppContext, caller: Caller, req: rq.UpdateState) -> rs.StateWritten:
    state = await app.memory.update_state(
        caller,
        req.patch,
        req.expected_version,
        checkpoint=req.checkpoint,
        request_id=req.request_id,
        validated=True,
    )
    return rs.StateWritten.built(version=state.version, checkpoint=req.checkpoint)
