"""Key builders, one section per table: the only place item keys are spelled.

The design follows the plan's key patterns (see docs/DYNAMODB.md for every access pattern):

agent_decisions
  decision   pk agent:{agent}#decision#{TYPE}   sk {iso}#{decision_id}
             gsi1 agent:{agent}#success#{true|false} / {iso}#{id}   (set when the outcome is known)
             gsi2 decision_type#{TYPE}                / {iso}#{agent}#{id}
             gsi3 agent:{agent}#decisions             / {iso}#{id}
  id item    pk agent:{agent}#decision_id#{decision_id}   sk #id   (lookup by id; idempotency)
agent_memory_ltm
  pattern    pk agent:{agent}#pattern            sk {pattern_id}
             gsi1 agent:{agent}#pattern / {confidence}#{pattern_id}        (active only)
             gsi2 shared_pattern#{domain} / {confidence}#{agent}#{id}     (active and shared)
             gsi3 shared_pattern           / {confidence}#{agent}#{id}     (active and shared)
  history    pk agent:{agent}#pattern_history    sk {pattern_id}#v{version:08d}
  by id      pk pattern#{pattern_id}             sk {agent}   (one per author using the id)
  learner    pk agent:{agent}#learner            sk {decision_type or *}
  shared to  pk shared_to#{reader or *}          sk {agent}#{pattern_id}  (one per reader)
             gsi1 shared_to#{reader or *} / {rank}#{agent}#{pattern_id}     (recall, by rank)
  shared cnt pk shared_by#{agent}                sk #count
  reports    pk reports#{agent}#{pattern_id}     sk #count   (application counters readers see)
  migration  pk migration                        sk {name}                    (done markers)
agent_state
  state      pk agent:{agent}                    sk CURRENT
  checkpoint pk agent:{agent}                    sk CHECKPOINT#{version:012d}
  note       pk agent:{agent}#note               sk {key}
  registry   pk registry                         sk agent#{agent}
  rollup     pk rollup#{agent}#{hour|day}        sk {bucket}#{TYPE}
  sig rollup pk sigrollup#{agent}#{hour|day}     sk {bucket}
  tool usage pk usage#{day}                      sk {tool}
  budget     pk agent:{agent}#budget             sk {key}#{window start, epoch s, 12 digits}
  quota      pk agent:{agent}#quota              sk #usage   (storage counters: memory/quotas.py)
agent_signals
  signal     pk agent:{source}#signal#{signal_id}        sk #signal
             (gsi1 signal#{TYPE} / {iso}#{signal_id} on signals written before issue #14: unread)
  signal ref pk agent:{target}#signal_ref#{signal_id}    sk {source}   (a target but the source
                                                                        finds it by id)
  inbox      pk inbox#{agent}                    sk {status}#{iso}#{source}#{signal_id}

Ids are per author (issue #12): a decision, pattern or signal id names a record within its
author's space only, so the same id from two agents is two records and no write or read tells an
agent whether another agent uses an id. Stores of the earlier layout (global id items) are
rewritten by :mod:`agent_memory.storage.records.layout`.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Literal

import orjson


def iso(ts: datetime) -> str:
    """Fixed-width UTC timestamp: sorts byte-wise in time order on every backend.

    A time in UTC with a fraction of a second (the clock's, almost always) is written by orjson,
    which writes it so (``2026-12-02T07:54:30.481339Z``) several times faster than ``isoformat``
    and is warm in every call (it encodes and decodes the items): a time read from the clock (a
    read's window, the current hour's bucket) was a miss of :func:`_iso`'s cache and cold code,
    several microseconds a call (issue #14). Any other time is formatted by :func:`_iso`."""
    if ts.tzinfo is UTC and ts.microsecond and ts.year >= 1000:
        return orjson.dumps(ts, option=orjson.OPT_UTC_Z)[1:-1].decode()
    return _iso(ts)


@functools.lru_cache(maxsize=256)
def _iso(ts: datetime) -> str:
    """:func:`iso`'s formatting. Cached: one write formats the same few times over and over (a
    decision's time is in its sort key, two index keys, its id item and its rollup buckets), and
    formatting costs microseconds."""
    utc = ts.astimezone(UTC)
    if utc.year < 1000:  # strftime does not pad such years (isoformat would): keys stay as they were
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.isoformat(timespec="microseconds")[:26] + "Z"


def epoch(ts: datetime) -> int:
    return int(ts.timestamp())


def score(value: float) -> str:
    """A confidence in [0, 1] as a fixed-width sort key."""
    return f"{value:.6f}"


# --- agent_decisions ------------------------------------------------------------------------------


def decision_pk(agent: str, decision_type: str) -> str:
    return f"agent:{agent}#decision#{decision_type}"


def decision_sk(created: datetime, decision_id: str) -> str:
    return f"{iso(created)}#{decision_id}"


def decision_success_pk(agent: str, success: bool) -> str:
    return f"agent:{agent}#success#{'true' if success else 'false'}"


def decision_type_pk(decision_type: str) -> str:
    return f"decision_type#{decision_type}"


def decision_type_sk(created: datetime, agent: str, decision_id: str) -> str:
    return f"{iso(created)}#{agent}#{decision_id}"


def decision_timeline_pk(agent: str) -> str:
    return f"agent:{agent}#decisions"


def decision_id_pk(agent: str, decision_id: str) -> str:
    """The id item of one of ``agent``'s decisions (in the author's own partitions)."""
    return f"agent:{agent}#decision_id#{decision_id}"


ID_SK = "#id"


# --- agent_memory_ltm -----------------------------------------------------------------------------


def pattern_pk(agent: str) -> str:
    return f"agent:{agent}#pattern"


def pattern_rank_sk(confidence: float, pattern_id: str) -> str:
    return f"{score(confidence)}#{pattern_id}"


def shared_domain_pk(domain: str) -> str:
    return f"shared_pattern#{domain}"


SHARED_ALL_PK = "shared_pattern"


def shared_rank_sk(confidence: float, agent: str, pattern_id: str) -> str:
    return f"{score(confidence)}#{agent}#{pattern_id}"


def pattern_history_pk(agent: str) -> str:
    return f"agent:{agent}#pattern_history"


def pattern_history_sk(pattern_id: str, version: int) -> str:
    return f"{pattern_id}#v{version:08d}"


def pattern_id_pk(pattern_id: str) -> str:
    """Who uses a pattern id: one item per author (sk :func:`pattern_author_sk`). Never answered
    as such: a reader resolves an id to the patterns among them that are visible to it."""
    return f"pattern#{pattern_id}"


def pattern_author_sk(agent: str) -> str:
    return agent


def shared_reader_pk(reader: str) -> str:
    """Index of the patterns shared with one reader (``*``: with everyone)."""
    return f"shared_to#{reader}"


def shared_reader_sk(author: str, pattern_id: str) -> str:
    """An index entry by the pattern it carries: a reader citing a pattern gets its entry by key."""
    return f"{author}#{pattern_id}"


def shared_reader_rank_sk(rank: float, author: str, pattern_id: str) -> str:
    """An index entry's rank key (gsi1sk: recall reads the best first). Stores written before
    citing went through the index (issue #15) used it as the entry's own sort key."""
    return f"{score(rank)}#{author}#{pattern_id}"


def shared_count_pk(author: str) -> str:
    """How many patterns an author shares (capped: see limits.MAX_SHARED_PATTERNS)."""
    return f"shared_by#{author}"


def pattern_reports_pk(author: str, pattern_id: str) -> str:
    """Application counters of one pattern, in a partition of no single agent: the agents a pattern
    is shared with report on it and read them without reaching the author's partitions."""
    return f"reports#{author}#{pattern_id}"


COUNT_SK = "#count"
MIGRATIONS_PK = "migration"


def learner_pk(agent: str) -> str:
    return f"agent:{agent}#learner"


# --- agent_state ----------------------------------------------------------------------------------


def state_pk(agent: str) -> str:
    return f"agent:{agent}"


STATE_SK = "CURRENT"


def checkpoint_sk(version: int) -> str:
    return f"CHECKPOINT#{version:012d}"


CHECKPOINT_PREFIX = "CHECKPOINT#"


def note_pk(agent: str) -> str:
    return f"agent:{agent}#note"


REGISTRY_PK = "registry"


def registry_sk(agent: str) -> str:
    return f"agent#{agent}"


Grain = Literal["hour", "day"]


def bucket(ts: datetime, grain: Grain) -> str:
    text = iso(ts)  # (cached: a write's rollups take the buckets of the time its keys hold)
    day_end = text.index("T")
    return text[: day_end + 3] if grain == "hour" else text[:day_end]


def rollup_pk(agent: str, grain: Grain) -> str:
    return f"rollup#{agent}#{grain}"


def rollup_sk(bucket_key: str, decision_type: str) -> str:
    return f"{bucket_key}#{decision_type}"


def signal_rollup_pk(agent: str, grain: Grain) -> str:
    return f"sigrollup#{agent}#{grain}"


def usage_pk(day: str) -> str:
    return f"usage#{day}"


def quota_pk(agent: str) -> str:
    return f"agent:{agent}#quota"


QUOTA_SK = "#usage"


def budget_pk(agent: str) -> str:
    return f"agent:{agent}#budget"


def budget_sk(key: str, window_start: int) -> str:
    return f"{key}#{window_start:012d}"


# --- agent_signals --------------------------------------------------------------------------------


def signal_pk(source: str, signal_id: str) -> str:
    return f"agent:{source}#signal#{signal_id}"


SIGNAL_SK = "#signal"


def signal_type_pk(signal_type: str) -> str:
    return f"signal#{signal_type}"


def signal_type_sk(created: datetime, signal_id: str) -> str:
    return f"{iso(created)}#{signal_id}"


def inbox_pk(agent: str) -> str:
    return f"inbox#{agent}"


def signal_ref_pk(target: str, signal_id: str) -> str:
    """A target's reference to a signal addressed to it (sk :func:`signal_ref_sk`, the source):
    how it finds the signal by the id its inbox shows."""
    return f"agent:{target}#signal_ref#{signal_id}"


def signal_ref_sk(source: str) -> str:
    return source


def inbox_sk(status: str, created: datetime, source: str, signal_id: str) -> str:
    return f"{status}#{iso(created)}#{source}#{signal_id}"


def inbox_sk_as(sk: str, status: str) -> str:
    """The sort key of the same inbox entry under ``status`` (an ack moves it)."""
    return f"{status}#{sk.split('#', 1)[1]}"


def delivery_attr(agent: str) -> str:
    """Top-level attribute of a signal item holding one target's delivery status."""
    return f"ps/{agent}"
