"""Who is calling. Built by the server from the transport (never from a tool argument)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agent_memory.errors import AccessDenied

Role = Literal["agent", "observer"]


@dataclass(frozen=True)
class Caller:
    agent_id: str
    role: Role = "agent"

    @property
    def is_observer(self) -> bool:
        return self.role == "observer"

    def may_read_agent(self, agent_id: str) -> bool:
        return agent_id == self.agent_id or self.is_observer

    def require_write(self, what: str) -> None:
        """Observers read across agents and write nothing (issue #12: a dashboard's token must not
        be able to log decisions, publish signals or share patterns)."""
        if self.is_observer:
            raise AccessDenied(
                f"the observer role is read-only: it cannot {what}. Use an agent token to write."
            )

    def require_read(self, agent_id: str, what: str) -> None:
        if not self.may_read_agent(agent_id):
            raise AccessDenied(
                f"{what} of agent {agent_id!r} are private to it; only the observer role reads across "
                f"agents. Omit agent_id to read your own (you are {self.agent_id!r})."
            )
