"""Several batches in flight at once change nothing but speed (issue #14): the same file, imported
with one batch in flight and with three, gives the same counts, row errors, error report and
records, in every write mode; keys that repeat across batches still in flight included."""

from __future__ import annotations

import pytest

from tests.integration.conftest import CUSTOMERS
from tests.integration.importing import Importer
from tests.integration.test_sharding import outcome, people_with_trouble


@pytest.fixture
def importer(api, put_dataset, stack) -> Importer:
    put_dataset("one", shards=1, **CUSTOMERS)
    put_dataset("three", shards=1, **CUSTOMERS)
    return Importer(api, stack)


@pytest.mark.parametrize(
    "steps",
    [
        [{}],
        [{}, {"mode": "upsert"}],
        [{}, {"mode": "insert"}],
        [{"dryRun": True}],
        [{}, {"mode": "merge"}],
        [{}, {"mode": "skip_unchanged"}],
    ],
    ids=["insert", "upsert-again", "insert-again", "dry-run", "merge-again", "skip-unchanged-again"],
)
def test_one_and_three_batches_in_flight_give_the_same_outcome(importer, monkeypatch, steps):
    # Given a file with bad rows and keys repeated 25 rows later, imported 20 rows a batch (so a key's
    # first occurrence is often in a batch still in flight when it comes again)
    content = people_with_trouble(300)
    monkeypatch.setenv("BATCH_ROWS", "20")
    outcomes = {}
    for in_flight, dataset in ((1, "one"), (3, "three")):
        # When the same steps import it with 1 and with 3 batches in flight
        monkeypatch.setenv("BATCHES_IN_FLIGHT", str(in_flight))
        importer.rewire()
        outcomes[in_flight] = [outcome(importer, dataset, content, **options) for options in steps]
    # Then every count, row error, error report and record is the same
    assert outcomes[3] == outcomes[1]
    last = outcomes[1][-1]["result"]
    assert last["failed"] > 0 and outcomes[1][0]["result"]["created"] > 0
    assert any("duplicate key" in error["message"] for error in outcomes[1][0]["firstErrors"])
