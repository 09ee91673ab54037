"""impex's XLSX writer against the reference library (issue #14): generated rows of every kind,
edge values included, written by SheetXmlWriter and by xlsxwriter (as impex used it before: the
same typed-cell rules), read back by openpyxl, give the same values, types and number formats; and
hostile text stays text."""

from __future__ import annotations

import zipfile
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import openpyxl
import xlsxwriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from impex.formats.columns import Column, ColumnKind
from impex.formats.sheet_xml import SheetXmlWriter, column_letters
from impex.formats.values import neutralize, plain_text

COLUMNS = [Column(f"c_{kind.value}", kind) for kind in ColumnKind]
DIFFERENTIAL = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference(path: str, columns: list[Column], rows: list[list[Any]], *, rows_per_sheet: int) -> None:
    """The same rows through xlsxwriter's constant_memory mode, cell by cell, by the typed-cell rules."""
    book = xlsxwriter.Workbook(
        path,
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_numbers": False,
            "strings_to_urls": False,
        },
    )
    bold = book.add_format({"bold": True})
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    moment = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    sheets, row_number, sheet = 0, 0, None

    def new_sheet() -> Any:
        nonlocal sheets, row_number
        sheets += 1
        created = book.add_worksheet("Export" if sheets == 1 else f"Export {sheets}")
        for number, column in enumerate(columns):
            created.write_string(0, number, column.name, bold)
        created.freeze_panes(1, 0)
        created.autofilter(0, 0, rows_per_sheet - 1, len(columns) - 1)
        row_number = 0
        return created

    sheet = new_sheet()
    for values in rows:
        if row_number + 1 >= rows_per_sheet:
            sheet = new_sheet()
        row_number += 1
        for number, value in enumerate(values):
            if value is None:
                continue
            if isinstance(value, bool):
                sheet.write_boolean(row_number, number, value)
            elif isinstance(value, int | float | Decimal):
                sheet.write_number(row_number, number, float(value))
            elif isinstance(value, datetime):
                sheet.write_datetime(row_number, number, value.astimezone(UTC).replace(tzinfo=None), moment)
            elif isinstance(value, date):
                sheet.write_datetime(row_number, number, datetime(value.year, value.month, value.day), day)
            else:
                sheet.write_string(
                    row_number, number, neutralize(value if isinstance(value, str) else plain_text(value))
                )
    book.close()


def read_back(path: str) -> list[tuple[str, list[list[tuple[Any, str, str]]]]]:
    """Every sheet's cells as openpyxl reads them: (value, data type, number format if a date)."""
    book = openpyxl.load_workbook(path)
    return [
        (
            sheet.title,
            [
                [(cell.value, cell.data_type, cell.number_format if cell.is_date else "") for cell in row]
                for row in sheet.iter_rows()
            ],
        )
        for sheet in book.worksheets
    ]


# Text as customers write it: control characters, Excel's own escapes, astral characters, leading
# and trailing spaces, markup, formulas, and now and then longer than a cell may hold.
texts = st.one_of(
    st.text(max_size=12),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=8),
    st.sampled_from(
        ["_x0041_", "a_x000D_b", "\r\n", " lead", "trail ", "\x00\x01\x1f", "\ufffe", "=1+1", "@x"]
    ),
    st.sampled_from(["<b>bold</b>", "a & b < c > d", "x" * 33_000, "😀" * 17_000]),
).filter(lambda text: not (text.startswith("<r>") and text.endswith("</r>")))  # xlsxwriter's raw XML
values = st.one_of(
    st.none(),
    texts,
    st.integers(min_value=-(10**20), max_value=10**20),
    st.booleans(),
    st.decimals(allow_nan=False, allow_infinity=False, places=6, min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.dates(min_value=date(1900, 3, 1)),
    st.datetimes(
        min_value=datetime(1900, 3, 2),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-3, minutes=-30))]),
    ),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@DIFFERENTIAL
@given(rows=st.lists(st.lists(values, min_size=len(COLUMNS), max_size=len(COLUMNS)), max_size=12))
def test_the_writer_gives_what_xlsxwriter_gives_read_back_by_openpyxl(tmp_path_factory, rows):
    # Given generated rows, and a sheet that holds 5 rows (header included), so some split
    directory = tmp_path_factory.mktemp("xlsx")
    ours, theirs = str(directory / "ours.xlsx"), str(directory / "theirs.xlsx")
    # When both writers write them
    writer = SheetXmlWriter(ours, COLUMNS, rows_per_sheet=5)
    writer.write_rows(rows)
    writer.close()
    reference(theirs, COLUMNS, rows, rows_per_sheet=5)
    # Then openpyxl reads the same sheets, values, types and date formats from both
    assert read_back(ours) == read_back(theirs)


def test_a_sheet_is_frozen_filtered_and_bold_headed_and_typed(tmp_path):
    # Given rows of every kind
    path = tmp_path / "typed.xlsx"
    writer = SheetXmlWriter(str(path), COLUMNS)
    row = [
        "=cmd|' /C calc'!A0",
        7,
        Decimal("19.99"),
        True,
        date(2024, 2, 29),
        datetime(2024, 5, 1, 13, tzinfo=UTC),
    ]
    writer.write_rows([[*row, {"a": [1]}]])
    writer.close()
    # When openpyxl opens the file
    sheet = openpyxl.load_workbook(path).active
    # Then the header is bold, frozen and filtered, and each cell has its type and format
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:G1048576" and sheet["A1"].font.b
    cells = next(iter(sheet.iter_rows(min_row=2)))
    assert [cell.value for cell in cells] == [
        "'=cmd|' /C calc'!A0",
        7,
        19.99,
        True,
        datetime(2024, 2, 29),
        datetime(2024, 5, 1, 13),
        '{"a":[1]}',
    ]
    assert [cell.data_type for cell in cells] == ["s", "n", "n", "b", "d", "d", "s"]
    assert cells[4].number_format == "yyyy-mm-dd" and cells[5].number_format == "yyyy-mm-dd hh:mm:ss"


def test_markup_in_a_value_stays_text_and_the_file_stays_well_formed(tmp_path):
    # Given text that is sheet XML (xlsxwriter wrote "<r>…</r>" into the sheet as it was)
    hostile = '<r><t>x</t></r></is></c></row></sheetData><sheetData><row r="9"><c><v>1</v></c>'
    path = tmp_path / "hostile.xlsx"
    writer = SheetXmlWriter(str(path), [Column("note", ColumnKind.STRING)], neutralize_formulas=False)
    writer.write_rows([[hostile], ["<r>plain</r>"]])
    writer.close()
    # When the file is opened
    sheet = openpyxl.load_workbook(path).active
    # Then each value reads back as the very text it was, in its own cell
    assert [row[0] for row in sheet.iter_rows(values_only=True)] == ["note", hostile, "<r>plain</r>"]


def test_a_large_sheet_is_streamed_into_the_zip_in_constant_memory(tmp_path):
    # Given 30,000 rows written in pages
    path = tmp_path / "big.xlsx"
    writer = SheetXmlWriter(str(path), COLUMNS[:3])
    for page in range(12):
        writer.write_rows([[f"r{page}-{i}", i, Decimal(i) / 4] for i in range(2500)])
    writer.close()
    # When the archive is read
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        sheet = archive.getinfo("xl/worksheets/sheet1.xml")
    # Then it is a deflated workbook with every part, and all rows are there
    assert {"[Content_Types].xml", "_rels/.rels", "xl/workbook.xml", "xl/styles.xml"} <= names
    assert sheet.compress_type == zipfile.ZIP_DEFLATED and sheet.compress_size < sheet.file_size / 3
    rows = list(openpyxl.load_workbook(path, read_only=True).active.iter_rows(values_only=True))
    assert len(rows) == 30_001 and rows[-1] == ("r11-2499", 2499, 624.75)


def test_column_letters_run_past_z():
    assert [column_letters(n) for n in (0, 25, 26, 51, 701, 702, 16_383)] == [
        "A",
        "Z",
        "AA",
        "AZ",
        "ZZ",
        "AAA",
        "XFD",
    ]


def test_rows_of_long_text_are_flushed_by_size_so_memory_stays_bounded(tmp_path):
    # Given 1,000 rows of 30,000 characters each (30 MB of text, fewer rows than a flush by count)
    import tracemalloc

    path = tmp_path / "long.xlsx"
    writer = SheetXmlWriter(str(path), [Column("note", ColumnKind.STRING)])
    rows = [[f"{i:05d}" + "x" * 29_995] for i in range(1000)]
    # When they are written in one call
    tracemalloc.start()
    try:
        writer.write_rows(rows)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    writer.close()
    # Then the writer held a few megabytes at a time, not the 30 MB of rows, and every row is there
    assert peak < 20 * 1024**2, peak  # without the size bound: 29 MB
    sheet = openpyxl.load_workbook(path, read_only=True).active
    values = [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert len(values) == 1000 and values[-1].startswith("00999") and len(values[-1]) == 30_000
