"""Several batches in flight at once change nothing but speed (issue #14): the same file, imported
with one batch in flight, with three, and with up to six against a slow table (so that the number
in flight grows), gives the same counts, row errors, error report and records, in every write mode;
keys that repeat across batches still in flight included."""

from __future__ import annotations

import threading
import time

import pytest

from tests.fakes import hooked_records
from tests.integration.conftest import CUSTOMERS
from tests.integration.importing import WRITE_MODE_IDS, WRITE_MODE_STEPS, Importer
from tests.integration.test_sharding import outcome, people_with_trouble


@pytest.fixture
def importer(api, put_dataset, stack) -> Importer:
    put_dataset("one", shards=1, **CUSTOMERS)
    put_dataset("three", shards=1, **CUSTOMERS)
    put_dataset("six", shards=1, **CUSTOMERS)
    return Importer(api, stack)


class SlowWrites:
    """Batch writes that each take 30 ms more (DynamoDB's latency, and then some), counting how many
    batches' writes are under way at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self.most_at_once = 0

    def __call__(self, put_many, items) -> None:
        with self._lock:
            self._running += 1
            self.most_at_once = max(self.most_at_once, self._running)
        try:
            time.sleep(0.03)
            put_many(items)
        finally:
            with self._lock:
                self._running -= 1


@pytest.mark.parametrize(
    "steps",
    WRITE_MODE_STEPS,
    ids=WRITE_MODE_IDS,
)
def test_one_three_and_up_to_six_batches_in_flight_give_the_same_outcome(importer, monkeypatch, steps):
    # Given a file with bad rows and keys repeated 25 rows later, imported 20 rows a batch (so a key's
    # first occurrence is often in a batch still in flight when it comes again)
    content = people_with_trouble(300)
    monkeypatch.setenv("BATCH_ROWS", "20")
    outcomes = {}
    slow = SlowWrites()
    for in_flight, dataset in ((1, "one"), (3, "three"), (6, "six")):
        # When the same steps import it with 1 and with 3 batches in flight, and with up to 6 against
        # writes slow enough that the importer waits on them
        monkeypatch.setenv("BATCHES_IN_FLIGHT", str(in_flight))
        importer.rewire(**({"records": hooked_records(around_put=slow)} if in_flight == 6 else {}))
        outcomes[in_flight] = [outcome(importer, dataset, content, **options) for options in steps]
    # Then every count, row error, error report and record is the same
    assert outcomes[3] == outcomes[1]
    assert outcomes[6] == outcomes[1]
    # And against the slow writes more batches than the three it starts with were in flight at once
    # (a dry run writes nothing)
    if not all(options.get("dryRun") for options in steps):
        assert slow.most_at_once > 3
    last = outcomes[1][-1]["result"]
    assert last["failed"] > 0 and outcomes[1][0]["result"]["created"] > 0
    assert any("duplicate key" in error["message"] for error in outcomes[1][0]["firstErrors"])
