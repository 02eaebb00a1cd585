"""Per-agent storage quotas: what one agent may hold in the shared store (issue #12).

An agent with a valid token, hostile or confused, must not fill the store that the whole team
shares: the rate limit bounds how fast it writes, these bound how much it keeps. Each quota is a
setting (``AGENT_MEMORY_QUOTA_*``; 0 turns it off):

| quota        | counts                                                   | default |
|--------------|----------------------------------------------------------|---------|
| decisions    | the agent's unexpired decisions                          | 1,000,000 |
| notes        | its live short-term notes (overwriting a key adds none)  | 10,000 |
| signals      | unexpired signals it published                           | 100,000 |
| patterns     | patterns it created (new versions add none)              | 10,000 |
| checkpoints  | state checkpoints it keeps                               | 10,000 |
| bytes        | DynamoDB item sizes of all of the above (each pattern    | 1 GiB |
|              | version, each signal's inbox copies included) and of     |         |
|              | the rate-limit budget items it creates (consume_budget)  |         |

The counting and the check happen in the storage write itself
(:mod:`agent_memory.storage.records.quotas`): exact, and never exceeded under concurrency. This
module is the policy: which limits a write of a family is checked against, and what the refusal
tells the agent to do. The domain services pass :meth:`Quotas.charge` to every store write that
adds records.
"""

from __future__ import annotations

from agent_memory.config import Settings
from agent_memory.storage.records.quotas import Charge, Family, QuotaLimit

_RAISE = "or ask the operator to raise {setting}"


class Quotas:
    def __init__(self, settings: Settings) -> None:
        ttl = settings.decision_ttl_days
        advice: dict[Family, str] = {
            "decisions": f"Decisions expire {ttl} days after they are logged, which frees room; "
            "log only decisions worth learning from, ",
            "notes": "Notes expire (at most 24 h after they are written), which frees room; "
            "reuse note keys (the same key overwrites) rather than new keys, ",
            "signals": "Signals expire after their ttl_hours, which frees room; publish with a "
            "shorter ttl_hours, ",
            "patterns": "Patterns are kept until the operator removes them: store new versions "
            "of your patterns (expected_version) rather than new ones, ",
            "checkpoints": "Checkpoints are kept until the operator removes them: update state "
            "without checkpoint unless the version must be kept, ",
        }
        self._count: dict[Family, QuotaLimit | None] = {}
        for family, text in advice.items():
            setting = f"quota_{family}"
            limit = int(getattr(settings, setting))
            self._count[family] = (
                QuotaLimit(family, limit, family, text + _RAISE.format(setting=_env(setting)) + ".")
                if limit
                else None
            )
        self._bytes = (
            QuotaLimit(
                "bytes",
                settings.quota_bytes,
                "bytes",
                f"Expiring records free room as they expire (decisions after {ttl} days, notes "
                "and signals after their ttl); write smaller payloads, "
                + _RAISE.format(setting=_env("quota_bytes"))
                + ".",
            )
            if settings.quota_bytes
            else None
        )
        self._count["budgets"] = None  # budget items (one per key and window) count in bytes only
        self.enabled = self._bytes is not None or any(self._count.values())
        """Whether anything is counted: with every quota off, writes carry no counter."""

    def charge(self, agent_id: str, family: Family) -> Charge | None:
        """What a write by ``agent_id`` of a ``family`` record is checked against (None: nothing
        is counted, every quota is off)."""
        if not self.enabled:
            return None
        return Charge(agent_id, family, self._count[family], self._bytes)


def _env(setting: str) -> str:
    return f"AGENT_MEMORY_{setting.upper()}"
