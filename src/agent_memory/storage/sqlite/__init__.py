"""The embedded SQLite backend (the default): one file, shared safely by several processes."""

from agent_memory.storage.sqlite.engine import SqliteEngine
from agent_memory.storage.sqlite.schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "SqliteEngine"]
