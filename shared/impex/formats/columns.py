"""Columns and rows as readers and writers see them: a column has a name and a kind of value."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, NamedTuple

from impex.formats.errors import FileProblem


class ColumnKind(StrEnum):
    """The kinds of values a column holds (the same words as a dataset's field types)."""

    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    JSON = "json"


class Column(NamedTuple):
    """One column of a file."""

    name: str
    kind: ColumnKind


class SourceRow(NamedTuple):
    """One record of a file: its row number as a spreadsheet counts it (header = 1) and its cells.

    A named tuple because a file has millions of them: it is the cheapest record type to create."""

    number: int
    cells: list[Any]
    # Byte offset just after this record in the (decompressed) file, when it can resume from there.
    end_offset: int | None


# Readers yield a progress mark every so many records they skip (blank ones, or ones an earlier
# invocation did), so that a file of nothing but blank lines still lets its job heartbeat and stop.
MARK_EVERY = 1000


# The most blank records a text file may hold in a row. Reading one costs ~0.4 us, so ten million cost
# seconds; a gzip file of nothing else is a 1 MB upload per billion, and no data file has such a run.
MAX_BLANK_RUN = 10_000_000


def too_many_blank_lines(number: int) -> FileProblem:
    """The problem of a file with more than MAX_BLANK_RUN blank records in a row (up to ``number``)."""
    return FileProblem(
        f"the file has over {MAX_BLANK_RUN:,} blank lines in a row (up to line {number:,}); "
        "remove them, or split the file"
    )


def progress_mark(number: int, end_offset: int | None) -> SourceRow:
    """A row with no cells: the reader has got this far without a record to hand over."""
    return SourceRow(number, [], end_offset)
