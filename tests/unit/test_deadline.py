"""When a worker hands over to a continuation: inside its reserve of the invocation's time, or once
the time is gone."""

from __future__ import annotations

from impex.pipelines.common import Deadline


class Clock:
    """A Lambda context whose remaining time the test sets."""

    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def test_the_reserve_is_a_minute_or_a_quarter_of_a_short_invocation():
    # Given a 15-minute invocation and a 2-second one
    long, short = Clock(900_000), Clock(2_000)
    long_deadline, short_deadline = Deadline(long, 60), Deadline(short, 60)
    # Then each is near only inside its reserve: 60 s, and 0.5 s
    long.remaining_ms, short.remaining_ms = 60_001, 501
    assert not long_deadline.near() and not short_deadline.near()
    long.remaining_ms, short.remaining_ms = 59_999, 499
    assert long_deadline.near() and short_deadline.near()


def test_an_invocation_that_starts_with_no_time_left_hands_over_at_once():
    # Given an invocation whose time was used up before its worker looked (a slow start)
    clock = Clock(0)
    deadline = Deadline(clock, 60)
    # Then its deadline is near, though its reserve is nothing
    assert deadline.near()


def test_without_a_context_there_is_no_deadline():
    assert not Deadline(None, 60).near()
