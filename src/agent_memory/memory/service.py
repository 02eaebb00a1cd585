"""Domain services: what an agent can do with its memory, with the access rules applied once.

No MCP here and no storage details: this is usable from plain Python (the demo, Lambda jobs).
The server stamps author and time on every record from the :class:`Caller`; arguments never
decide whose memory is written.

The methods live by family in :mod:`.decisions` (and notes), :mod:`.patterns`, :mod:`.signals`,
:mod:`.state` (and checkpoints) and :mod:`.registry`; :class:`Memory` joins them into the one face
the tools, the demo and the jobs use.
"""

from __future__ import annotations

from agent_memory.api.requests import new_id
from agent_memory.memory.core import ServiceBase, off_loop
from agent_memory.memory.decisions import NOTES_SHOWN, PENDING_CAP, DecisionService
from agent_memory.memory.patterns import LEARNED_PREFIX, PatternService, with_evidence
from agent_memory.memory.signals import SignalService
from agent_memory.memory.state import StateService, merge_patch

__all__ = [
    "LEARNED_PREFIX",
    "NOTES_SHOWN",
    "PENDING_CAP",
    "Memory",
    "ServiceBase",
    "merge_patch",
    "new_id",
    "off_loop",
    "with_evidence",
]


class Memory(DecisionService, PatternService, SignalService, StateService):
    """The memory of a team of agents, as one caller sees it."""
