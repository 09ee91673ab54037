"""The keys an import has seen: the same answers in memory and once they have moved to disk."""

from __future__ import annotations

import random

import pytest

from impex.pipelines.seen import SeenKeys, digest


@pytest.mark.parametrize("memory_keys", [1_000_000, 50, 0])
def test_first_rows_are_the_same_in_memory_and_on_disk(tmp_path, memory_keys):
    # Given keys seen batch after batch, many of them again, against a plain dict of first rows
    rng = random.Random(7)
    seen = SeenKeys(tmp_path, memory_keys=memory_keys)
    reference: dict[int, int] = {}
    row = 1
    try:
        for _ in range(40):
            batch = [digest(f"K{rng.randrange(400)}") for _ in range(25)]
            # When each batch asks which keys came before, then records its new ones
            found = seen.first_rows(batch)
            # Then the answer is the reference's: every earlier key with its first row
            assert found == {key: reference[key] for key in batch if key in reference}
            entries = []
            for key in batch:
                row += 1
                entries.append((key, row))
                reference.setdefault(key, row)
            seen.record(entries)
        # And the keys moved to disk (a database in the directory) only past the cap
        assert any(tmp_path.iterdir()) == (len(reference) > memory_keys)
    finally:
        seen.close()
    assert not any(tmp_path.iterdir())


def test_digests_are_64_bit_integers_that_tell_identities_apart():
    # Given many identities, some differing only in one character
    identities = [f"K{i:08d}" for i in range(100_000)] + ["a#b", "a\\#b", "", "ÿ"]
    # When each gets its digest
    digests = [digest(identity) for identity in identities]
    # Then each fits SQLite's INTEGER (signed 64 bits), the same identity always gets the same one,
    # and no two of these share one
    assert all(-(2**63) <= value < 2**63 for value in digests)
    assert digests == [digest(identity) for identity in identities]
    assert len(set(digests)) == len(identities)
