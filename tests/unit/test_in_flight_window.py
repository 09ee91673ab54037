"""The record writer's in-flight window: additive increase while DynamoDB takes every request,
multiplicative decrease on throttling, never below one request, never above its cap."""

from __future__ import annotations

import threading
import time

from botocore.exceptions import ClientError

from impex.aws.records import InFlightWindow, RecordTable


def requests(window: InFlightWindow, count: int, *, throttled: bool) -> int:
    """Run ``count`` requests through the window, one after another; the window's size after."""
    for _ in range(count):
        window.acquire()
        window.release(throttled=throttled)
    return window.size


def test_the_window_halves_on_throttling_and_grows_back_one_per_window():
    # Given a window of 16
    window = InFlightWindow(16)
    # When three requests in a row are throttled, Then it allows 2, and never goes below 1
    assert requests(window, 3, throttled=True) == 2
    assert requests(window, 5, throttled=True) == 1
    # When requests succeed, it grows by one per window's worth of them (1 -> 2 -> 3), up to the cap
    assert requests(window, 3, throttled=False) == 3
    assert requests(window, 500, throttled=False) == 16


def test_no_more_requests_than_the_window_are_in_flight():
    window = InFlightWindow(3)
    active, most, lock = [0], [0], threading.Lock()

    def request() -> None:
        window.acquire()
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        time.sleep(0.01)
        with lock:
            active[0] -= 1
        window.release(throttled=False)

    threads = [threading.Thread(target=request) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 3


class _Throttling:
    """A client whose partition is hot: every other BatchWriteItem is refused whole."""

    def __init__(self) -> None:
        self.calls = 0

    def batch_write_item(self, **_: object) -> dict:
        self.calls += 1
        if self.calls % 2:
            error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}
            raise ClientError(error, "BatchWriteItem")  # type: ignore[arg-type]
        return {"UnprocessedItems": {}}


def test_a_throttled_table_shrinks_its_window_and_still_writes_everything():
    client = _Throttling()
    table = RecordTable(client, "records", max_workers=8, backoff=lambda _: 0.0)
    items = [{"pk": {"S": "p"}, "sk": {"S": str(i)}} for i in range(250)]
    table.put_many(items)
    table.close()
    assert client.calls == 20  # ten batches, each refused once and then taken
    assert table.window.size < 8


def test_it_counts_the_throttled_requests_for_the_import_batches_to_see():
    # Given a window
    window = InFlightWindow(16, start=8)
    # When three requests come back whole and two throttled
    for throttled in (False, True, False, True, False):
        window.acquire()
        window.release(throttled=throttled)
    # Then it has counted the two throttled ones (BatchDepth shrinks on any new one)
    assert window.throttles == 2
