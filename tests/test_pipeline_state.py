"""The pipeline's named state: the watermark over out-of-order acknowledgements, and the one
retry policy every retried call uses."""

from __future__ import annotations

import pytest

from ferry.core.engine import Watermark
from ferry.core.errors import PermanentError, TransientError
from ferry.core.retry import RetryNotice, RetryPolicy


def test_watermark_waits_for_the_earliest_batch_then_moves_over_every_contiguous_one() -> None:
    mark = Watermark()
    mark.ack(2, {"after": 300}, records=100, nbytes=3000)
    mark.ack(1, {"after": 200}, records=100, nbytes=2000)
    assert mark.advance() == (0, 0, 0)  # batch 0 is still being written
    assert mark.cursor is None and mark.waiting == 2

    mark.ack(0, {"after": 100}, records=100, nbytes=1000)
    assert mark.advance() == (3, 300, 6000)
    assert mark.cursor == {"after": 300} and mark.next_seq == 3 and mark.waiting == 0


def test_watermark_moves_only_as_far_as_the_first_gap() -> None:
    mark = Watermark()
    for seq in (0, 1, 3, 4):
        mark.ack(seq, seq + 1, records=10)
    assert mark.advance() == (2, 20, 0)
    assert mark.cursor == 2  # batch 2 is missing: 3 and 4 wait behind it
    mark.ack(2, 3, records=10)
    assert mark.advance() == (3, 30, 0) and mark.cursor == 5


def test_watermark_starts_at_the_resume_cursor() -> None:
    mark = Watermark({"after": 700})
    assert mark.advance() == (0, 0, 0) and mark.cursor == {"after": 700}
    mark.ack(0, {"after": 800}, records=100)
    mark.advance()
    assert mark.cursor == {"after": 800}


def test_a_batch_acknowledged_twice_is_refused() -> None:
    mark = Watermark()
    mark.ack(0, 1)
    with pytest.raises(ValueError, match="batch 0"):
        mark.ack(0, 1)
    mark.advance()
    with pytest.raises(ValueError, match="batch 0"):
        mark.ack(0, 1)  # already below the watermark


QUICK = RetryPolicy(max_attempts=3, initial=0, maximum=0)  # no waiting between attempts


async def test_transient_failures_are_retried_and_reported() -> None:
    calls: list[int] = []
    notices: list[RetryNotice] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TransientError(f"timed out ({len(calls)})")
        return "written"

    assert await QUICK.call(flaky, notices.append) == "written"
    assert len(calls) == 3
    assert [n.attempt for n in notices] == [1, 2]
    assert [str(n.error) for n in notices] == ["timed out (1)", "timed out (2)"]


async def test_permanent_failures_are_not_retried() -> None:
    calls: list[int] = []

    async def refused() -> None:
        calls.append(1)
        raise PermanentError("dimension 4, source has 8")

    with pytest.raises(PermanentError, match="dimension 4"):
        await QUICK.call(refused)
    assert len(calls) == 1


async def test_when_attempts_run_out_the_last_error_is_raised_as_itself() -> None:
    calls: list[int] = []

    async def down() -> None:
        calls.append(1)
        raise TransientError(f"refused ({len(calls)})")

    with pytest.raises(TransientError, match=r"refused \(3\)"):
        await QUICK.call(down)
    assert len(calls) == QUICK.max_attempts


def test_the_waits_grow_and_are_capped() -> None:
    policy = RetryPolicy(max_attempts=10, initial=0.5, maximum=2.0)
    wait = policy.retrying().wait

    class State:  # what tenacity's wait strategy reads
        def __init__(self, attempt: int) -> None:
            self.attempt_number = attempt

    waits = [wait(State(n)) for n in range(1, 8)]  # type: ignore[arg-type]
    assert waits[0] >= 0.5 and all(0.5 <= w <= 2.0 for w in waits)
    assert waits[-1] == 2.0  # 0.5 × 2⁶ is far above the cap
