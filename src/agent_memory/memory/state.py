"""Agent state (four sections under optimistic versions) and its checkpoints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent_memory.errors import InvalidInput, NotFound
from agent_memory.memory.core import ServiceBase, checked_record, off_loop
from agent_memory.memory.identity import Caller
from agent_memory.models import (
    MAX_PAYLOAD_BYTES,
    STATE_SECTIONS,
    UNCHANGED,
    AgentState,
    Page,
    StateCheckpoint,
    bounded_json,
    certainly_small,
)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


class StateService(ServiceBase):
    """Read and merge-patch state; list and fetch checkpoints."""

    async def get_state(self, caller: Caller, agent_id: str | None = None) -> AgentState:
        owner = agent_id or caller.agent_id
        caller.require_read(owner, "state")
        return await self.store.get_state(owner)

    async def update_state(
        self,
        caller: Caller,
        patch: Mapping[str, Any],
        expected_version: int,
        checkpoint: str | None = None,
        agent_version: str | None = None,
        request_id: str | None = None,
        validated: bool = False,
    ) -> AgentState:
        """``request_id`` names this update: a retry with the same id and patch after a lost answer
        gets the first answer instead of ``version_conflict`` (see docs/RELIABILITY.md).

        ``validated``: ``patch`` comes from the tool's request model
        (:class:`agent_memory.api.requests.UpdateState`), which checked and normalised it as a
        payload: it is not walked again (issue #14). Either way, only the sections the patch
        touches are checked again once merged: the others are as they were stored, checked when
        written."""
        caller.require_write("update state")
        unknown = sorted(set(patch) - set(STATE_SECTIONS))
        if unknown:
            raise InvalidInput(
                f"patch has unknown section(s) {unknown}: patch is a JSON merge patch over "
                f'{list(STATE_SECTIONS)}, e.g. {{"current": {{"cycle": 143}}}}'
            )
        if not validated:
            # A patch may touch four sections of at most 64 KiB each.
            patch = await off_loop(
                bounded_json, dict(patch), "patch", limit=len(STATE_SECTIONS) * MAX_PAYLOAD_BYTES
            )
        current = await self.store.get_state(caller.agent_id)
        now = self.clock()
        # The record's fields as they are (merge_patch copies what it changes, never the input).
        data = dict(current.__dict__)
        for section in STATE_SECTIONS:
            if section not in patch:
                continue
            if patch[section] is None:  # merge-patch null: clear the section
                data[section] = {}
            elif isinstance(patch[section], dict):
                data[section] = merge_patch(data[section], patch[section])
            else:
                raise InvalidInput(f"patch.{section} must be an object (or null to clear it)")
        data.update(
            version=expected_version + 1,
            updated_at=now,
            updated_by=caller.agent_id,
            agent_version=agent_version or self.settings.agent_version or current.agent_version,
        )
        unchanged = frozenset(s for s in STATE_SECTIONS if s not in patch)
        if validated and all(certainly_small(data[s]) for s in STATE_SECTIONS if s not in unchanged):
            # Every value is valid: the server's own, the request model's, or as stored; the
            # sections merged from both are normalised already and certainly within their limit.
            new_state = checked_record(AgentState, data)
        else:
            new_state = await off_loop(AgentState.model_validate, data, context={UNCHANGED: unchanged})
        charge = self.quotas.charge(caller.agent_id, "checkpoints")
        return await self.store.put_state(new_state, expected_version, checkpoint, request_id, charge)

    async def list_checkpoints(
        self, caller: Caller, agent_id: str | None = None, limit: int = 10, cursor: str | None = None
    ) -> Page[StateCheckpoint]:
        """Checkpoints newest first (an agent's own; the observer role reads any agent's)."""
        owner = agent_id or caller.agent_id
        caller.require_read(owner, "checkpoints")
        return await self.store.list_checkpoints(owner, limit=limit, cursor=cursor)

    async def get_checkpoint(
        self, caller: Caller, version: int, agent_id: str | None = None
    ) -> StateCheckpoint:
        """The checkpoint kept at ``version`` (pages through the checkpoints, newest first)."""
        cursor: str | None = None
        while True:
            page = await self.list_checkpoints(caller, agent_id, limit=50, cursor=cursor)
            for checkpoint in page.items:
                if checkpoint.version == version:
                    return checkpoint
            if page.next_cursor is None or (page.items and page.items[-1].version < version):
                raise NotFound(
                    f"no checkpoint at version {version}: list them at memory://agents/{{agent_id}}/checkpoints"
                )
            cursor = page.next_cursor
