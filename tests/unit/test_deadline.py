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


def test_getting_back_to_the_checkpoint_may_take_half_the_working_time_and_no_more(monkeypatch):
    import pytest

    from impex.formats.errors import FileProblem
    from impex.pipelines import common
    from impex.pipelines.common import CatchUp

    now = {"t": 1000.0}
    monkeypatch.setattr(common.time, "monotonic", lambda: now["t"])
    # Given a 15-minute invocation (840 s of working time before its 60 s reserve) of a file read
    # again from its start, to get back past row 5,000
    deadline = Deadline(Clock(900_000), 60)
    assert deadline.working_seconds == 840
    quick, slow, never = (CatchUp(deadline, False, 5_000) for _ in range(3))
    # When one gets past it after 400 s, one after 430 s, and one not at all by the deadline
    now["t"] += 400
    quick.reached(5_001)
    now["t"] += 30
    slow.reached(5_001)
    never.reached(5_000)  # a mark of a skipped record: not past the checkpoint
    now["t"] += 400
    # Then the first carries on, and the others fail, saying what to do
    quick.check()
    for caught in (slow, never):
        with pytest.raises(FileProblem, match="upload it uncompressed"):
            caught.check()
    # And a file resumed from a byte offset, or read from its start, has nothing to get back to
    CatchUp(deadline, True, 5_000).check()
    CatchUp(deadline, False, 0).check()
