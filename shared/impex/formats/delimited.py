"""Delimited text (CSV, TSV): the delimiter sniffer, a streaming RFC 4180 reader, and the CSV writer."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
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
from impex.formats.text import MAX_LINE_BYTES, LineSource, Sink, TextOut
from impex.formats.values import csv_row_encoder

DELIMITERS = (",", ";", "\t", "|")


def sniff_delimiter(sample: str) -> str:
    """Whichever of , ; tab | splits the first records into the same number of fields (a comma when
    none does). Records are parsed, so delimiters, tabs and newlines inside quoted fields count for
    nothing."""
    best, best_score = ",", -1.0
    for candidate in DELIMITERS:
        counts = _field_counts(sample, candidate)
        if not counts or counts[0] < 2:
            continue
        consistent = sum(1 for count in counts if count == counts[0]) / len(counts)
        score = consistent * 1000 + counts[0]
        if score > best_score:
            best, best_score = candidate, score
    return best


def _field_counts(sample: str, delimiter: str, records: int = 20) -> list[int]:
    """Fields per non-blank record of the sample's first records (the last, perhaps cut off, left out)."""
    last_break = max(sample.rfind("\n"), sample.rfind("\r"))
    complete = sample if last_break in (-1, len(sample) - 1) else sample[:last_break]
    reader = csv.reader(io.StringIO(complete, newline=""), delimiter=delimiter, quotechar='"', strict=False)
    counts: list[int] = []
    try:
        for record in reader:
            if any(cell.strip() for cell in record):
                counts.append(len(record))
            if len(counts) == records:
                break
    except csv.Error:
        return counts
    return counts


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
        try:
            for record in self._reader:
                if any(cell.strip() for cell in record):
                    return [cell.strip().lstrip("\ufeff") for cell in record]
        except csv.Error as error:
            raise FileProblem(f"the CSV's header row is malformed: {error}") from None
        raise FileProblem("the file has no header row")

    def rows(self) -> Iterator[SourceRow]:
        """Data records in order; blank records are counted but not yielded."""
        number = 1 + self._rows_done
        exact = self._lines.byte_exact
        blank = 0
        try:
            for record in self._reader:
                number += 1
                if not record or (len(record) == 1 and not record[0].strip()):
                    blank += 1
                    if blank % MARK_EVERY == 0:
                        if blank > MAX_BLANK_RUN:
                            raise too_many_blank_lines(number)
                        yield progress_mark(number, self._lines.offset if exact else None)
                    continue
                blank = 0
                yield SourceRow(number, record, self._lines.offset if exact else None)
        except csv.Error as error:
            raise FileProblem(f"the CSV is malformed near row {number + 1}: {error}") from None


class CsvWriter:
    """RFC 4180, UTF-8 (optionally with a BOM for Excel), any one-character delimiter."""

    resumable = True

    def __init__(
        self,
        sink: Sink,
        columns: Sequence[Column],
        *,
        delimiter: str = ",",
        bom: bool = False,
        neutralize_formulas: bool = True,
        compress: bool = False,
        resume: bool = False,
    ) -> None:
        self._out = TextOut(sink, compress=compress)
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, delimiter=delimiter, lineterminator="\r\n")
        self._encode = csv_row_encoder(columns, neutralize_formulas)
        if not resume:
            if bom:
                self._out.write("\ufeff")
            self._csv.writerow([c.name for c in columns])
            self._flush()

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        """Write rows of typed values, in column order."""
        encode = self._encode
        self.write_cells([encode(row) for row in rows])

    def write_cells(self, rows: Sequence[Sequence[str]]) -> None:
        """Write rows already encoded as cell texts (neutralised, if they are to be)."""
        self._csv.writerows(rows)
        self._flush()

    def _flush(self) -> None:
        self._out.write(self._buffer.getvalue())
        self._buffer.seek(0)
        self._buffer.truncate()

    def resume_state(self) -> dict[str, Any]:
        """Nothing beyond the bytes already written is needed to carry on."""
        return {}

    def finish(self) -> None:
        """A CSV needs no trailer."""

    def close(self) -> None:
        """End the gzip member, if any."""
        self._out.close()
