"""Log-bucketed histograms that live inside rollup items as plain counters.

A value v >= 1 falls in bucket ``ceil(log_g(v))`` with g = :data:`GAMMA`; values below 1 share
bucket 0. Percentiles are answered with the bucket's relative midpoint ``2 g^i / (g + 1)``, so a
reported percentile is within :data:`RELATIVE_ERROR` (about 2.4 %) of a value that truly lies at
that rank (the DDSketch guarantee). Counters add, so histograms of any number of hours or agents
merge exactly by summing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

GAMMA = 1.05
RELATIVE_ERROR = (GAMMA - 1) / (GAMMA + 1)
_LOG_GAMMA = math.log(GAMMA)


def bucket_of(value: float) -> int:
    if value <= 1.0:
        return 0
    return max(1, math.ceil(math.log(value) / _LOG_GAMMA - 1e-12))


def representative(index: int) -> float:
    """The value reported for a bucket; for bucket 0 (values <= 1), 1.0."""
    if index == 0:
        return 1.0
    return 2 * GAMMA**index / (GAMMA + 1)


def attribute(prefix: str, index: int) -> str:
    return f"{prefix}{index}"


def counts_from(item: Mapping[str, object], prefix: str) -> dict[int, int]:
    """Read the bucket counters stored as ``{prefix}{index}`` attributes of a rollup item."""
    out: dict[int, int] = {}
    for name, value in item.items():
        if name.startswith(prefix) and name[len(prefix) :].isdigit() and isinstance(value, int | float):
            out[int(name[len(prefix) :])] = int(value)
    return out


def merge(histograms: Iterable[Mapping[int, int]]) -> dict[int, int]:
    total: dict[int, int] = {}
    for hist in histograms:
        for index, count in hist.items():
            total[index] = total.get(index, 0) + count
    return total


def percentile(counts: Mapping[int, int], q: float) -> float | None:
    """The q-quantile (0 < q <= 1) by nearest rank; None for an empty histogram."""
    n = sum(counts.values())
    if n == 0:
        return None
    rank = max(1, math.ceil(q * n))
    seen = 0
    for index in sorted(counts):
        seen += counts[index]
        if seen >= rank:
            return representative(index)
    return representative(max(counts))
