"""A text file may hold blank lines, but not an endless run of them: each costs a read, and a gzip file
of nothing else is a kilobyte upload per million."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from impex.formats import delimited, jsonlines
from impex.formats.errors import FileProblem
from impex.formats.file_format import FileFormat
from impex.formats.source import ReadOptions, ResumePoint, SourceSpec, open_source
from impex.formats.xlsx import ArchiveLimits

RUN = 5_000  # the cap, lowered for the test (a real one is ten million)


def read(data: bytes, expected: FileFormat, tmp_path: Path) -> list[list[object]]:
    """The data rows of ``data`` as the importer reads them (progress marks left out)."""
    spec = SourceSpec(
        size=len(data),
        expected=expected,
        options=ReadOptions(),
        resume=ResumePoint(),
        spool_dir=tmp_path,
        archive_limits=ArchiveLimits(),
    )
    source = open_source(data, lambda start: io.BytesIO(data[start:]), spec)
    try:
        return [row.cells for row in source.rows(after_row=0) if row.cells]
    finally:
        source.close()


@pytest.mark.parametrize(
    ("expected", "header", "row"),
    [(FileFormat.CSV, b"id,n\n", b"z,1\n"), (FileFormat.JSONL, b"", b'{"id": "z", "n": 1}\n')],
    ids=["csv", "jsonl"],
)
def test_a_run_of_blank_lines_past_the_cap_is_a_file_problem_and_one_under_it_is_read(
    tmp_path, monkeypatch, expected, header, row
):
    monkeypatch.setattr(delimited, "MAX_BLANK_RUN", RUN)
    monkeypatch.setattr(jsonlines, "MAX_BLANK_RUN", RUN)
    first = b'{"id": "a", "n": 0}\n' if expected is FileFormat.JSONL else b"a,0\n"
    # Given runs of blank lines under the cap, broken by rows: read, every row of them
    under = header + first + (b"\n" * (RUN - 1000) + row) * 3
    assert len(read(gzip.compress(under), expected, tmp_path)) == 4
    # Given one run past it, gzip-compressed (a few hundred bytes)
    over = header + first + b"\n" * (RUN + 1000) + row
    # Then reading it is a file problem saying what is wrong and what to do
    with pytest.raises(FileProblem, match="blank lines in a row") as raised:
        read(gzip.compress(over), expected, tmp_path)
    assert "remove them" in raised.value.message
