"""Excel reading: typed cells, empty rows, blank headers, named sheets; zip bombs and XML bombs refused."""

from __future__ import annotations

import zipfile
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest

from impex.formats.errors import FileProblem
from impex.formats.xlsx import ArchiveLimits, WorkbookReader, check_archive, check_xlsx


def xlsx_in_one_pass(path: Path, limits: ArchiveLimits) -> None:
    """The importer's check of an .xlsx: the archive's and the sheet extent's, in one pass."""
    check_xlsx(path, limits, None, 442 * 1024**2)


# Every hostile archive is refused alike by the archive check and by the importer's one-pass check.
EITHER_CHECK = pytest.mark.parametrize(
    "check", [check_archive, xlsx_in_one_pass], ids=["archive", "one-pass"]
)


def workbook(path: Path, rows: list[list], *, sheet: str = "Sheet", extra_sheet: str | None = None) -> Path:
    book = openpyxl.Workbook()
    active = book.active
    active.title = sheet
    for row in rows:
        active.append(row)
    if extra_sheet:
        book.create_sheet(extra_sheet).append(["other"])
    book.save(path)
    return path


def test_cells_keep_their_types(tmp_path):
    path = workbook(
        tmp_path / "t.xlsx",
        [
            ["id", "when", "at", "qty", "price", "ok", "twice"],
            [1, date(2024, 1, 2), datetime(2024, 1, 2, 3, 4, 5), 3, 2.5, True, "=D2*2"],
        ],
    )
    check_archive(path, ArchiveLimits())
    reader = WorkbookReader(path)
    assert reader.header == ["id", "when", "at", "qty", "price", "ok", "twice"]
    [row] = list(reader.rows())
    assert row.number == 2
    identifier, when, at, qty, price, ok, _ = row.cells
    assert identifier == 1 and qty == 3  # integral floats compare equal; the converter makes them ints
    assert when == date(2024, 1, 2)
    assert at == datetime(2024, 1, 2, 3, 4, 5)
    assert price == 2.5 and ok is True


def test_cached_formula_values_are_read(tmp_path):
    # openpyxl writes formulas without results; build the cached value the way Excel saves it.
    path = tmp_path / "f.xlsx"
    workbook(path, [["a", "b"], [2, 0]])
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    sheet = sheet.replace('<c r="B2" t="n"><v>0</v></c>', '<c r="B2"><f>A2*2</f><v>4</v></c>')
    parts["xl/worksheets/sheet1.xml"] = sheet.encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, data)
    [row] = list(WorkbookReader(path).rows())
    assert row.cells == [2, 4]


def test_empty_rows_are_skipped_and_numbers_kept(tmp_path):
    path = workbook(tmp_path / "e.xlsx", [["a", None, "c"], [1, None, 3], [None, None, None], [4, 5, 6]])
    reader = WorkbookReader(path)
    assert reader.header == ["a", "", "c"]
    assert [(r.number, r.cells) for r in reader.rows()] == [(2, [1, None, 3]), (4, [4, 5, 6])]


def test_blank_text_cells_are_empty_and_falsy_values_are_not(tmp_path):
    # Given rows of whitespace-only text, a row with one such cell, and a row of zero and false
    rows = [["a", "b"], ["  ", "\t\u3000"], ["x", " "], [0, False], ["", "y"]]
    reader = WorkbookReader(workbook(tmp_path / "w.xlsx", rows))
    # Then whitespace-only text reads as an empty cell (a row of nothing else is skipped), while
    # zero and false are values
    assert [(r.number, r.cells) for r in reader.rows()] == [
        (3, ["x", None]),
        (4, [0, False]),
        (5, [None, "y"]),
    ]


def test_a_named_sheet_is_read_and_an_unknown_one_named(tmp_path):
    path = workbook(tmp_path / "s.xlsx", [["a"], [1]], sheet="Main", extra_sheet="Second")
    assert WorkbookReader(path, sheet="Second").header == ["other"]
    with pytest.raises(FileProblem, match="no sheet 'Nope'; its sheets are: Main, Second"):
        WorkbookReader(path, sheet="Nope")


def test_a_zip_that_is_not_a_workbook_is_refused(tmp_path):
    from impex.formats.workbooks import workbook_kind

    path = tmp_path / "doc.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("word/document.xml", "<w/>")
    with pytest.raises(FileProblem, match="a zip archive but not a workbook"):
        workbook_kind(path)


@EITHER_CHECK
def test_a_zip_bomb_is_refused_by_ratio(tmp_path, check):
    path = workbook(tmp_path / "bomb.xlsx", [["a"], [1]])
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/media/padding.bin", b"\0" * (50 * 1024 * 1024))
    with pytest.raises(FileProblem, match="zip bomb"):
        check(path, ArchiveLimits(max_uncompressed_bytes=1024**3, max_ratio=200))


@EITHER_CHECK
def test_a_zip_bomb_is_refused_by_total_size(tmp_path, check):
    path = workbook(tmp_path / "big.xlsx", [["a"], [1]])
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/media/noise.bin", bytes(range(256)) * 20_000)
    with pytest.raises(FileProblem, match="inflates past 1 MB"):
        check(path, ArchiveLimits(max_uncompressed_bytes=1024**2, max_ratio=10_000))


@EITHER_CHECK
def test_a_size_that_lies_is_caught(tmp_path, check):
    path = workbook(tmp_path / "liar.xlsx", [["a"], [1]])
    data = bytearray(path.read_bytes())
    # Corrupt the declared uncompressed size of the first entry in the central directory.
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = (1).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(FileProblem):
        check(path, ArchiveLimits())


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>
<row r="1"><c r="A1" t="inlineStr"><is><t>&lol3;</t></is></c></row></sheetData></worksheet>"""


@EITHER_CHECK
def test_an_xml_bomb_is_refused_before_any_parser_sees_it(tmp_path, check):
    path = workbook(tmp_path / "xml.xlsx", [["a"], [1]])
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    parts["xl/worksheets/sheet1.xml"] = BILLION_LAUGHS
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, data)
    with pytest.raises(FileProblem, match="XML entities"):
        check(path, ArchiveLimits())


@EITHER_CHECK
@pytest.mark.parametrize("part", ["xl/workbook.xml", "xl/_rels/workbook.xml.rels", "[Content_Types].xml"])
def test_entities_in_the_parts_that_name_the_sheet_are_refused_before_they_are_parsed(tmp_path, check, part):
    # Given a workbook whose part (the one-pass check reads the workbook and its relations first, to
    # find the sheet) declares entities
    path = workbook(tmp_path / "parts.xlsx", [["a"], [1]])
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    declaration, _, body = (
        parts[part].partition(b"?>") if parts[part].startswith(b"<?xml") else (b"", b"", parts[part])
    )
    parts[part] = declaration + b"?>" * bool(declaration) + b'<!DOCTYPE x [<!ENTITY e "e">]>' + body
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, data)
    # Then it is refused as an XML bomb, not by an XML parser's own error
    with pytest.raises(FileProblem, match="XML entities"):
        check(path, ArchiveLimits())


def test_openpyxl_the_fallback_reader_uses_defusedxml():
    from openpyxl.xml import DEFUSEDXML

    assert DEFUSEDXML is True
