"""``agent-memory analytics``: a report read as an observer, rendered for a terminal, a script or a
browser."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from agent_memory.analytics import Format, render
from agent_memory.config import Settings
from agent_memory.memory.analytics import Analytics
from agent_memory.memory.identity import Caller
from agent_memory.models import utcnow


async def analytics_command(
    settings: Settings,
    *,
    agent: str | None,
    window: timedelta,
    fmt: Format,
    output: Path | None,
    all_agents: bool,
) -> str:
    """Run a report as an observer (an operator at the terminal may read every agent) and return
    it rendered. ``agent`` None and not ``all_agents``: the configured ``AGENT_MEMORY_AGENT_ID``.
    With ``output``, the rendered text is also written to that file (e.g. the HTML report).
    """
    from agent_memory.storage.factory import open_store

    caller = Caller(agent_id=settings.agent_id, role="observer")
    target = None if all_agents else (agent or settings.agent_id)
    async with open_store(settings, utcnow) as store:
        report = await Analytics(store, settings, store.clock).report(
            caller, window=window, agent_id=target, all_agents=all_agents
        )
    text = render(report, fmt)
    if output is not None:
        await asyncio.to_thread(_write, output, text)
    return text


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
