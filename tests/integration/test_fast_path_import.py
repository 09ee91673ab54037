"""The import's fast path changes nothing but speed (issue #14): files of every kind of cell, ragged
rows, quoted newlines and repeated keys, imported with rows converted column by column and with
every row converted the exact way (COLUMNAR_CONVERSION=false), give the same counts, row errors,
error report and records, in every write mode."""

from __future__ import annotations

import csv
import io
import random

import pytest

from tests.integration.conftest import CUSTOMERS
from tests.integration.importing import WRITE_MODE_IDS, WRITE_MODE_STEPS, Importer
from tests.integration.test_sharding import outcome

EMAILS = ["a@x.io", "b#1@x.io", "back\\slash@x.io", "", " ", "c@x.io"]
AGES = ["30", "0", "150", "151", "-1", "old", " 42", "1,000", "42.0", "", "007", "9" * 40]
BALANCES = ["12.50", "0.5", "-3", "0.0000001", "1E3", ".5", "1_000", "abc", "", "NaN", "1" * 39, "100"]
ACTIVE = ["true", "false", "yes", "No", "1", "0", "maybe", "", "TRUE", " y"]
DATES = ["2024-05-01", "2024-02-30", "2024/05/01", "01.05.2024", "03/04/2024", "13/04/2024", "", "x"]
NAMES = ["Ann", "Bo, Jr.", "multi\nline", "  ", "", "#hash", "Zoë"]


def tricky_file(rows: int, seed: int) -> bytes:
    """A CSV whose cells come in every form the converters take and refuse, with ragged rows and a
    key that repeats now and then."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["email", "name", "age", "balance", "active", "signedUp"])
    for i in range(rows):
        email = rng.choice(EMAILS) + str(rng.randrange(i + 1) if rng.random() < 0.1 else i)
        if rng.random() < 0.05:
            email = rng.choice(EMAILS)  # blank, or the same key as another such row
        row = [
            email,
            rng.choice(NAMES),
            rng.choice(AGES),
            rng.choice(BALANCES),
            rng.choice(ACTIVE),
            rng.choice(DATES),
        ]
        if rng.random() < 0.7:  # mostly rows the fast path builds whole
            row[2:] = [
                str(rng.randrange(150)),
                f"{rng.randrange(10**5) / 100}",
                "true",
                f"2024-0{1 + i % 9}-1{i % 10}",
            ]
        if rng.random() < 0.03:
            row = row[: rng.randrange(1, 6)] if rng.random() < 0.5 else [*row, "extra"]
        writer.writerow(row)
    return out.getvalue().encode()


@pytest.fixture
def importer(api, put_dataset, stack) -> Importer:
    put_dataset("fast", shards=1, **CUSTOMERS)
    put_dataset("exact", shards=1, **CUSTOMERS)
    return Importer(api, stack)


@pytest.mark.parametrize(
    "steps",
    WRITE_MODE_STEPS,
    ids=WRITE_MODE_IDS,
)
@pytest.mark.parametrize("seed", [1, 2])
def test_the_fast_path_and_the_exact_path_give_the_same_outcome(importer, monkeypatch, steps, seed):
    # Given a tricky file, imported 50 rows a batch
    content = tricky_file(400, seed)
    monkeypatch.setenv("BATCH_ROWS", "50")
    outcomes = {}
    for columnar, dataset in ((True, "fast"), (False, "exact")):
        # When the same steps import it with the fast path and with every row converted the exact way
        monkeypatch.setenv("COLUMNAR_CONVERSION", str(columnar).lower())
        importer.rewire()
        outcomes[columnar] = [outcome(importer, dataset, content, **options) for options in steps]
    # Then every count, row error, error report and record is the same
    assert outcomes[True] == outcomes[False]
    first = outcomes[True][0]["result"]
    assert first["failed"] > 20 and first["rowsTotal"] == 400
    if not steps[0].get("dryRun"):
        assert first["created"] > 200
