"""The simulated market of the demo: a seeded trend, whales on a watch list, and the hidden rule
that decides which tokens pump."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

HUNTER, RISK, EXECUTOR = "market-hunter", "risk-manager", "trade-executor"
AGENTS = (HUNTER, RISK, EXECUTOR)

TOKENS = ("ORCA", "LYNX", "KOI", "IBIS", "YAK")
"""The hunter's watch list (made-up tickers). Five scans a cycle give the learner enough outcomes:
it keeps a two-condition rule only if it beats each condition alone at a 5% false-discovery rate,
which with these odds takes about 75-100 decisions (one scan a cycle would need 100+ cycles)."""
TREND_BLOCK = ("bullish", "bullish", "bearish", "sideways")
"""Trends come in shuffled blocks of four, so every stretch of cycles holds bull and bear markets."""
WHALE_WEIGHTS = (2, 2, 3, 3, 3, 5, 3, 3, 3, 2, 1)
"""Relative odds of 0..10 whales on a token: about half the scans show 5 or more."""
PUMP_WHEN_RULE_HOLDS = 0.85
PUMP_OTHERWISE = 0.30
HIDDEN_RULE = (
    f"a token pumps {PUMP_WHEN_RULE_HOLDS:.0%} of the time when the trend is bullish and whale_count >= 5, "
    f"else {PUMP_OTHERWISE:.0%}"
)

ALERT_WHALES = 3
"""Before it has learned anything, the hunter alerts on any token with this many whales."""
LEARN_FROM, LEARN_EVERY = 15, 5
"""The hunter consolidates (learn_patterns) at cycle 15, then every 5 cycles."""
MIN_SAMPLES = 15
TRUST = 0.75
"""An agent relies on a matching pattern whose observed success rate is at least this."""


def hidden_pump_probability(trend: str, whale_count: int) -> float:
    return PUMP_WHEN_RULE_HOLDS if trend == "bullish" and whale_count >= 5 else PUMP_OTHERWISE


# --------------------------------------------------------------------------------------------------
# The simulated market
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenTick:
    token: str
    whale_count: int
    pumped: bool
    move_pct: float


@dataclass(frozen=True)
class Tick:
    """One cycle of the market. Everything is drawn up front, so the agents' choices never change
    the market that follows them."""

    cycle: int
    trend: str
    volatility: str
    tokens: tuple[TokenTick, ...]
    fill_latency_ms: float

    def context(self, token: TokenTick) -> dict[str, Any]:
        """What the hunter observes about one token: the context its decision is logged with."""
        return {
            "token": token.token,
            "market": {"trend": self.trend, "volatility": self.volatility},
            "whale_count": token.whale_count,
        }

    def token(self, name: str) -> TokenTick:
        return next(t for t in self.tokens if t.token == name)


class Market:
    """A reproducible market: ``Market(seed).tick(cycle)`` for cycles 1, 2, 3, ... in order."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self._trends: list[str] = []

    def tick(self, cycle: int) -> Tick:
        rng = self.rng
        if not self._trends:
            block = list(TREND_BLOCK)
            rng.shuffle(block)
            self._trends = block
        trend = self._trends.pop()
        volatility = rng.choice(("low", "high"))
        tokens = []
        for name in TOKENS:
            whales = rng.choices(range(len(WHALE_WEIGHTS)), weights=WHALE_WEIGHTS)[0]
            pumped = rng.random() < hidden_pump_probability(trend, whales)
            move = rng.uniform(6.0, 25.0) if pumped else rng.uniform(-9.0, -0.5)
            tokens.append(TokenTick(name, whales, pumped, round(move, 1)))
        return Tick(cycle, trend, volatility, tuple(tokens), round(rng.uniform(40.0, 400.0), 1))
