"""Log-bucketed histograms that live inside rollup items as plain counters.

A value v >= 1 falls in bucket ``ceil(log_g(v))`` with g = :data:`GAMMA`; values below 1 share
bucket 0. Percentiles are answered with the bucket's relative midpoint ``2 g^i / (g + 1)``, so a
reported percentile is within :data:`RELATIVE_ERROR` (about 2.4 %) of a value that truly lies at
that rank (the DDSketch guarantee). Counters add, so histograms of any number of hours or agents
merge exactly by summing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

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


def attribute_index(prefix: str, buckets: int = 1024) -> dict[str, int]:
    """Attribute name -> bucket index for one histogram, built once: parsing ``lat_17`` per
    attribute per item would be the hottest loop of a report. Bucket indices stay far below 1024
    (a 14-day lag is bucket ~430)."""
    return {attribute(prefix, i): i for i in range(buckets)}


def add_into(into: dict[int, int], other: Mapping[int, int]) -> None:
    """Add the counts of ``other`` to ``into`` (histograms merge exactly by summing)."""
    for index, count in other.items():
        into[index] = into.get(index, 0) + count


def quantiles(counts: Mapping[int, int], qs: Sequence[float]) -> list[float | None]:
    """The ``qs``-quantiles (ascending, each 0 < q <= 1) by nearest rank, in one pass over the
    buckets; None for an empty histogram."""
    n = sum(counts.values())
    if n == 0 or not qs:
        return [None] * len(qs)
    ranks = [max(1, math.ceil(q * n)) for q in qs]
    out: list[float | None] = []
    j, target, seen = 0, ranks[0], 0
    for index in sorted(counts):
        seen += counts[index]
        while seen >= target:
            out.append(representative(index))
            j += 1
            if j == len(ranks):
                return out
            target = ranks[j]
    return out + [representative(max(counts))] * (len(ranks) - len(out))


def percentile(counts: Mapping[int, int], q: float) -> float | None:
    """The q-quantile (0 < q <= 1) by nearest rank; None for an empty histogram."""
    return quantiles(counts, (q,))[0]
