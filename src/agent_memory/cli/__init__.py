"""The ``agent-memory`` command: every entry point a user types lives in this package.

The domain (``memory``, ``storage``, ``server``) keeps the functions; this package keeps the
argument parsing, the printing and the progress bars, and turns a user's mistake into one or two
lines that say what to do (never a traceback). Logs go to stderr: over stdio the protocol owns
stdout.
"""

from agent_memory.cli.main import main

__all__ = ["main"]
