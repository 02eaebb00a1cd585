"""Pattern miner on synthetic decision streams with planted (or no) rules."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import pytest

from agent_memory.memory.mining import MinedRule, Observation, mine_rules

TRENDS = ("bullish", "bearish", "sideways")
VOLATILITY = ("low", "medium", "high")
HOURS = ("asian", "european", "american")
VENUES = ("binance", "coinbase", "kraken", "okx")

Context = dict[str, Any]
Probability = Callable[[Context], float]


def make_context(rng: random.Random) -> Context:
    """A market-hunter-like context: nested categorical and numeric features plus noise to ignore."""
    r = rng.random
    return {
        "market": {
            "trend": TRENDS[int(r() * 3)],
            "volatility": VOLATILITY[int(r() * 3)],
            "spread_bps": round(0.5 + 19.5 * r(), 2),
        },
        "whale_count": int(r() * 11),  # 0..10
        "trading_hours": HOURS[int(r() * 3)],
        "venue": VENUES[int(r() * 4)],
        "rsi": round(10 + 80 * r(), 1),
        "news_flag": r() < 0.3,
        "tags": ["momentum", "breakout"],  # lists are ignored
        "note": None,  # nulls are ignored
    }


def stream(seed: int, n: int, probability: Probability) -> list[Observation]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        context = make_context(rng)
        out.append(Observation(context, rng.random() < probability(context)))
    return out


def planted_pair(context: Context) -> float:
    return 0.8 if context["whale_count"] >= 5 and context["market"]["trend"] == "bullish" else 0.4


def planted_single(context: Context) -> float:
    return 0.75 if context["market"]["volatility"] == "high" else 0.4


def no_rule(context: Context) -> float:
    return 0.5


def shape(rule: MinedRule) -> list[tuple[str, str, Any]]:
    return [(c.field, c.op, c.value) for c in rule.conditions]


def is_planted_pair(rule: MinedRule) -> bool:
    """The planted rule, with any threshold at which its true success rate is exactly 0.8."""
    conds = shape(rule)
    return (
        len(conds) == 2
        and conds[0] == ("market.trend", "eq", "bullish")
        and conds[1][:2] == ("whale_count", "gte")
        and 5 <= conds[1][2] <= 8
    )


def check_counts(rule: MinedRule, observations: list[Observation]) -> None:
    """The reported counts are exactly what PatternCondition.holds gives on the contexts."""
    matching = [o for o in observations if rule.matches(dict(o.context))]
    assert rule.n == len(matching)
    assert rule.successes == sum(o.success for o in matching)


# --------------------------------------------------------------------------------------------------
# Planted rules
# --------------------------------------------------------------------------------------------------


def test_planted_pair_is_the_top_rule() -> None:
    observations = stream(1, 2000, planted_pair)
    rules = mine_rules(observations)
    assert rules, "the planted rule must be found"
    top = rules[0]
    assert is_planted_pair(top), [r.description() for r in rules]
    assert top.confidence <= 0.8 <= top.upper
    assert top.description() == 'market.trend = "bullish" and whale_count >= 5'
    assert top.p_value <= top.q_value <= 0.05
    assert top.lift > 1.4
    assert top.baseline_rate == pytest.approx(sum(o.success for o in observations) / len(observations))
    assert top.success_rate == pytest.approx(top.successes / top.n)
    for rule in rules:
        check_counts(rule, observations)
        assert rule.q_value <= 0.05
        assert rule.confidence <= rule.success_rate <= rule.upper
    confidences = [r.confidence for r in rules]
    assert confidences == sorted(confidences, reverse=True)


def test_planted_single_rule_is_reported_alone() -> None:
    observations = stream(2, 2000, planted_single)
    rules = mine_rules(observations)
    assert shape(rules[0]) == [("market.volatility", "eq", "high")]
    assert rules[0].confidence <= 0.75 <= rules[0].upper
    # "high and <noise>" pairs do not beat "high" alone, so none is reported.
    assert not [r for r in rules if len(r.conditions) == 2 and "market.volatility" in r.description()]
    for rule in rules:
        check_counts(rule, observations)


def test_planted_single_rule_wins_across_seeds() -> None:
    seeds = range(100, 120)
    wins = sum(
        shape(mine_rules(stream(s, 2000, planted_single))[0]) == [("market.volatility", "eq", "high")]
        for s in seeds
    )
    print(f"single rule ranked first in {wins}/{len(seeds)} seeds")
    assert wins >= len(seeds) - 1


def test_wilson_interval_covers_the_true_rate() -> None:
    seeds = range(1000, 1100)
    covered = top = 0
    for seed in seeds:
        rules = mine_rules(stream(seed, 1000, planted_pair))
        if rules and is_planted_pair(rules[0]):
            top += 1
            covered += rules[0].confidence <= 0.8 <= rules[0].upper
    print(f"planted rule on top in {top}/100 seeds; its 95% Wilson interval covers 0.8 in {covered}/100")
    assert top >= 95
    assert covered >= 90


def test_no_rule_when_success_is_independent_of_context() -> None:
    seeds = range(200)
    with_rules = sum(bool(mine_rules(stream(10_000 + s, 500, no_rule))) for s in seeds)
    fraction = with_rules / len(seeds)
    print(f"false-discovery fraction under the null: {fraction:.3f} ({with_rules}/{len(seeds)} seeds)")
    assert fraction <= 0.10


# --------------------------------------------------------------------------------------------------
# Semantics
# --------------------------------------------------------------------------------------------------


def test_conditions_follow_pattern_condition_semantics() -> None:
    """Awkward contexts: missing keys, nulls, lists, unaddressable keys, numbers at a boolean path."""
    rng = random.Random(4)
    observations = []
    for i in range(1500):
        flag: Any = rng.random() < 0.5
        if i % 10 == 0:
            flag = int(flag)  # 1 == True for PatternCondition.holds: counted with the booleans
        context: Context = {
            "flag": flag,
            "dotted.key": "x",  # lookup() could never find it: ignored
            "with space": "y",
            "level": rng.choice(["a", "b", "c"]) if rng.random() < 0.8 else None,
            "size": rng.random() * 100 if rng.random() < 0.7 else "n/a",
            "deep": {"er": {"value": rng.randint(0, 20)}},
            "items": [1, 2, 3],
        }
        good = flag and context["level"] == "a"
        observations.append(Observation(context, rng.random() < (0.9 if good else 0.3)))
    rules = mine_rules(observations, max_rules=100)
    assert rules
    assert shape(rules[0]) == [("flag", "eq", True), ("level", "eq", "a")]
    for rule in rules:
        check_counts(rule, observations)
        for cond in rule.conditions:
            assert cond.field in {"flag", "level", "size", "deep.er.value"}


def test_values_a_pattern_cannot_store_are_skipped() -> None:
    rng = random.Random(12)
    observations = []
    for _ in range(600):
        tiny = rng.choice([1e-200, 2e-200, 3e-200, 4e-200])  # below DynamoDB's 1e-130
        good = rng.random() < 0.5
        context = {"tiny": tiny, "kind": "good" if good else "bad"}
        observations.append(Observation(context, rng.random() < (0.8 if good else 0.3)))
    rules = mine_rules(observations)
    assert [r.description() for r in rules] == ['kind = "good"']


def test_deterministic_and_independent_of_input_order() -> None:
    observations = stream(3, 1500, planted_pair)
    first = mine_rules(observations)
    assert mine_rules(observations) == first
    shuffled = list(observations)
    random.Random(0).shuffle(shuffled)
    assert mine_rules(shuffled) == first


def test_identical_coverage_keeps_the_simpler_rule() -> None:
    rng = random.Random(6)
    observations = []
    for _ in range(1000):
        on = rng.random() < 0.4
        context = {"regime": "risk_on" if on else "risk_off", "risk_on": on, "noise": rng.random()}
        observations.append(Observation(context, rng.random() < (0.8 if on else 0.4)))
    rules = mine_rules(observations)
    descriptions = [r.description() for r in rules]
    # regime = "risk_on" and risk_on = true cover the same decisions: one is reported, alone.
    covering = [d for d in descriptions if "risk_on" in d]
    assert covering == ['regime = "risk_on"'], descriptions
    coverages = [(r.n, r.successes) for r in rules]
    assert len(set(coverages)) == len(coverages)


def test_max_conditions_and_max_rules() -> None:
    observations = stream(5, 2000, planted_pair)
    singles = mine_rules(observations, max_conditions=1)
    assert singles and all(len(r.conditions) == 1 for r in singles)
    assert {r.conditions[0].field for r in singles} <= {"market.trend", "whale_count"}
    assert len(mine_rules(observations, max_rules=2)) == 2
    assert mine_rules(observations, max_rules=0) == []


def test_min_samples_is_respected() -> None:
    observations = stream(8, 2000, planted_pair)
    for rule in mine_rules(observations, min_samples=300, max_rules=100):
        assert rule.n >= 300


def test_numeric_thresholds_are_observed_quantiles() -> None:
    observations = stream(9, 2000, planted_pair)
    rules = mine_rules(observations, numeric_thresholds=1, max_rules=100)
    thresholds = {c.value for r in rules for c in r.conditions if c.field == "whale_count"}
    assert thresholds == {5}  # the median of 0..10
    assert all(isinstance(t, int) for t in thresholds)


@pytest.mark.parametrize(
    "observations",
    [
        [],
        [Observation({"a": "x"}, True)] * 100,
        [Observation({"a": "x"}, False)] * 100,
        [Observation({"a": "x" if i % 2 else "y"}, i % 2 == 1) for i in range(10)],  # < min_samples
        [Observation({}, i % 2 == 1) for i in range(100)],
    ],
)
def test_degenerate_inputs_give_no_rules(observations: list[Observation]) -> None:
    assert mine_rules(observations) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_samples": 0},
        {"fdr": 0.0},
        {"fdr": 1.0},
        {"confidence_level": 1.0},
        {"max_conditions": 0},
        {"max_conditions": 3},
        {"max_rules": -1},
        {"numeric_thresholds": -1},
        {"numeric_thresholds": 21},
    ],
)
def test_invalid_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        mine_rules(stream(0, 50, no_rule), **kwargs)


# --------------------------------------------------------------------------------------------------
# Performance
# --------------------------------------------------------------------------------------------------


def test_mines_100k_decisions_quickly() -> None:
    observations = stream(7, 100_000, planted_pair)
    start = time.perf_counter()
    rules = mine_rules(observations)
    elapsed = time.perf_counter() - start
    print(f"mined 100k decisions in {elapsed:.2f} s")
    assert elapsed < 10.0
    assert rules and is_planted_pair(rules[0])
