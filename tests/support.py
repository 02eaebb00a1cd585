"""Test helpers shared by several suites."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent_memory.config import Settings
from agent_memory.memory.service import Memory
from agent_memory.storage.engine import ItemEngine
from agent_memory.storage.store import MemoryStore

# A Monday years ahead: DynamoDB Local, like the service, deletes items whose ``ttl`` has passed
# on the real clock, so records the tests write at fake times must not be expired in real time.
T0 = datetime(2037, 11, 2, 9, 0, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    """A clock the test moves by hand: expiry, windows and ordering become deterministic."""

    now: datetime = T0
    step: timedelta = timedelta(milliseconds=1)

    def __call__(self) -> datetime:
        # Every reading advances a little so that records written in a row keep their order.
        self.now += self.step
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def settings_for(tmp_path: Path | None = None, **overrides: object) -> Settings:
    base: dict[str, object] = {"sqlite_path": (tmp_path or Path(".")) / "unused.db"}
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


def memory_on(engine: ItemEngine, clock: FakeClock | None = None, **overrides: object) -> Memory:
    clock = clock or FakeClock()
    return Memory(MemoryStore(engine, clock), settings_for(None, **overrides), clock)
