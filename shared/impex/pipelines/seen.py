"""Keys an import has already seen: in memory up to a cap, then on disk (/tmp) so memory stays flat
whatever the file size.

An in-memory set of a 10M-row file's keys would take gigabytes; SQLite in the Lambda's ephemeral
storage keeps 64-bit digests as integer primary keys with a 16 MB page cache.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from itertools import islice
from pathlib import Path


def digest(identity: str) -> int:
    """A signed 64-bit fingerprint of a record identity, for this process only: Python's string hash
    (SipHash with a random key each process, so files cannot be crafted to collide; ~0.04 µs, a
    tenth of a blake2b digest). Digests never outlive the invocation that made them."""
    return hash(identity)


class SeenKeys:
    """First row number of each identity seen so far: in memory for the first ``memory_keys``
    identities (a dict lookup costs a fraction of a SQLite statement's work), then all of them on
    disk, so memory stays flat whatever the file size.

    Each SQLite call is one statement over a JSON array (not one statement a key): SQLite releases
    the GIL for every statement, and each hand-over to a busy thread can cost a whole switch interval.
    """

    # ~135 bytes a key in a dict of ints: ~34 MB at most before the keys move to disk.
    MEMORY_KEYS = 250_000
    _SPILL_CHUNK = 50_000

    def __init__(self, directory: Path | None = None, *, memory_keys: int = MEMORY_KEYS) -> None:
        self._directory = directory
        self._memory_keys = memory_keys
        self._memory: dict[int, int] | None = {}
        self._file: tempfile._TemporaryFileWrapper[bytes] | None = None
        self._db: sqlite3.Connection | None = None

    def first_rows(self, digests: list[int]) -> dict[int, int]:
        """For the digests already recorded, the row that recorded them."""
        if self._memory is not None:
            memory = self._memory
            return {key: memory[key] for key in digests if key in memory}
        if not digests or self._db is None:
            return {}
        query = "SELECT digest, row FROM seen WHERE digest IN (SELECT value FROM json_each(?))"
        return dict(self._db.execute(query, (json.dumps(digests),)).fetchall())

    def record(self, entries: list[tuple[int, int]]) -> None:
        """Remember new digests with their rows (existing ones keep their first row)."""
        if self._memory is not None:
            memory = self._memory
            for key, row in entries:
                memory.setdefault(key, row)
            if len(memory) > self._memory_keys:
                self._move_to_disk(memory)
            return
        self._insert(entries)

    def _move_to_disk(self, memory: dict[int, int]) -> None:
        self._file = tempfile.NamedTemporaryFile(dir=self._directory, suffix=".seen.sqlite", delete=True)  # noqa: SIM115
        self._db = sqlite3.connect(self._file.name, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        # A 16 MB page cache (SQLite's default is 2 MB): digests arrive in random order, so each
        # batch touches pages all over the table; measured on 1M keys, 5.1 s of lookups and inserts
        # became 3.3 s (32 and 64 MB gave no more).
        self._db.execute("PRAGMA cache_size=-16384")
        self._db.execute("CREATE TABLE seen (digest INTEGER PRIMARY KEY, row INTEGER NOT NULL)")
        entries = iter(memory.items())  # chunk by chunk: no second copy of every key at once
        while chunk := list(islice(entries, self._SPILL_CHUNK)):
            self._insert(chunk)
        self._memory = None

    def _insert(self, entries: list[tuple[int, int]]) -> None:
        if entries and self._db is not None:
            self._db.execute(
                "INSERT OR IGNORE INTO seen SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') "
                "FROM json_each(?)",
                (json.dumps(entries),),
            )

    def close(self) -> None:
        """Drop the keys (and close and delete the database, if they moved there)."""
        self._memory = None
        if self._db is not None:
            self._db.close()
        if self._file is not None:
            self._file.close()
