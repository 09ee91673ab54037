"""Streaming readers for delimited text (CSV/TSV) and JSON Lines, with resumable byte offsets."""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, NamedTuple

from impex.formats.errors import FileProblem

CHUNK = 1024 * 1024
MAX_LINE_BYTES = 16 * 1024 * 1024
# Encodings in which a b"\n" / b"\r" byte is always a line break, so byte offsets stay exact.
_BYTE_SAFE = {"utf-8", "utf-8-sig", "cp1252", "latin-1", "iso8859-1", "ascii", "iso8859-15", "cp1250"}


class SourceRow(NamedTuple):
    """One record of a file: its row number as a spreadsheet counts it (header = 1) and its cells.

    A named tuple because a file has millions of them: it is the cheapest record type to create."""

    number: int
    cells: list[Any]
    # Byte offset just after this record in the (decompressed) file, when it can resume from there.
    end_offset: int | None


class LineSource:
    """Decoded lines of a binary stream, tracking the byte offset after each line."""

    def __init__(self, stream: IO[bytes], encoding: str, *, start_offset: int = 0, terminator: bytes = b"\n"):
        self._stream = stream
        self._encoding = encoding
        self._terminator = terminator
        self.offset = start_offset
        self.byte_exact = codecs.lookup(encoding).name in _BYTE_SAFE or encoding in _BYTE_SAFE
        self._first = start_offset == 0

    def __iter__(self) -> Iterator[str]:
        if not self.byte_exact:
            yield from self._text_lines()
            return
        pending = b""
        while True:
            chunk = self._stream.read(CHUNK)
            if not chunk:
                break
            pieces = (pending + chunk).split(self._terminator)
            pending = pieces.pop()
            if len(pending) > MAX_LINE_BYTES:
                raise FileProblem(f"a line near byte {self.offset} is longer than {MAX_LINE_BYTES} bytes")
            for piece in pieces:
                raw = piece + self._terminator
                text = self._decode(raw)
                self.offset += len(raw)
                yield text
        if pending:
            text = self._decode(pending)
            self.offset += len(pending)
            yield text

    def _decode(self, raw: bytes) -> str:
        encoding = self._encoding
        if not self._first and encoding == "utf-8-sig":
            encoding = "utf-8"
        self._first = False
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as error:
            raise FileProblem(
                f"the file is not valid {self._encoding} near byte {self.offset + error.start}; "
                "set options.encoding (e.g. cp1252 or latin-1)"
            ) from None
        if self._terminator == b"\r":
            text = text[:-1] + "\n" if text.endswith("\r") else text
        return text

    def _text_lines(self) -> Iterator[str]:
        # UTF-16 and other multi-byte encodings: decode as a stream; resume by counting records.
        reader = codecs.getreader(self._encoding)(self._stream, "strict")
        try:
            yield from io.TextIOWrapper(
                io.BufferedReader(_ReadableAdapter(reader)), encoding="utf-8", newline=""
            )
        except UnicodeDecodeError:
            raise FileProblem(f"the file is not valid {self._encoding}; set options.encoding") from None


class _ReadableAdapter(io.RawIOBase):
    """Re-encode a decoded text stream as UTF-8 bytes for TextIOWrapper's line splitting."""

    def __init__(self, reader: codecs.StreamReader) -> None:
        self._reader = reader
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            text = self._reader.read(CHUNK)
            if not text:
                return 0
            self._buffer = text.encode("utf-8")
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def first_lines_terminator(head: bytes) -> bytes:
    """b"\\r" for old Mac files (CR only), otherwise b"\\n" (LF and CRLF)."""
    return b"\r" if b"\r" in head and b"\n" not in head else b"\n"


class DelimitedReader:
    """RFC 4180 CSV/TSV: quoted delimiters, quotes and newlines; ragged rows are left to the caller."""

    def __init__(
        self,
        lines: LineSource,
        delimiter: str,
        *,
        header: list[str] | None = None,
        rows_done: int = 0,
    ) -> None:
        self._lines = lines
        csv.field_size_limit(MAX_LINE_BYTES)
        self._reader = csv.reader(
            iter(lines), delimiter=delimiter, quotechar='"', doublequote=True, strict=False
        )
        self._rows_done = rows_done
        if header is None:
            header = self._read_header()
        self.header = header

    def _read_header(self) -> list[str]:
        for record in self._reader:
            if any(cell.strip() for cell in record):
                return [cell.strip().lstrip("\ufeff") for cell in record]
        raise FileProblem("the file has no header row")

    @property
    def header_end_offset(self) -> int:
        """Byte offset just after the header (valid right after construction)."""
        return self._lines.offset

    def rows(self) -> Iterator[SourceRow]:
        """Data records in order; blank records are counted but not yielded."""
        number = 1 + self._rows_done
        exact = self._lines.byte_exact
        try:
            for record in self._reader:
                number += 1
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue
                yield SourceRow(number, record, self._lines.offset if exact else None)
        except csv.Error as error:
            raise FileProblem(f"the CSV is malformed near row {number + 1}: {error}") from None


class JsonLinesReader:
    """One JSON object per line (row numbers are line numbers); the first object's keys are the header."""

    def __init__(self, lines: LineSource, *, header: list[str] | None = None, rows_done: int = 0) -> None:
        self._lines = lines
        self._iterator = iter(lines)
        self._line_number = rows_done
        self._buffered: SourceRow | None = None
        self.extra_keys: set[str] = set()
        self.header = header if header is not None else self._read_header()

    def _end(self) -> int | None:
        return self._lines.offset if self._lines.byte_exact else None

    def _read_header(self) -> list[str]:
        for line in self._iterator:
            self._line_number += 1
            if not line.strip():
                continue
            try:
                first = json.loads(line)
            except json.JSONDecodeError:
                raise FileProblem(
                    f"line {self._line_number} is not valid JSON, and the first object names the columns"
                ) from None
            if not isinstance(first, dict):
                raise FileProblem("JSON Lines files hold one JSON object per line")
            header = [str(key) for key in first]
            self._buffered = SourceRow(self._line_number, [first.get(key) for key in header], self._end())
            return header
        raise FileProblem("the file has no JSON objects")

    @property
    def header_end_offset(self) -> int:
        """JSON Lines has no header line: a fresh read starts at the beginning."""
        return 0

    def rows(self) -> Iterator[SourceRow]:
        """Records in order; a line that is not a JSON object yields a row carrying the reason."""
        if self._buffered is not None:
            yield self._buffered
            self._buffered = None
        for line in self._iterator:
            self._line_number += 1
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                yield SourceRow(self._line_number, [_BadLine(f"not valid JSON ({error.msg})")], self._end())
                continue
            if not isinstance(value, dict):
                yield SourceRow(self._line_number, [_BadLine("not a JSON object")], self._end())
                continue
            self.extra_keys.update(key for key in value if key not in self.header)
            yield SourceRow(self._line_number, [value.get(key) for key in self.header], self._end())


@dataclass(frozen=True)
class _BadLine:
    reason: str


def bad_line_reason(cells: list[Any]) -> str | None:
    """The reason a JSON Lines row could not be read, or None for a good row."""
    return cells[0].reason if len(cells) == 1 and isinstance(cells[0], _BadLine) else None
