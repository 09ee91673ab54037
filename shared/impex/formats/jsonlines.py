"""JSON Lines and JSON: a streaming JSON Lines reader, and JSON Lines and JSON array writers."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from impex.formats.columns import (
    MARK_EVERY,
    MAX_BLANK_RUN,
    Column,
    SourceRow,
    progress_mark,
    too_many_blank_lines,
)
from impex.formats.errors import FileProblem
from impex.formats.text import LineSource, Sink, TextOut
from impex.formats.values import object_encoder

UNKNOWN_KEY_SAMPLE = 20


class JsonLinesReader:
    """One JSON object per line (row numbers are line numbers); the first object's keys are the header."""

    def __init__(self, lines: LineSource, *, header: list[str] | None = None, rows_done: int = 0) -> None:
        self._lines = lines
        self._iterator = iter(lines)
        self._line_number = rows_done
        self._buffered: SourceRow | None = None
        # Keys later lines have that the header lacks: counted, with a bounded sample of their names,
        # so memory never grows with the file.
        self._unknown_keys = 0
        self._unknown_sample: list[str] = []
        self.header = header if header is not None else self._read_header()
        self._known = frozenset(self.header)

    def _end(self) -> int | None:
        return self._lines.offset if self._lines.byte_exact else None

    def _read_header(self) -> list[str]:
        for line in self._iterator:
            self._line_number += 1
            if not line.strip():
                continue
            try:
                first = json.loads(line)
            except (ValueError, RecursionError):
                raise FileProblem(
                    f"line {self._line_number} is not valid JSON, and the first object names the columns"
                ) from None
            if not isinstance(first, dict):
                raise FileProblem("JSON Lines files hold one JSON object per line")
            header = [str(key) for key in first]
            if _lone_surrogate(line, first):
                raise FileProblem(
                    f"line {self._line_number} {LONE_SURROGATE}, and the first object names the columns"
                )
            self._buffered = SourceRow(self._line_number, [first.get(key) for key in header], self._end())
            return header
        raise FileProblem("the file has no JSON objects")

    def rows(self) -> Iterator[SourceRow]:
        """Records in order; a line that is not a JSON object yields a row carrying the reason."""
        if self._buffered is not None:
            yield self._buffered
            self._buffered = None
        blank = 0
        for line in self._iterator:
            self._line_number += 1
            if not line.strip():
                blank += 1
                if blank % MARK_EVERY == 0:
                    if blank > MAX_BLANK_RUN:
                        raise too_many_blank_lines(self._line_number)
                    yield progress_mark(self._line_number, self._end())
                continue
            blank = 0
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                yield SourceRow(self._line_number, [_BadLine(f"not valid JSON ({error.msg})")], self._end())
                continue
            except RecursionError:
                yield SourceRow(self._line_number, [_BadLine("JSON nested too deeply to read")], self._end())
                continue
            except ValueError as error:  # e.g. an integer longer than Python converts
                yield SourceRow(self._line_number, [_BadLine(f"not readable JSON ({error})")], self._end())
                continue
            if not isinstance(value, dict):
                yield SourceRow(self._line_number, [_BadLine("not a JSON object")], self._end())
                continue
            if _lone_surrogate(line, value):
                yield SourceRow(self._line_number, [_BadLine(LONE_SURROGATE)], self._end())
                continue
            if not value.keys() <= self._known:
                self._note_unknown(value)
            yield SourceRow(self._line_number, [value.get(key) for key in self.header], self._end())

    def _note_unknown(self, value: dict[str, Any]) -> None:
        for key in value:  # in the line's order, so the sample is the same on every run
            if key in self._known:
                continue
            self._unknown_keys += 1
            if len(self._unknown_sample) < UNKNOWN_KEY_SAMPLE and key not in self._unknown_sample:
                self._unknown_sample.append(str(key)[:100])

    def take_unknown_keys(self) -> tuple[int, list[str]]:
        """Keys outside the header seen since the last call (how many, and up to 20 of their names)."""
        taken = self._unknown_keys, self._unknown_sample
        self._unknown_keys, self._unknown_sample = 0, []
        return taken


@dataclass(frozen=True)
class _BadLine:
    reason: str


LONE_SURROGATE = "holds a lone UTF-16 surrogate escape (like \\ud800), which is not text"


def _lone_surrogate(line: str, value: Any) -> bool:
    """Whether a decoded line holds a lone surrogate (JSON allows the escape; no text can hold it,
    and DynamoDB refuses it): checked only for lines that have such an escape at all."""
    if "\\ud" not in line and "\\uD" not in line:
        return False
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def bad_line(reason: str) -> _BadLine:
    """The cell of a record that could not be read, carrying the reason (what rows() yields)."""
    return _BadLine(reason)


def bad_line_reason(cells: list[Any]) -> str | None:
    """The reason a JSON Lines row could not be read, or None for a good row."""
    return cells[0].reason if len(cells) == 1 and isinstance(cells[0], _BadLine) else None


class JsonLinesWriter:
    """One JSON object per line; numbers stay numbers, dates are ISO 8601 text."""

    resumable = True

    def __init__(self, sink: Sink, columns: Sequence[Column], *, compress: bool = False) -> None:
        self._out = TextOut(sink, compress=compress)
        self._encode = object_encoder(columns)

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        """Write rows of typed values, in column order."""
        self.write_objects([self._encode(row) for row in rows])

    def write_objects(self, objects: Sequence[str]) -> None:
        """Write rows already encoded as JSON objects."""
        if objects:
            self._out.write("\n".join(objects) + "\n")

    def resume_state(self) -> dict[str, Any]:
        """Nothing beyond the bytes already written is needed to carry on."""
        return {}

    def finish(self) -> None:
        """JSON Lines needs no trailer."""

    def close(self) -> None:
        """End the gzip member, if any."""
        self._out.close()


class JsonArrayWriter:
    """One JSON array, streamed: `[` … `]`, objects separated by commas."""

    resumable = True

    def __init__(
        self, sink: Sink, columns: Sequence[Column], *, resume: dict[str, Any] | None = None
    ) -> None:
        self._out = TextOut(sink, compress=False)
        self._encode = object_encoder(columns)
        self._started = bool(resume and resume.get("started"))
        if resume is None:
            self._out.write("[")

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        """Write rows of typed values, in column order, as objects of the array."""
        self.write_objects([self._encode(row) for row in rows])

    def write_objects(self, objects: Sequence[str]) -> None:
        """Write rows already encoded as JSON objects, as elements of the array."""
        parts = []
        for text in objects:
            parts.append(("," if self._started else "") + "\n" + text)
            self._started = True
        if parts:
            self._out.write("".join(parts))

    def resume_state(self) -> dict[str, Any]:
        """Whether an object was written already (the next one then needs a comma)."""
        return {"started": self._started}

    def finish(self) -> None:
        """Close the array."""
        self._out.write("\n]\n" if self._started else "]\n")

    def close(self) -> None:
        """Nothing is buffered."""
        self._out.close()
