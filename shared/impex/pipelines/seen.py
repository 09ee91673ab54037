"""Keys an import has already seen, kept on disk (/tmp) so memory stays flat whatever the file size.

An in-memory set of a 10M-row file's keys would take gigabytes; SQLite in the Lambda's ephemeral
storage keeps 8-byte digests with a small page cache.
"""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
from pathlib import Path


def digest(identity: str) -> bytes:
    """An 8-byte fingerprint of a record identity (collisions are astronomically unlikely per file)."""
    return hashlib.blake2b(identity.encode(), digest_size=8).digest()


class SeenKeys:
    """First row number of each identity seen so far."""

    def __init__(self, directory: Path | None = None) -> None:
        self._file = tempfile.NamedTemporaryFile(dir=directory, suffix=".seen.sqlite", delete=True)  # noqa: SIM115
        self._db = sqlite3.connect(self._file.name, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE seen (digest BLOB PRIMARY KEY, row INTEGER) WITHOUT ROWID")

    def first_rows(self, digests: list[bytes]) -> dict[bytes, int]:
        """For the digests already recorded, the row that recorded them."""
        found: dict[bytes, int] = {}
        for start in range(0, len(digests), 900):
            chunk = digests[start : start + 900]
            marks = ",".join("?" * len(chunk))
            found.update(self._db.execute(f"SELECT digest, row FROM seen WHERE digest IN ({marks})", chunk))  # noqa: S608
        return found

    def record(self, entries: list[tuple[bytes, int]]) -> None:
        """Remember new digests with their rows (existing ones keep their first row)."""
        self._db.executemany("INSERT OR IGNORE INTO seen VALUES (?, ?)", entries)

    def close(self) -> None:
        self._db.close()
        self._file.close()
