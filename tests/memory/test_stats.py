"""Statistics against textbook values and brute force."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest

from agent_memory.memory.stats import (
    benjamini_hochberg,
    bh_adjusted,
    fisher_one_sided_p,
    hypergeometric_upper_tail,
    newcombe_difference_interval,
    normal_quantile,
    normal_sf,
    wilson_interval,
)

# --------------------------------------------------------------------------------------------------
# Normal distribution
# --------------------------------------------------------------------------------------------------


def test_normal_quantile_known_values() -> None:
    assert normal_quantile(0.975) == pytest.approx(1.959963984540054, abs=1e-12)
    assert normal_quantile(0.5) == 0.0
    assert normal_quantile(0.999) == pytest.approx(3.090232306167813, abs=1e-12)
    assert normal_quantile(0.05) == pytest.approx(-1.6448536269514729, abs=1e-12)
    assert normal_quantile(1e-10) == pytest.approx(-6.361340902404056, abs=1e-9)
    assert normal_quantile(0.0) == -math.inf
    assert normal_quantile(1.0) == math.inf


@pytest.mark.parametrize("p", [1e-300, 1e-20, 1e-9, 0.001, 0.02425, 0.1, 0.3, 0.4999, 0.6, 0.9, 0.999999])
def test_normal_quantile_inverts_the_cdf(p: float) -> None:
    z = normal_quantile(p)
    assert normal_sf(-z) == pytest.approx(p, rel=1e-12)


@pytest.mark.parametrize("p", [0.001, 0.025, 0.1, 0.3, 0.45])
def test_normal_quantile_is_symmetric(p: float) -> None:
    assert normal_quantile(1.0 - p) == pytest.approx(-normal_quantile(p), rel=1e-12)


def test_normal_sf() -> None:
    assert normal_sf(0.0) == 0.5
    assert normal_sf(1.959963984540054) == pytest.approx(0.025, rel=1e-12)
    assert normal_sf(10.0) == pytest.approx(7.619853024160527e-24, rel=1e-9)  # no underflow to 0


@pytest.mark.parametrize("p", [-0.1, 1.1, math.nan])
def test_normal_quantile_rejects_out_of_range(p: float) -> None:
    with pytest.raises(ValueError):
        normal_quantile(p)


# --------------------------------------------------------------------------------------------------
# Wilson and Newcombe intervals
# --------------------------------------------------------------------------------------------------


def test_wilson_textbook_value() -> None:
    lo, hi = wilson_interval(81, 263)
    assert lo == pytest.approx(0.2553, abs=1e-4)
    assert hi == pytest.approx(0.3662, abs=1e-4)


def test_wilson_small_samples_and_edges() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(3, 3)  # a raw 100% is "at least 44%"
    assert lo == pytest.approx(0.4385, abs=1e-4)
    assert hi == 1.0
    lo, hi = wilson_interval(78, 100)  # "at least 69%": well attested beats lucky
    assert lo == pytest.approx(0.6893, abs=1e-4)
    assert lo > wilson_interval(3, 3)[0]
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0
    assert hi == pytest.approx(0.2775, abs=1e-4)
    assert wilson_interval(10, 10)[0] == pytest.approx(0.7225, abs=1e-4)


def test_wilson_is_wider_at_higher_confidence() -> None:
    lo95, hi95 = wilson_interval(30, 50, 0.95)
    lo99, hi99 = wilson_interval(30, 50, 0.99)
    assert lo99 < lo95 < 0.6 < hi95 < hi99


@pytest.mark.parametrize("args", [(-1, 5), (6, 5), (1, -1)])
def test_wilson_rejects_bad_counts(args: tuple[int, int]) -> None:
    with pytest.raises(ValueError):
        wilson_interval(*args)


@pytest.mark.parametrize("confidence", [0.0, 1.0, 1.5, math.nan])
def test_wilson_rejects_bad_confidence(confidence: float) -> None:
    with pytest.raises(ValueError):
        wilson_interval(1, 2, confidence)


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        # Newcombe (1998), Statistics in Medicine 17:873-890, method 10 (hybrid score).
        ((56, 70, 48, 80), (0.2, 0.0524, 0.3339)),
        ((9, 10, 3, 10), (0.6, 0.1705, 0.8090)),
        ((0, 10, 0, 20), (0.0, -0.1611, 0.2775)),
        ((0, 10, 0, 10), (0.0, -0.2775, 0.2775)),
    ],
)
def test_newcombe_published_examples(
    counts: tuple[int, int, int, int], expected: tuple[float, float, float]
) -> None:
    diff, lo, hi = newcombe_difference_interval(*counts)
    assert diff == pytest.approx(expected[0], abs=1e-12)
    assert lo == pytest.approx(expected[1], abs=1e-4)
    assert hi == pytest.approx(expected[2], abs=1e-4)


def test_newcombe_empty_groups_are_wide_and_finite() -> None:
    l2, u2 = wilson_interval(48, 80)
    assert newcombe_difference_interval(0, 0, 48, 80) == pytest.approx((0.0, -u2, 1.0 - l2))
    assert newcombe_difference_interval(48, 80, 0, 0) == pytest.approx((0.0, l2 - 1.0, u2))
    assert newcombe_difference_interval(0, 0, 0, 0) == (0.0, -1.0, 1.0)


def test_newcombe_is_antisymmetric() -> None:
    d1, lo1, hi1 = newcombe_difference_interval(30, 45, 12, 40)
    d2, lo2, hi2 = newcombe_difference_interval(12, 40, 30, 45)
    assert (d1, lo1, hi1) == pytest.approx((-d2, -hi2, -lo2))


# --------------------------------------------------------------------------------------------------
# Fisher's exact test
# --------------------------------------------------------------------------------------------------


def _exact_upper_tail(a: int, b: int, c: int, d: int) -> Fraction:
    row1, col1, total = a + b, a + c, a + b + c + d
    top = min(row1, col1)
    num = sum(math.comb(col1, x) * math.comb(total - col1, row1 - x) for x in range(a, top + 1))
    return Fraction(num, math.comb(total, row1))


def test_fisher_lady_tasting_tea() -> None:
    assert fisher_one_sided_p(3, 1, 1, 3) == pytest.approx(17 / 70, rel=1e-12)  # 0.2429
    assert fisher_one_sided_p(4, 0, 0, 4) == pytest.approx(1 / 70, rel=1e-12)
    assert fisher_one_sided_p(0, 4, 4, 0) == 1.0  # group 1 is worse: no evidence it is better


def test_fisher_matches_brute_force_on_small_tables() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        a, b, c, d = (rng.randint(0, 25) for _ in range(4))
        expected = float(_exact_upper_tail(a, b, c, d)) if a + b + c + d else 1.0
        assert fisher_one_sided_p(a, b, c, d) == pytest.approx(expected, rel=1e-11, abs=1e-300)


@pytest.mark.parametrize(
    "table",
    [(700, 300, 600, 400), (520, 480, 500, 500), (30, 5, 900, 1065), (0, 50, 10, 1940), (1000, 0, 0, 1000)],
)
def test_fisher_matches_exact_on_larger_tables(table: tuple[int, int, int, int]) -> None:
    assert fisher_one_sided_p(*table) == pytest.approx(float(_exact_upper_tail(*table)), rel=1e-10)


def test_fisher_is_fast_and_sane_at_100k() -> None:
    # 61% vs 60% over 100k decisions: a 1-point gap is significant at this size.
    p = fisher_one_sided_p(30500, 19500, 30000, 20000)
    assert p == pytest.approx(6.2337872e-4, rel=1e-6)
    assert fisher_one_sided_p(30000, 20000, 30000, 20000) > 0.49


def test_hypergeometric_stop_at_is_exact_below_and_a_bound_above() -> None:
    rng = random.Random(11)
    for _ in range(1000):
        a, b, c, d = (rng.randint(0, 40) for _ in range(4))
        exact = fisher_one_sided_p(a, b, c, d)
        quick = hypergeometric_upper_tail(a, a + b, a + c, a + b + c + d, stop_at=0.05)
        if exact <= 0.05:
            assert quick == pytest.approx(exact, rel=1e-12)
        else:
            assert 0.05 < quick <= exact * (1 + 1e-12)


def test_fisher_rejects_negative_counts() -> None:
    with pytest.raises(ValueError):
        fisher_one_sided_p(-1, 2, 3, 4)


# --------------------------------------------------------------------------------------------------
# Benjamini-Hochberg
# --------------------------------------------------------------------------------------------------

# Benjamini & Hochberg (1995), section 4: 15 p-values, 4 discoveries at q = 0.05 (Bonferroni: 3).
BH_1995 = [
    0.0001,
    0.0004,
    0.0019,
    0.0095,
    0.0201,
    0.0278,
    0.0298,
    0.0344,
    0.0459,
    0.3240,
    0.4262,
    0.5719,
    0.6528,
    0.7590,
    1.0000,
]


def test_bh_paper_example() -> None:
    assert benjamini_hochberg(BH_1995, 0.05) == [True] * 4 + [False] * 11


def test_bh_keeps_input_order() -> None:
    shuffled = list(BH_1995)
    random.Random(3).shuffle(shuffled)
    flags = benjamini_hochberg(shuffled, 0.05)
    assert sorted(p for p, f in zip(shuffled, flags, strict=True) if f) == BH_1995[:4]


def test_bh_adjusted_hand_computed() -> None:
    # m = 6: m*p/rank = .03, .027, .1, .15, .24, .3, then the running minimum from the top.
    got = bh_adjusted([0.2, 0.005, 0.3, 0.05, 0.009, 0.1])
    assert got == pytest.approx([0.24, 0.027, 0.3, 0.1, 0.027, 0.15])
    assert bh_adjusted([0.01, 0.02, 0.03, 0.04, 0.05]) == pytest.approx([0.05] * 5)
    assert bh_adjusted([]) == []
    assert benjamini_hochberg([], 0.05) == []


def test_bh_discoveries_are_the_q_values_below_the_level() -> None:
    rng = random.Random(5)
    p = [rng.random() ** 3 for _ in range(200)]
    for level in (0.01, 0.05, 0.2):
        assert benjamini_hochberg(p, level) == [q <= level for q in bh_adjusted(p)]


@pytest.mark.parametrize("q", [0.0, 1.0, -0.5])
def test_bh_rejects_bad_level(q: float) -> None:
    with pytest.raises(ValueError):
        benjamini_hochberg([0.1], q)


def test_bh_rejects_bad_p_values() -> None:
    with pytest.raises(ValueError):
        bh_adjusted([0.1, 1.5])
