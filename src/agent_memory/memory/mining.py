"""Pattern mining: conditions on decision contexts that predict success.

Given decisions with their context and outcome, :func:`mine_rules` finds rules such as
``whale_count >= 5 and market.trend = "bullish" -> success 78% (at least 71%), n=230`` and reports
only those that survive a multiple-testing correction, so an agent is not handed patterns that are
merely lucky streaks. Pure computation: no I/O, no clock, no randomness; the result does not even
depend on the order of the observations.

How it works
------------
1. **Features.** Each context is flattened to dotted paths (``{"market": {"trend": "x"}}`` gives
   ``market.trend``), exactly the paths :func:`agent_memory.models.lookup` follows. Lists and nulls
   are ignored, as are keys a :class:`~agent_memory.models.PatternCondition` cannot address (empty,
   containing ``.``, ``#`` or whitespace), non-finite numbers and values a pattern cannot store
   (e.g. ``1e-200``). Counts follow :meth:`PatternCondition.holds` exactly (for instance numbers
   0/1 at a boolean path count as false/true, since ``1 == True``).

   * strings and booleans give ``eq`` conditions, one per value seen at least ``min_samples``
     times;
   * numbers (not booleans) give thresholds at the empirical quantiles ``i / (k + 1)``,
     ``i = 1..k`` with ``k = numeric_thresholds`` (3 = quartiles), deduplicated, each giving a
     ``gte`` and a ``lt`` condition. Thresholds are observed values, so integer fields get integer
     thresholds (``whale_count >= 5``).

2. **Candidates.** Every single condition holding for at least ``min_samples`` decisions (and not
   for all of them), and every pair of such conditions on *different* fields whose conjunction
   holds for at least ``min_samples`` decisions. A candidate covering exactly the same decisions as
   an earlier one (a single, or a pair seen before) is not tested again: the simpler one is kept.

3. **Test.** Each candidate's decisions are compared with all the others by a one-sided Fisher
   exact test ("do decisions matching the rule succeed more often?"), and Benjamini-Hochberg at
   level ``fdr`` is applied over *all* the candidates tested, singles and pairs together. Only the
   discoveries are kept.

4. **Redundancy.** A pair ``A and B`` is kept only if it beats *each* of its parts: within the
   decisions matching ``A``, those also matching ``B`` must succeed significantly more often than
   those that do not (one-sided Fisher, ``A and B`` vs ``A and not B``), and symmetrically for
   ``B``. These refinement tests are Bonferroni-corrected over all of them (two per discovered
   pair, level ``fdr``): the chance of keeping any pair whose second condition adds nothing is
   about ``fdr`` at most. So when only ``A`` matters, "A and <anything>" is not reported alongside ``A``.

5. **Ranking.** By ``confidence`` (the Wilson lower bound of the success rate: good *and* well
   attested first), then lift, then fewer conditions, then the description; at most ``max_rules``.

Cost caps (so the cost stays bounded whatever the contexts hold)
---------------------------------------------------------------
* :data:`MAX_PATHS` paths (the most frequently present ones) are considered;
* :data:`MAX_LEVELS` values per categorical path (the most frequent ones);
* ``numeric_thresholds`` at most :data:`MAX_NUMERIC_THRESHOLDS` per numeric path;
* pairs are formed among at most :data:`MAX_PAIR_POOL` single conditions, chosen by support (the
  number of decisions they hold for) - a choice blind to outcomes, so the tests stay valid;
* contexts are read at most :data:`MAX_DEPTH` levels deep.

Each condition is a bitset over decisions (a Python ``int``: bit ``i`` = decision ``i``), so the
support of a pair is one ``&`` and one ``bit_count()``; 100k decisions take a few seconds.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from agent_memory.memory.stats import (
    benjamini_hochberg,
    bh_adjusted,
    hypergeometric_upper_tail,
    wilson_interval,
)
from agent_memory.models import ConditionOp, PatternCondition

__all__ = [
    "MAX_DEPTH",
    "MAX_LEVELS",
    "MAX_NUMERIC_THRESHOLDS",
    "MAX_PAIR_POOL",
    "MAX_PATHS",
    "MinedRule",
    "Observation",
    "mine_rules",
]

MAX_PATHS = 100
"""Context paths considered (the most frequently present ones, ties by name)."""
MAX_LEVELS = 16
"""Values per categorical path turned into ``eq`` conditions (the most frequent ones)."""
MAX_NUMERIC_THRESHOLDS = 20
"""Largest accepted ``numeric_thresholds``."""
MAX_PAIR_POOL = 200
"""Single conditions combined into pairs (the ones with the largest support): at most 19,900 pairs."""
MAX_DEPTH = 16
"""Nesting levels of a context that are read (the models refuse deeper payloads anyway)."""
MAX_PATH_LENGTH = 200
"""Longest dotted path a :class:`PatternCondition` accepts."""

# A key usable in a dotted path: PatternCondition.field forbids whitespace and '#', and lookup()
# splits on '.', so a key containing '.' could never be looked up again.
_KEY_RE = re.compile(r"^[^\s#.]+$")
_OP_ORDER = {"eq": 0, "gte": 1, "lt": 2}


@dataclass(frozen=True)
class Observation:
    """One decision with a known outcome: its context and whether it succeeded."""

    context: Mapping[str, Any]
    success: bool


@dataclass(frozen=True)
class MinedRule:
    """A conjunction of conditions whose decisions succeed significantly more often than the rest.

    * ``n`` / ``successes`` / ``success_rate``: decisions matching every condition, and how many
      succeeded.
    * ``confidence``: the Wilson lower bound of the success rate at ``confidence_level`` - "this
      rule succeeds at least this often"; what rules are ranked by, because a raw ratio would put a
      lucky 3/3 above a solid 78/100.
    * ``upper``: the Wilson upper bound (``[confidence, upper]`` is the interval).
    * ``baseline_rate``: success rate of all the decisions mined; ``lift`` = success_rate /
      baseline_rate (1.3 = succeeds 30% more often than usual).
    * ``p_value``: one-sided Fisher exact test of the rule's decisions against all the others;
      ``q_value``: its Benjamini-Hochberg adjustment over every candidate tested (the smallest
      false discovery rate at which the rule would still be reported).
    """

    conditions: tuple[PatternCondition, ...]
    n: int
    successes: int
    success_rate: float
    confidence: float
    upper: float
    baseline_rate: float
    lift: float
    p_value: float
    q_value: float

    def description(self) -> str:
        """Human-readable rule: ``market.trend = "bullish" and whale_count >= 5``."""
        return " and ".join(c.describe() for c in self.conditions)

    def matches(self, context: dict[str, Any]) -> bool:
        """Whether a context satisfies every condition (same semantics as the mined counts)."""
        return all(c.holds(context) for c in self.conditions)


# --------------------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------------------


_Slot = tuple[list[int], list[Any], list[int], list[Any], str]
_MISSING: Any = object()


@dataclass
class _Columns:
    """Flattened contexts: per path, the decisions holding a categorical/numeric value there."""

    cat: dict[str, tuple[list[int], list[str | bool]]]
    num: dict[str, tuple[list[int], list[int | float]]]


def _flatten(observations: Sequence[Observation]) -> _Columns:
    cat: dict[str, tuple[list[int], list[str | bool]]] = {}
    num: dict[str, tuple[list[int], list[int | float]]] = {}
    # Per nesting prefix: key -> the four lists of its path (categorical indices/values, numeric
    # indices/values) and its path, or None for a key no dotted path can address. Keys repeat
    # across decisions, so each is checked and concatenated once.
    slots: dict[str, dict[Any, _Slot | None]] = {}
    isfinite = math.isfinite
    key_ok = _KEY_RE.match

    def slot(prefix: str, key: Any) -> _Slot | None:
        path = prefix + key if type(key) is str and key_ok(key) is not None else None
        if path is None:
            return None
        c = cat.setdefault(path, ([], []))
        n = num.setdefault(path, ([], []))
        return (c[0], c[1], n[0], n[1], path)

    def visit(node: Mapping[str, Any], prefix: str, i: int, depth: int) -> None:
        known = slots.get(prefix)
        if known is None:
            known = slots[prefix] = {}
        for key, value in node.items():
            entry = known.get(key, _MISSING)
            if entry is _MISSING:
                entry = known[key] = slot(prefix, key)
            if entry is None:
                continue
            kind = type(value)
            if kind is str or kind is bool:
                entry[0].append(i)
                entry[1].append(value)
            elif kind is int or (kind is float and isfinite(value)):
                entry[2].append(i)
                entry[3].append(value)
            elif isinstance(value, dict) and depth < MAX_DEPTH:
                # Only real dicts: lookup() only descends into dicts.
                visit(value, entry[4] + ".", i, depth + 1)

    for i, obs in enumerate(observations):
        visit(obs.context, "", i, 1)
    return _Columns(
        {path: c for path, c in cat.items() if c[0]},
        {path: n for path, n in num.items() if n[0]},
    )


def _choose_paths(columns: _Columns, min_samples: int) -> list[str]:
    presence: Counter[str] = Counter()
    for path, (idx, _) in columns.cat.items():
        presence[path] += len(idx)
    for path, (idx, _) in columns.num.items():
        presence[path] += len(idx)
    eligible = [
        (-count, path)
        for path, count in presence.items()
        if count >= min_samples and len(path) <= MAX_PATH_LENGTH
    ]
    eligible.sort()
    return sorted(path for _, path in eligible[:MAX_PATHS])


def _quantile_thresholds(values: list[int | float], k: int) -> list[int | float]:
    """Observed values at the quantiles i/(k+1), deduplicated; the minimum is never a threshold
    (``>= min`` holds for every number and ``< min`` for none)."""
    ordered = sorted(values)
    m = len(ordered)
    out: set[int | float] = set()
    for j in range(1, k + 1):
        t = ordered[min(m - 1, (j * m) // (k + 1))]
        if t > ordered[0]:
            out.add(t)
    # Keep ints as ints (JSON-friendly), but 5 and 5.0 are one threshold.
    unique: dict[float, int | float] = {}
    for t in sorted(out, key=lambda v: (v, type(v) is float)):
        unique.setdefault(float(t), t)
    return list(unique.values())


_SHIFT = bytes((code + 1) % 256 for code in range(256))


def _table(selected: Iterable[int]) -> bytes:
    """Translation table: byte codes in ``selected`` become '1', every other byte '0'."""
    chosen = set(selected)
    return bytes(49 if code in chosen else 48 for code in range(256))


@dataclass
class _Single:
    condition: PatternCondition
    bits: int
    support: int


def _singles(
    columns: _Columns, paths: list[str], total: int, min_samples: int, numeric_thresholds: int
) -> list[_Single]:
    """One bitset per candidate condition, in a deterministic order (path, op, value)."""
    out: list[_Single] = []

    def add(path: str, op: ConditionOp, value: Any, codes: bytearray, selected: Iterable[int]) -> None:
        bits = int(codes.translate(_table(selected)), 2)
        support = bits.bit_count()
        if min_samples <= support < total:
            try:
                condition = PatternCondition(field=path, op=op, value=value)
            except ValueError:
                return  # a value a pattern cannot store (e.g. 1e-200, or a string over 64 KiB)
            out.append(_Single(condition, bits, support))

    for path in paths:
        cat = columns.cat.get(path)
        num = columns.num.get(path)
        if cat is not None:
            idx, vals = cat
            counts: Counter[str | bool] = Counter(vals)
            if num is not None and any(type(v) is bool for v in counts):
                # PatternCondition.holds compares with ==, and 1 == True, 0 == False: numbers 0/1
                # at this path match the boolean conditions too.
                for number in num[1]:
                    if number == 1 or number == 0:
                        counts[bool(number)] += 1
            levels = [v for v, c in counts.items() if c >= min_samples]
            levels.sort(key=lambda v: (-counts[v], type(v) is str, str(v)))
            levels = levels[:MAX_LEVELS]
            if levels:
                code_of = {v: code for code, v in enumerate(levels, start=1)}
                if len(idx) == total:  # present in every context: decision i is vals[i]
                    codes = bytearray(map(code_of.get, vals, repeat(0)))
                else:
                    codes = bytearray(total)
                    for i, v in zip(idx, vals, strict=True):
                        code = code_of.get(v)
                        if code is not None:
                            codes[i] = code
                if num is not None and (True in code_of or False in code_of):
                    for i, number in zip(num[0], num[1], strict=True):
                        if number == 1 or number == 0:
                            code = code_of.get(bool(number))
                            if code is not None:
                                codes[i] = code
                codes.reverse()  # bit i (least significant = last character) is decision i
                for v in sorted(levels, key=lambda v: (type(v) is str, str(v))):
                    add(path, "eq", v, codes, (code_of[v],))
        if num is not None and numeric_thresholds > 0 and len(num[0]) >= min_samples:
            idx_n, vals_n = num
            thresholds = _quantile_thresholds(vals_n, numeric_thresholds)
            if thresholds:
                # code = 1 + number of thresholds <= value: 1 .. len(thresholds) + 1 (0 = no number)
                if len(idx_n) == total:
                    codes = bytearray(map(bisect_right, repeat(thresholds), vals_n)).translate(_SHIFT)
                else:
                    codes = bytearray(total)
                    for i, number in zip(idx_n, vals_n, strict=True):
                        codes[i] = 1 + bisect_right(thresholds, number)
                codes.reverse()
                top = len(thresholds) + 1
                for j, t in enumerate(thresholds):
                    add(path, "gte", t, codes, range(j + 2, top + 1))
                    add(path, "lt", t, codes, range(1, j + 2))
    return out


# --------------------------------------------------------------------------------------------------
# Mining
# --------------------------------------------------------------------------------------------------


@dataclass
class _Candidate:
    parts: tuple[int, ...]  # indices into the singles list
    n: int
    successes: int
    p_value: float = 1.0


def _success_bits(observations: Sequence[Observation]) -> int:
    digits = bytes(49 if obs.success else 48 for obs in reversed(observations))
    return int(digits, 2) if digits else 0


def _condition_key(c: PatternCondition) -> tuple[str, int, str]:
    return (c.field, _OP_ORDER.get(c.op, 9), repr(c.value))


def mine_rules(
    observations: Sequence[Observation],
    *,
    min_samples: int = 20,
    fdr: float = 0.05,
    confidence_level: float = 0.95,
    max_conditions: int = 2,
    max_rules: int = 20,
    numeric_thresholds: int = 3,
) -> list[MinedRule]:
    """Find conditions on the decision context under which decisions succeed more often.

    Returns at most ``max_rules`` rules, best first (Wilson lower bound, then lift), each a
    Benjamini-Hochberg discovery at false discovery rate ``fdr`` among every candidate tested;
    pairs are only reported when they beat both of their parts (see the module documentation for
    the full procedure and its caps).

    * ``min_samples``: least number of decisions a condition (and a rule) must hold for.
    * ``fdr``: expected share of flukes among the rules reported (and, when no rule is real, about
      the chance of reporting any).
    * ``confidence_level``: level of the Wilson interval ``[confidence, upper]``.
    * ``max_conditions``: 1 (single conditions) or 2 (also pairs).
    * ``numeric_thresholds``: quantile thresholds per numeric field (3 = quartiles, 0 = numbers
      are not used).

    Deterministic: the same observations, in any order, give the same rules in the same order.
    """
    if min_samples < 1:
        raise ValueError(f"min_samples must be >= 1, got {min_samples}")
    if math.isnan(fdr) or not 0.0 < fdr < 1.0:
        raise ValueError(f"fdr must be strictly between 0 and 1, got {fdr!r}")
    if math.isnan(confidence_level) or not 0.0 < confidence_level < 1.0:
        raise ValueError(f"confidence_level must be strictly between 0 and 1, got {confidence_level!r}")
    if max_conditions not in (1, 2):
        raise ValueError(
            f"max_conditions must be 1 or 2 (longer conjunctions are not mined), got {max_conditions}"
        )
    if max_rules < 0:
        raise ValueError(f"max_rules must be >= 0, got {max_rules}")
    if not 0 <= numeric_thresholds <= MAX_NUMERIC_THRESHOLDS:
        raise ValueError(
            f"numeric_thresholds must be in 0..{MAX_NUMERIC_THRESHOLDS}, got {numeric_thresholds}"
        )

    total = len(observations)
    success_bits = _success_bits(observations)
    total_successes = success_bits.bit_count()
    if max_rules == 0 or total < min_samples or total_successes in (0, total):
        return []  # nothing can succeed more often than the rest

    columns = _flatten(observations)
    paths = _choose_paths(columns, min_samples)
    singles = _singles(columns, paths, total, min_samples, numeric_thresholds)
    del columns

    def test(n: int, successes: int) -> float:
        # Table: [successes, failures] of the candidate vs of every other decision. Only p-values
        # <= fdr can be discoveries (and only they enter the q-values of discoveries), so larger
        # ones may stop early at a bound above fdr.
        return hypergeometric_upper_tail(successes, n, total_successes, total, stop_at=fdr)

    # Candidates covering the same decisions as an earlier one are not tested again. Identical sets
    # have identical sizes and success counts; only then are the bitsets rebuilt and compared (pair
    # bitsets are not kept: at 100k decisions each is 12 KB).
    seen: dict[tuple[int, int], list[tuple[int, ...]]] = {}

    def bits_of(parts: tuple[int, ...]) -> int:
        bits = singles[parts[0]].bits
        for k in parts[1:]:
            bits &= singles[k].bits
        return bits

    def is_new(parts: tuple[int, ...], bits: int, n: int, successes: int) -> bool:
        key = (n, successes)
        earlier = seen.get(key)
        if earlier is None:
            seen[key] = [parts]
            return True
        if any(bits_of(other) == bits for other in earlier):
            return False
        earlier.append(parts)
        return True

    candidates: list[_Candidate] = []
    kept_singles: list[int] = []
    single_successes = [(single.bits & success_bits).bit_count() for single in singles]
    for k, single in enumerate(singles):
        s = single_successes[k]
        if not is_new((k,), single.bits, single.support, s):
            continue
        kept_singles.append(k)
        candidates.append(_Candidate((k,), single.support, s, test(single.support, s)))

    if max_conditions >= 2:
        pool = sorted(kept_singles, key=lambda k: (-singles[k].support, k))[:MAX_PAIR_POOL]
        pool.sort()
        pool_bits = [singles[k].bits for k in pool]
        pool_success = [b & success_bits for b in pool_bits]
        pool_fields = [singles[k].condition.field for k in pool]
        for x in range(len(pool)):
            bx, sx, fx = pool_bits[x], pool_success[x], pool_fields[x]
            for y in range(x + 1, len(pool)):
                if pool_fields[y] == fx:
                    continue
                both = bx & pool_bits[y]
                n = both.bit_count()
                if n < min_samples:
                    continue
                s = (sx & pool_success[y]).bit_count()
                if not is_new((pool[x], pool[y]), both, n, s):
                    continue
                candidates.append(_Candidate((pool[x], pool[y]), n, s, test(n, s)))

    if not candidates:
        return []
    p_values = [c.p_value for c in candidates]
    discovered = benjamini_hochberg(p_values, fdr)
    q_values = bh_adjusted(p_values)
    winners = [(c, q) for c, q, d in zip(candidates, q_values, discovered, strict=True) if d]

    # Pairs must beat each of their parts (Bonferroni over every refinement test).
    pairs = [c for c, _ in winners if len(c.parts) == 2]
    refinement_level = fdr / (2 * len(pairs)) if pairs else fdr
    rejected: set[int] = set()
    for pair in pairs:
        for part in pair.parts:
            single = singles[part]
            rest_n = single.support - pair.n
            rest_s = single_successes[part] - pair.successes
            # pair vs "part and not the other condition": rows [s, n - s] / [rest_s, rest_n - rest_s]
            p = hypergeometric_upper_tail(
                pair.successes, pair.n, pair.successes + rest_s, single.support, stop_at=refinement_level
            )
            if rest_n == 0 or p > refinement_level:
                rejected.add(id(pair))
                break

    baseline = total_successes / total
    rules: list[MinedRule] = []
    for cand, q in winners:
        if id(cand) in rejected:
            continue
        conditions = tuple(sorted((singles[k].condition for k in cand.parts), key=_condition_key))
        lower, upper = wilson_interval(cand.successes, cand.n, confidence_level)
        rate = cand.successes / cand.n
        rules.append(
            MinedRule(
                conditions=conditions,
                n=cand.n,
                successes=cand.successes,
                success_rate=rate,
                confidence=lower,
                upper=upper,
                baseline_rate=baseline,
                lift=rate / baseline,
                p_value=cand.p_value,
                q_value=q,
            )
        )
    rules.sort(key=lambda r: (-r.confidence, -r.lift, len(r.conditions), r.description()))
    return rules[:max_rules]
