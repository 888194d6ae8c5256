"""The one backoff schedule (``shared.backoff``): full jitter under a doubling, capped ceiling."""

from __future__ import annotations

from shared.backoff import Backoff


def test_each_wait_is_drawn_under_a_doubling_ceiling_up_to_the_cap() -> None:
    backoff = Backoff(attempts=6, base_delay=0.5, max_delay=3.0)
    for retry, ceiling in enumerate([0.5, 1.0, 2.0, 3.0, 3.0], start=1):
        waits = [backoff.delay(retry) for _ in range(200)]
        assert all(0 <= wait <= ceiling for wait in waits)
        assert max(waits) > ceiling / 2  # jittered over the whole range, not a fixed wait
        assert len(set(waits)) > 100


def test_iterating_yields_the_attempts_and_waits_between_them() -> None:
    slept: list[float] = []
    backoff = Backoff(attempts=3, base_delay=0.1, max_delay=1.0, sleep=slept.append)
    assert list(backoff) == [1, 2, 3]
    assert len(slept) == 2  # never after the last attempt
    assert 0 <= slept[0] <= 0.1 and 0 <= slept[1] <= 0.2


def test_a_loop_that_stops_early_waits_no_more() -> None:
    slept: list[float] = []
    backoff = Backoff(attempts=5, base_delay=0.1, max_delay=1.0, sleep=slept.append)
    for attempt in backoff:
        if attempt == 2:
            break
    assert len(slept) == 1
