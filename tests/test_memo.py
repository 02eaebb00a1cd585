"""The bounded memo the hot paths share (rows inflated, floats rounded, query digests)."""

from __future__ import annotations

from agent_memory.memo import Memo


def test_a_memo_keeps_at_most_its_bound_and_forgets_all_when_full() -> None:
    memo: Memo[int, str] = Memo(3)
    assert [memo.keep(i, str(i)) for i in range(3)] == ["0", "1", "2"]
    assert dict(memo) == {0: "0", 1: "1", 2: "2"}
    assert memo.keep(1, "one") == "one"  # a full memo forgets everything first, even a known key
    assert dict(memo) == {1: "one"}
    for i in range(10):
        memo.keep(i, str(i))
        assert len(memo) <= 3
    assert memo.get(9) == "9" and memo.get(0) is None
