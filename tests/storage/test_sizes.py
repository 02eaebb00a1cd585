"""The bounded size measure that decides whether work on a value may run on the event loop."""

from __future__ import annotations

from agent_memory.storage.sizes import INLINE_BUILD_BYTES, fits


def test_a_small_record_fits_and_a_large_one_does_not() -> None:
    small = {"market": {"trend": "bullish", "volatility": 0.4}, "whale_count": 3, "tags": ["a", "b"]}
    assert fits(((), {"context": small}), INLINE_BUILD_BYTES)
    assert not fits({"context": {"text": "x" * INLINE_BUILD_BYTES}}, INLINE_BUILD_BYTES)
    # Many small values add up, keys included.
    many = {f"key_{i:05d}": i for i in range(INLINE_BUILD_BYTES // 8)}
    assert not fits(many, INLINE_BUILD_BYTES)


def test_the_budget_is_exact_for_text() -> None:
    assert fits("x" * 100, 100)
    assert not fits("x" * 101, 100)
    assert fits(["x" * 49, "y" * 49], 100)  # one byte per list element
    assert not fits(["x" * 50, "y" * 49], 100)
