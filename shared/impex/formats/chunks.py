"""The chunk files of a fanned-out import: rows as the reader saw them, gzip JSON Lines, in file order.

A large import is split once by a streaming pass over the upload; each chunk's rows are written as
segments of one line per row, ``[row number, cell, cell, ...]`` (or ``{"bad": reason, "row": n}``
for a JSON Lines record that could not be read), so that a chunk's worker gets exactly the rows,
row numbers and cells the single-worker reader would have handed over. JSON Lines cells keep their
JSON types; values orjson cannot write (integers beyond 64 bits, NaN and infinities a JSON Lines
file may hold) are written by the standard library, which reads them back the same.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterable, Iterator
from typing import IO

import orjson

from impex.formats.columns import SourceRow
from impex.formats.errors import FileProblem
from impex.formats.jsonlines import bad_line, bad_line_reason

# A segment is flushed to its own object once this many compressed bytes are buffered: a chunk's
# memory in the splitting pass stays bounded, and a chunk's worker reads segment after segment.
SEGMENT_BYTES = 8 * 1024 * 1024
_LEVEL = 1  # the splitting pass is one worker ahead of many: speed over ratio
_STDLIB = b"~"  # a line the standard library wrote (never the first byte of JSON)


def encode_row(row: SourceRow) -> bytes:
    """One row as a line of a chunk file."""
    reason = bad_line_reason(row.cells)
    if reason is not None:
        return orjson.dumps({"bad": reason, "row": row.number}) + b"\n"
    line = [row.number, *row.cells]
    if all(cell.__class__ is str for cell in row.cells) or not _non_finite(row.cells):
        try:
            return orjson.dumps(line) + b"\n"
        except orjson.JSONEncodeError:
            pass  # an integer beyond 64 bits, a lone surrogate, deep nesting
    # orjson would write NaN as null and reads big integers back as floats: such a line is the
    # standard library's, marked so that it is read back by the standard library too.
    try:
        return _STDLIB + json.dumps(line, ensure_ascii=True).encode() + b"\n"
    except RecursionError:
        return orjson.dumps({"bad": "JSON nested too deeply to read", "row": row.number}) + b"\n"


def _non_finite(value: object) -> bool:
    """Whether a NaN or an infinity is anywhere in a JSON value."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list):
        return any(_non_finite(item) for item in value)
    if isinstance(value, dict):
        return any(_non_finite(item) for item in value.values())
    return False


class ChunkEncoder:
    """Compresses one chunk's rows, handing back a finished segment whenever enough is buffered."""

    def __init__(self, segment_bytes: int = SEGMENT_BYTES) -> None:
        self._segment_bytes = segment_bytes
        self._compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, 31)  # 31: a gzip member
        self._buffer = bytearray()
        self._lines: list[bytes] = []
        self._pending = 0
        self.rows = 0

    def add(self, row: SourceRow) -> bytes | None:
        """Add a row; returns a finished segment (gzip bytes) once the buffer is full."""
        line = encode_row(row)
        self._lines.append(line)
        self._pending += len(line)
        self.rows += 1
        if self._pending >= 64 * 1024:
            self._buffer += self._compressor.compress(b"".join(self._lines))
            self._lines.clear()
            self._pending = 0
            if len(self._buffer) >= self._segment_bytes:
                return self.finish()
        return None

    def finish(self) -> bytes | None:
        """The last segment (None when nothing was added since the last one)."""
        if not self._lines and not self._buffer and self._pending == 0:
            return None
        data = (
            bytes(self._buffer) + self._compressor.compress(b"".join(self._lines)) + self._compressor.flush()
        )
        self._compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, 31)
        self._buffer = bytearray()
        self._lines.clear()
        self._pending = 0
        return data


def chunk_rows(segments: Iterable[IO[bytes]]) -> Iterator[SourceRow]:
    """The rows of a chunk's segments, in order (a damaged segment is a FileProblem)."""
    for stream in segments:
        with stream:
            yield from _segment_rows(stream)


def _segment_rows(stream: IO[bytes]) -> Iterator[SourceRow]:
    inflate = zlib.decompressobj(31)
    rest = b""
    while True:
        data = stream.read(1024 * 1024)
        try:
            text = rest + (inflate.decompress(data) if data else inflate.flush())
        except zlib.error as error:
            raise FileProblem(f"a chunk of this import is damaged ({error}); retry the import") from None
        lines = text.split(b"\n")
        rest = lines.pop()
        for line in lines:
            yield _decode(line)
        if not data:
            break
    if rest or not inflate.eof:
        raise FileProblem("a chunk of this import is cut short; retry the import")


def _decode(line: bytes) -> SourceRow:
    try:
        value = json.loads(line[1:]) if line[:1] == _STDLIB else orjson.loads(line)
        if isinstance(value, dict):
            return SourceRow(int(value["row"]), [bad_line(str(value["bad"]))], None)
        return SourceRow(int(value[0]), value[1:], None)
    except (ValueError, KeyError, IndexError, TypeError):
        raise FileProblem("a chunk of this import is damaged; retry the import") from None
