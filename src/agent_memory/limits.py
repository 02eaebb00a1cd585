"""Domain limits: how far a memory reaches, defined once and imported by the models, the services,
the tools and the configuration. (DynamoDB's item rules are a storage concern, not these.)"""

from __future__ import annotations

MAX_TARGETS = 30
"""Targets per signal (and agents a pattern is shared with by name): publish writes the signal, one
inbox entry and two rollup counters per target in one transaction, and a DynamoDB transaction holds
at most 100 operations."""

MAX_SIGNAL_TTL_HOURS = 24 * 14
"""Longest lifetime of a signal: 14 days (336 hours)."""

MAX_WINDOW_DAYS = 366
"""Longest analytics or learning window: a year, leap day included."""

MAX_SHARED_PATTERNS = 200
"""Active shared patterns one author may have at a time: what one agent can put in front of
every reader is bounded (a sharing flood cannot bury what others share)."""
