"""How many import batches are in flight adapts: more while the importer waits on DynamoDB's
latency, fewer while it throttles, always between 1 and the setting."""

from __future__ import annotations

from impex.pipelines.import_batches import BatchDepth

WAITED = BatchDepth.WAIT_TO_GROW_SECONDS


def test_it_starts_at_three_within_the_setting():
    # Given the setting (the most in flight)
    # Then the depth starts at three, or at the setting when that is lower
    assert [BatchDepth(most).size for most in (1, 2, 3, 6, 8)] == [1, 2, 3, 3, 3]


def test_waiting_on_the_oldest_batch_grows_it_up_to_the_setting_and_no_further():
    # Given a depth that may reach 6
    depth = BatchDepth(6)
    sizes = []
    # When the pipeline waits for the oldest batch, batch after batch
    for _ in range(6):
        depth.note(waited_seconds=WAITED * 5, throttled=False)
        sizes.append(depth.size)
    # Then it grows one at a time, and stops at 6
    assert sizes == [4, 5, 6, 6, 6, 6]


def test_no_wait_keeps_it_where_it_is():
    # Given a depth, and batches whose I/O is done before the next is converted
    depth = BatchDepth(6)
    # When the pipeline hardly waits
    for _ in range(10):
        depth.note(waited_seconds=WAITED / 4, throttled=False)
    # Then the depth stays at its start
    assert depth.size == 3


def test_throttling_shrinks_it_to_one_at_least_even_while_waiting():
    # Given a depth grown to the setting
    depth = BatchDepth(8)
    for _ in range(5):
        depth.note(waited_seconds=1.0, throttled=False)
    assert depth.size == 8
    sizes = []
    # When requests are throttled, batch after batch (the pipeline waits too: throttling wins)
    for _ in range(9):
        depth.note(waited_seconds=1.0, throttled=True)
        sizes.append(depth.size)
    # Then it shrinks one at a time, to one
    assert sizes == [7, 6, 5, 4, 3, 2, 1, 1, 1]
