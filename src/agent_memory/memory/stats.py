"""Small, exact statistics for the memory's learner (pure functions, standard library only).

Everything the learner says about a pattern ("success 78%, n=23") goes through this module, and
every number is chosen so that an agent reading it is not misled by small samples:

* :func:`wilson_interval` - the range of success rates compatible with what was observed. The
  learner ranks patterns by its *lower* bound: 3 successes out of 3 is a 100% raw ratio but only
  "at least 44%" at 95% confidence, while 78 out of 100 is "at least 69%". A raw ratio would put
  the lucky three-sample pattern first; the lower bound rewards patterns that are both good and
  well attested.
* :func:`newcombe_difference_interval` - how much better (or worse) one group is than another,
  with an interval that stays inside [-1, 1] and behaves at 0% and 100%.
* :func:`fisher_one_sided_p` - the probability of seeing a gap at least this large between a
  pattern's decisions and the others if the pattern made no difference (exact, no large-sample
  approximation, so it is valid for the first few dozen decisions too).
* :func:`benjamini_hochberg` / :func:`bh_adjusted` - the learner tests hundreds of candidate
  patterns at once; by chance alone some look good. Benjamini-Hochberg keeps the expected share of
  false patterns among those reported at the chosen level (e.g. 5%).
* :func:`normal_quantile` / :func:`normal_sf` - the standard normal distribution, used for the
  interval widths.

Only :mod:`math` is used: the runtime stays light (no numpy/scipy).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = [
    "benjamini_hochberg",
    "bh_adjusted",
    "fisher_one_sided_p",
    "hypergeometric_upper_tail",
    "newcombe_difference_interval",
    "normal_quantile",
    "normal_sf",
    "wilson_interval",
]

_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)

# Acklam's rational approximation of the inverse normal CDF (relative error < 1.15e-9), refined
# below with Halley steps on erfc to full double precision.
_A = (
    -3.969683028665376e01,
    2.209460984245205e02,
    -2.759285104469687e02,
    1.383577518672690e02,
    -3.066479806614716e01,
    2.506628277459239e00,
)
_B = (
    -5.447609879822406e01,
    1.615858368580409e02,
    -1.556989798598866e02,
    6.680131188771972e01,
    -1.328068155288572e01,
)
_C = (
    -7.784894002430293e-03,
    -3.223964580411365e-01,
    -2.400758277161838e00,
    -2.549732539343734e00,
    4.374664141464968e00,
    2.938163982698783e00,
)
_D = (
    7.784695709041462e-03,
    3.224671290700398e-01,
    2.445134137142996e00,
    3.754408661907416e00,
)
_P_LOW = 0.02425


def normal_sf(z: float) -> float:
    """Survival function of the standard normal: P(Z > z).

    Computed with ``erfc`` so that far tails keep their relative precision
    (``normal_sf(10)`` is 7.6e-24, not 0).
    """
    return 0.5 * math.erfc(z / _SQRT2)


def _acklam_lower(p: float) -> float:
    """Acklam's approximation for 0 < p <= 0.5 (the lower half)."""
    if p < _P_LOW:
        q = math.sqrt(-2.0 * math.log(p))
        num = ((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5]
        den = (((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0
        return num / den
    q = p - 0.5
    r = q * q
    num = (((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q
    den = ((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0
    return num / den


def normal_quantile(p: float) -> float:
    """Inverse of the standard normal CDF: the z with P(Z <= z) = p.

    ``normal_quantile(0.975)`` is 1.959964 - the half-width multiplier of a 95% interval.
    Acklam's rational approximation followed by two Halley refinement steps on ``erfc``; the
    result is accurate to about 1e-14 relative or better (far beyond the 1e-9 the callers need).
    ``p`` = 0 and 1 give -inf and +inf; values outside [0, 1] raise ``ValueError``.
    """
    if math.isnan(p) or not 0.0 <= p <= 1.0:
        raise ValueError(f"normal_quantile: p must be in [0, 1], got {p!r}")
    if p == 0.0:
        return -math.inf
    if p == 1.0:
        return math.inf
    if p > 0.5:
        # 1 - p is exact for p in [0.5, 1] (Sterbenz), and the lower tail refines without
        # cancellation.
        return -normal_quantile(1.0 - p)
    x = _acklam_lower(p)
    for _ in range(2):
        # Halley's method on f(x) = Phi(x) - p; Phi(x) = erfc(-x/sqrt2)/2 is accurate for x <= 0.
        err = 0.5 * math.erfc(-x / _SQRT2) - p
        u = err * _SQRT2PI * math.exp(0.5 * x * x)
        x = x - u / (1.0 + 0.5 * x * u)
    return x


def _z_for(confidence: float) -> float:
    if math.isnan(confidence) or not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    return normal_quantile(1.0 - (1.0 - confidence) / 2.0)


def _check_counts(successes: int, n: int, where: str) -> None:
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"{where}: need 0 <= successes <= n, got successes={successes}, n={n}")


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a success rate: ``(lower, upper)``.

    The true success rate of a pattern is, with the given (two-sided) confidence, between the two
    bounds. Unlike the textbook "p +/- 1.96 sd" interval it never leaves [0, 1], is not empty at 0%
    or 100%, and covers the true rate close to the nominal level even for a few dozen decisions.

    The *lower* bound is what the learner ranks patterns by (its ``confidence``): with 95%
    confidence it is a one-sided 97.5% "the pattern succeeds at least this often" - a pattern
    only ranks high once it is both good and observed often enough.

    ``n == 0`` gives ``(0.0, 1.0)``: nothing is known yet. Example: 81 successes in 263 decisions
    gives (0.2553, 0.3662).
    """
    _check_counts(successes, n, "wilson_interval")
    z = _z_for(confidence)
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denom
    half = (z / denom) * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n))
    lower = 0.0 if successes == 0 else max(0.0, centre - half)
    upper = 1.0 if successes == n else min(1.0, centre + half)
    return lower, upper


def newcombe_difference_interval(
    s1: int, n1: int, s2: int, n2: int, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Difference of two success rates ``p1 - p2`` with Newcombe's hybrid score interval.

    Returns ``(difference, lower, upper)``: e.g. "decisions under this pattern succeed 20 points
    more often than the others, between 5 and 33 points with 95% confidence". This is method 10 of
    Newcombe (1998), built from the two Wilson intervals; it stays inside [-1, 1] and is reliable
    for small groups and rates near 0% or 100%, where the Wald interval fails. Example from the
    paper: 56/70 vs 48/80 gives 0.2 with interval (0.0524, 0.3339).

    Empty groups never raise and never return NaN/None: an empty group's rate is entirely unknown
    (anywhere in [0, 1]), so the reported difference is ``0.0`` ("no evidence of a difference")
    and the interval is every difference compatible with the other group's Wilson interval
    ``(l, u)``: ``(0 - u, 1 - l)`` if group 1 is empty, ``(l - 1, u - 0)`` if group 2 is empty,
    ``(-1.0, 1.0)`` if both are. 0 always lies inside.
    """
    _check_counts(s1, n1, "newcombe_difference_interval (group 1)")
    _check_counts(s2, n2, "newcombe_difference_interval (group 2)")
    l1, u1 = wilson_interval(s1, n1, confidence)
    l2, u2 = wilson_interval(s2, n2, confidence)
    if n1 == 0 or n2 == 0:
        # An empty group's Wilson interval is (0, 1): the difference can be anything between
        # "group 1 at its lowest minus group 2 at its highest" and the reverse.
        return 0.0, l1 - u2, u1 - l2
    p1 = s1 / n1
    p2 = s2 / n2
    diff = p1 - p2
    lower = diff - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = diff + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return diff, max(-1.0, lower), min(1.0, upper)


# --------------------------------------------------------------------------------------------------
# Fisher's exact test
# --------------------------------------------------------------------------------------------------

# Stop summing a tail once the next term cannot change the sum in double precision.
_NEGLIGIBLE = 1e-17


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _log_pmf(x: int, row1: int, col1: int, total: int) -> float:
    """log P(X = x), X hypergeometric: successes in row 1 given both margins."""
    return _log_choose(col1, x) + _log_choose(total - col1, row1 - x) - _log_choose(total, row1)


def hypergeometric_upper_tail(
    x: int, row1: int, col1: int, total: int, stop_at: float | None = None
) -> float:
    """P(X >= x) for X ~ Hypergeometric(total, col1 successes, row1 draws).

    Sums only the tail that is needed, starting from the nearest end and stopping once terms no
    longer change the sum, so a 100k-decision table costs at most a few hundred steps.

    ``stop_at`` is a shortcut for callers that only care whether the tail is below a threshold
    (the miner, which only reports p-values below its FDR level): as soon as the sum is known to
    exceed ``stop_at`` a lower bound on the tail (itself above ``stop_at``) is returned instead of
    the exact value. Values at or below ``stop_at`` are always exact.
    """
    lo = max(0, row1 + col1 - total)
    hi = min(row1, col1)
    if x <= lo:
        return 1.0
    if x > hi:
        return 0.0
    # Terms increase up to the mode and decrease after it.
    mode = (row1 + 1) * (col1 + 1) // (total + 2)
    other = total - col1 - row1  # d - a in table terms: (total-col1) - (row1 - x) = other + x

    if x > mode:
        # Decreasing terms: sum upward from x relative to P(X = x).
        log_first = _log_pmf(x, row1, col1, total)
        first = math.exp(log_first)
        acc = 1.0
        term = 1.0
        k = x
        while k < hi:
            term *= (col1 - k) * (row1 - k) / ((k + 1) * (other + k + 1))
            acc += term
            k += 1
            if term < acc * _NEGLIGIBLE:
                break
            if stop_at is not None and first * acc > stop_at:
                return first * acc
        if first == 0.0:
            # Underflow of P(X = x) alone: the log keeps the tail exact down to ~1e-308.
            return math.exp(log_first + math.log(acc))
        return min(1.0, first * acc)

    if stop_at is not None:
        # P(X >= x) >= P(X >= mode); the mode carries most of the mass, so a few terms usually
        # prove the tail exceeds stop_at.
        term = math.exp(_log_pmf(mode, row1, col1, total))
        acc = term
        k = mode
        while acc <= stop_at and k < hi:
            term *= (col1 - k) * (row1 - k) / ((k + 1) * (other + k + 1))
            acc += term
            k += 1
            if term < acc * _NEGLIGIBLE:
                break
        if acc > stop_at:
            return min(1.0, acc)
        # Rare (mode at the edge of the support): fall through to the exact value.

    # x <= mode: the upper tail holds the mode, so 1 - P(X <= x - 1) loses no precision. The lower
    # terms decrease going down from x - 1.
    y = x - 1
    first = math.exp(_log_pmf(y, row1, col1, total))
    acc = 1.0
    term = 1.0
    k = y
    while k > lo:
        # P(k - 1) / P(k)
        term *= k * (other + k) / ((col1 - k + 1) * (row1 - k + 1))
        acc += term
        k -= 1
        if term < acc * _NEGLIGIBLE:
            break
    return min(1.0, max(0.0, 1.0 - first * acc))


def fisher_one_sided_p(a: int, b: int, c: int, d: int) -> float:
    """One-sided Fisher exact test that group 1 succeeds MORE often than group 2.

    Table::

                  success  failure
        group 1      a        b
        group 2      c        d

    Returns P(at least ``a`` successes in group 1 | both margins), i.e. the chance of a gap at
    least this favourable to group 1 if group membership made no difference. For the learner:
    group 1 = decisions matching a candidate pattern, group 2 = all other decisions. A small value
    (e.g. 0.001) means the pattern's better record is very unlikely to be luck. Exact
    (hypergeometric sums from log-gamma, ~1e-10 relative rounding at 100k decisions, far tails
    below ~1e-308 round to 0.0); only the needed tail is summed, so it stays fast for ~100k
    decisions. Example (the lady tasting tea): ``fisher_one_sided_p(3, 1, 1, 3)`` = 17/70 = 0.2429.
    """
    if min(a, b, c, d) < 0:
        raise ValueError(f"fisher_one_sided_p: counts must be >= 0, got {(a, b, c, d)}")
    return hypergeometric_upper_tail(a, a + b, a + c, a + b + c + d)


# --------------------------------------------------------------------------------------------------
# Multiple testing
# --------------------------------------------------------------------------------------------------


def _check_pvalues(p_values: Sequence[float]) -> None:
    for p in p_values:
        if math.isnan(p) or not 0.0 <= p <= 1.0:
            raise ValueError(f"p-values must be in [0, 1], got {p!r}")


def bh_adjusted(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values ("q-values"), in the input order.

    A pattern's q-value is the smallest false discovery rate at which it would still be reported:
    reporting every pattern with q <= 0.05 means that, on average, at most 5% of the reported
    patterns are flukes. ``q_(i) = min over j >= i of min(1, m * p_(j) / j)`` over the sorted
    p-values (same as R's ``p.adjust(method="BH")``).
    """
    _check_pvalues(p_values)
    m = len(p_values)
    order = sorted(range(m), key=lambda i: (p_values[i], i))
    adjusted = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        adjusted[i] = running
    return adjusted


def benjamini_hochberg(p_values: Sequence[float], q: float) -> list[bool]:
    """Benjamini-Hochberg step-up procedure: which tests are discoveries at FDR level ``q``.

    Sort the m p-values, find the largest rank k with ``p_(k) <= k * q / m`` and report the k
    smallest. Among reported patterns the expected share of false ones is at most ``q`` (for
    independent or positively dependent tests); when no pattern is real, the chance of reporting
    anything at all is about ``q``.
    """
    if math.isnan(q) or not 0.0 < q < 1.0:
        raise ValueError(f"benjamini_hochberg: q must be strictly between 0 and 1, got {q!r}")
    _check_pvalues(p_values)
    m = len(p_values)
    order = sorted(range(m), key=lambda i: (p_values[i], i))
    cutoff = 0
    for rank, i in enumerate(order, start=1):
        if p_values[i] <= rank * q / m:
            cutoff = rank
    out = [False] * m
    for i in order[:cutoff]:
        out[i] = True
    return out
