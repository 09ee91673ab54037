"""Which rows a workbook's reader hands on, numbered as the sheet numbers them: calamine's (every kind)
and openpyxl's streaming reader (an .xlsx calamine cannot read, or one whose cells are placed by order)
give the same header, rows and numbers for the same sheet."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from impex.formats import xlsx
from impex.formats.errors import FileProblem
from impex.formats.workbooks import WorkbookKind
from impex.formats.xlsx import WorkbookReader
from tests.unit.test_sparse_workbooks import positional_workbook, read_in_a_fresh_process
from tests.workbooks import Cells, workbook_bytes


def read(path: Path, kind: WorkbookKind = WorkbookKind.XLSX, *, streaming: bool = False) -> dict[str, Any]:
    """What a reader makes of the sheet: its header, numbered rows and row count, or its problem."""
    try:
        reader = WorkbookReader(path, kind=kind, streaming=streaming)
        rows = [(row.number, row.cells) for row in reader.rows() if row.cells]  # not the progress marks
    except FileProblem as problem:
        return {"problem": problem.message}
    return {"header": reader.header, "rows": rows, "total_rows": reader.total_rows}


def saved(tmp_path: Path, kind: str, cells: Cells, name: str = "upload") -> Path:
    path = tmp_path / f"{name}.{kind}"
    path.write_bytes(workbook_bytes(kind, cells))
    return path


@pytest.mark.parametrize("kind", ["xlsx", "xls", "xlsb", "ods"])
def test_a_sheet_that_starts_below_its_first_row_keeps_the_sheets_row_numbers(tmp_path, kind):
    # Given a sheet whose header is in row 3 (from column C), its data in rows 4 and 6
    cells = {(2, 2): "email", (2, 3): "age", (3, 2): "a@x.io", (3, 3): 30, (5, 2): "b@x.io"}
    path = saved(tmp_path, kind, cells)
    # When it is read
    result = read(path, WorkbookKind(kind))
    # Then the rows carry the numbers the sheet shows them under (the ones row errors name)
    assert result["header"] == ["email", "age"]
    assert result["rows"] == [(4, ["a@x.io", 30]), (6, ["b@x.io", None])]


@pytest.mark.parametrize("kind", ["xlsx", "xls", "xlsb", "ods"])
def test_a_sheet_without_cells_has_no_header_row_not_a_reader_failure(tmp_path, kind):
    # Given a workbook whose sheet holds no cell at all
    path = saved(tmp_path, kind, {})
    # When it is read, Then the problem is the missing header, said as such
    assert read(path, WorkbookKind(kind)) == {"problem": "the sheet has no header row"}


def test_the_streaming_reader_gives_a_row_wider_than_the_header_as_calamine_does(tmp_path):
    # Given a sheet whose third row has a cell right of the header's last column
    cells = {(0, 0): "email", (0, 1): "name", (1, 0): "a@x.io", (2, 0): "b@x.io", (2, 2): "extra"}
    path = saved(tmp_path, "xlsx", cells)
    # When both readers read it
    dense, streaming = read(path), read(path, streaming=True)
    # Then both list the extra column with no header, and no row is ragged
    assert dense["header"] == streaming["header"] == ["email", "name", ""]
    assert dense == streaming


def test_cells_far_below_over_many_columns_are_read_without_stepping_through_the_empty_rows(
    tmp_path, monkeypatch
):
    # Given a sheet whose cells start in row 200, 50 columns wide (10,000 empty cells above them), and
    # a reader that steps through at most 1,000
    monkeypatch.setattr(xlsx, "MAX_CELLS_ABOVE", 1_000)
    cells = {(199, 0): "email", (199, 49): "note", (200, 0): "a@x.io"}
    path = saved(tmp_path, "xlsx", cells)
    streamed = []
    monkeypatch.setattr(xlsx, "_streaming_rows", _recorded(xlsx._streaming_rows, streamed))
    # When it is read, Then the streaming reader reads it (not calamine's iterator), as calamine would
    result = read(path)
    assert streamed == [path]
    assert result["header"] == ["email", *[""] * 48, "note"]
    assert result["rows"] == [(201, ["a@x.io", *[None] * 49])]
    # And a workbook no other reader reads is refused, saying where its cells start
    for kind in ("xlsb", "ods"):
        problem = read(saved(tmp_path, kind, cells), WorkbookKind(kind))["problem"]
        assert "start at row 200 and span 50 columns" in problem, problem


def _recorded(streaming_rows: Any, paths: list[Path]) -> Any:
    def reading(path: Path, sheet: str | None) -> Any:
        paths.append(path)
        return streaming_rows(path, sheet)

    return reading


def test_two_cells_at_the_bottom_of_every_column_neither_hang_nor_exhaust_a_worker(tmp_path):
    # Given the hostile .xlsx: a header from A1000000 to XFD1000000 and a row under it (a range of two
    # rows; calamine's iterator would step through 16 billion empty cells above it, for minutes on end)
    cells = {(999_999, 0): "email", (999_999, 16_383): "x", (1_000_000, 0): "a@x.io"}
    path = saved(tmp_path, "xlsx", cells)
    # When a fresh process opens it as the importer does
    started = time.monotonic()
    outcome = read_in_a_fresh_process(path)  # its own timeout: 120 s
    # Then its one data row is read, promptly
    assert outcome == ("ok", 1), outcome
    assert time.monotonic() - started < 120


# ---- both readers, the same sheet -------------------------------------------------------------------

TEXT = st.text(alphabet="abcxyz@. 19", min_size=1, max_size=6).filter(lambda text: not text.isspace())
VALUE = st.one_of(TEXT, st.integers(-1000, 1000), st.booleans())
GRIDS = st.dictionaries(st.tuples(st.integers(0, 6), st.integers(0, 4)), VALUE, max_size=20)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cells=GRIDS)
def test_both_readers_give_the_same_header_rows_and_numbers_for_any_sheet(tmp_path, cells):
    # Given any small sheet (cells anywhere: gaps, short and long rows, blank rows and columns)
    path = saved(tmp_path, "xlsx", cells, name="grid")
    # When calamine and the streaming reader each read it
    dense, streaming = read(path), read(path, streaming=True)
    # Then they agree on everything (or on the problem)
    assert dense == streaming


ROWS = st.lists(st.lists(VALUE, min_size=0, max_size=5), min_size=1, max_size=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=ROWS)
def test_both_readers_agree_on_a_sheet_whose_cells_are_placed_by_order(tmp_path, rows):
    # Given rows of cells without references (each placed after the last), of any lengths
    xml = b"".join(
        b'<row r="%d">' % (number + 1) + b"".join(map(_positional_cell, values)) + b"</row>"
        for number, values in enumerate(rows)
    )
    path = positional_workbook(tmp_path / "positional.xlsx", xml)
    # When both readers read it, Then they agree
    assert read(path) == read(path, streaming=True)


def _positional_cell(value: Any) -> bytes:
    if isinstance(value, bool):
        return b'<c t="b"><v>%d</v></c>' % value
    if isinstance(value, int):
        return b"<c><v>%d</v></c>" % value
    # Spaces kept as Excel writes them: without xml:space="preserve" calamine trims the text, openpyxl not.
    return b'<c t="inlineStr"><is><t xml:space="preserve">%s</t></is></c>' % value.encode()
