"""Workbooks people send besides .xlsx (.xls, .xlsb, .ods): told apart by content, read with the same
rules, and measured before the reader runs, so no stray cell, repeat count or declared dimension
makes it allocate past the budget (a process abort is the one failure Python cannot report)."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from impex.formats.errors import FileProblem
from impex.formats.workbooks import WorkbookKind, check_footprint, workbook_kind
from tests.workbooks import (
    biff12_record,
    grid,
    ods_bytes,
    ods_cell,
    ole2_bytes,
    workbook_bytes,
    xls_bytes,
    xlsb_bytes,
    xlsb_sheet_records,
)

BUDGET = 442 * 1024**2
TABLE = grid([["email", "age"], ["a@x.io", 30], ["b@x.io", 41]])


@pytest.mark.parametrize("kind", ["xlsx", "xls", "xlsb", "ods"])
def test_a_workbook_is_told_by_its_content_not_its_name(tmp_path, kind):
    # Given a workbook saved under a name that says nothing
    path = tmp_path / "upload.csv"
    path.write_bytes(workbook_bytes(kind, TABLE))
    # When its kind is detected, Then it is what its content is
    assert workbook_kind(path) == WorkbookKind(kind)


def odt_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        archive.writestr("content.xml", "<office:document-content/>")
    return out.getvalue()


def plain_zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("photos/a.txt", "not a workbook")
    return out.getvalue()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (lambda: ole2_bytes("WordDocument", b"hello"), "a Word document, not a workbook"),
        (lambda: ole2_bytes("EncryptedPackage", b"\0" * 64), "password-protected"),
        (lambda: ole2_bytes("Anything", b"x"), "OLE2 compound file (an old Office format), but not an Excel"),
        (lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\xff" * 600, "damaged Excel 97-2003 (.xls)"),
        (odt_bytes, "an OpenDocument text document, not a spreadsheet"),
        (plain_zip_bytes, "a zip archive but not a workbook"),
    ],
)
def test_a_container_that_is_no_workbook_is_refused_saying_what_it_is(tmp_path, content, message):
    path = tmp_path / "upload"
    path.write_bytes(content())
    with pytest.raises(FileProblem) as raised:
        workbook_kind(path)
    assert message in raised.value.message


def far_xls() -> bytes:
    return xls_bytes({(0, 0): "email", (0, 1): "age", (65535, 255): "x"})


def far_xlsb() -> bytes:
    return xlsb_bytes({(0, 0): "email", (0, 1): "age", (1_048_575, 16_383): "x"})


def far_ods() -> bytes:
    # LibreOffice's own idiom: repeated empty rows, then one value far to the right
    rows = (
        f"<table:table-row>{ods_cell('email')}{ods_cell('age')}</table:table-row>"
        '<table:table-row table:number-rows-repeated="1000000"><table:table-cell/></table:table-row>'
        f"<table:table-row>{ods_cell(None, 16_000)}{ods_cell('x')}</table:table-row>"
    )
    return ods_bytes({}, rows_xml=rows)


def declared_xls() -> bytes:
    """A two-cell .xls whose DIMENSIONS record declares 4 billion rows by 255 columns (calamine's reader
    reserves room for the declared range before reading cells; counting it keeps upgrades safe)."""
    data = bytearray(xls_bytes(TABLE))
    at = data.index(b"\x00\x02\x0e\x00")  # the DIMENSIONS record: type 0x0200, 14 bytes
    struct.pack_into("<IIHHH", data, at + 4, 0, 0xFFFF_FFFF, 0, 0xFF, 0)
    return bytes(data)


def repeated_ods() -> bytes:
    """One value repeated across 16,000 columns of 60,000 rows: 960 million cells from 300 bytes."""
    rows = (
        f"<table:table-row>{ods_cell('email')}{ods_cell('age')}</table:table-row>"
        f'<table:table-row table:number-rows-repeated="60000">{ods_cell("x", 16_000)}</table:table-row>'
    )
    return ods_bytes({}, rows_xml=rows)


SPARSE = {
    "xls": far_xls,
    "xlsb": far_xlsb,
    "ods": far_ods,
    "declared-xls": declared_xls,
    "repeated-ods": repeated_ods,
}


@pytest.mark.parametrize("name", sorted(SPARSE))
def test_a_sparse_workbook_is_a_file_problem_never_a_process_abort(tmp_path, name):
    # Given a tiny workbook whose reader would allocate gigabytes
    path = tmp_path / "upload"
    path.write_bytes(SPARSE[name]())
    assert path.stat().st_size < 20_000
    # When a fresh process opens it exactly as the importer does
    outcome, detail, _ = open_in_a_fresh_process(path)
    # Then it reports a file problem saying why, and exits normally
    assert outcome == "problem", detail
    assert "more than the importer can give" in detail and "delete the stray cells" in detail


def test_trailing_repeated_empty_rows_and_columns_cost_nothing(tmp_path):
    # Given an .ods as LibreOffice saves it: the data, then the rest of the sheet as repeated empties
    rows = (
        f"<table:table-row>{ods_cell('email')}{ods_cell('age')}{ods_cell(None, 16_382)}</table:table-row>"
        f"<table:table-row>{ods_cell('a@x.io')}{ods_cell(30)}{ods_cell(None, 16_382)}</table:table-row>"
        '<table:table-row table:number-rows-repeated="1048574"><table:table-cell '
        'table:number-columns-repeated="16384"/></table:table-row>'
    )
    path = tmp_path / "upload"
    path.write_bytes(ods_bytes({}, rows_xml=rows))
    # When it is measured and read
    footprint = check_footprint(path, WorkbookKind.ODS, None, BUDGET)
    outcome, rows_read, _ = open_in_a_fresh_process(path)
    # Then only the two used rows count, and the one data row is read
    assert footprint.worst_cells == 4
    assert (outcome, rows_read) == ("ok", 1)


@pytest.mark.parametrize(
    ("kind", "far_cell"),
    [("xls", (20_000, 199)), ("xlsb", (40_000, 99)), ("ods", (20_000, 199))],
)
def test_the_measured_footprint_covers_what_the_reader_allocates(tmp_path, kind, far_cell):
    # Given a workbook with a four-million-cell range, and the same data without the far cell
    sparse, small = tmp_path / "sparse", tmp_path / "small"
    sparse.write_bytes(workbook_bytes(kind, {**TABLE, far_cell: "x"}))
    small.write_bytes(workbook_bytes(kind, TABLE))
    # When each is measured and then read in a fresh process
    footprint = check_footprint(sparse, WorkbookKind(kind), None, 4 * 1024**3)
    _, _, sparse_peak_mb = open_in_a_fresh_process(sparse, budget=4 * 1024**3)
    _, _, small_peak_mb = open_in_a_fresh_process(small, budget=4 * 1024**3)
    # Then the footprint is at least what reading took (give or take allocator noise)
    grown_mb = sparse_peak_mb - small_peak_mb
    assert grown_mb > 50, f"the sparse {kind} grew the reader by only {grown_mb} MB: not a test of the model"
    assert footprint.bytes / 1024**2 >= grown_mb - 16, (footprint, grown_mb)


def test_a_panic_inside_the_reader_is_a_file_problem(tmp_path):
    # Given an .xlsb whose cell points at shared string 99 of none (the Rust reader panics on it)
    sheet = xlsb_sheet_records({}).replace(
        biff12_record(0x92),
        biff12_record(0x00, struct.pack("<IIHBBBI", 0, 0, 300, 0, 0, 0, 0))
        + biff12_record(0x07, struct.pack("<III", 0, 0, 99))
        + biff12_record(0x92),
    )
    path = tmp_path / "upload"
    path.write_bytes(xlsb_bytes({}, sheet_records=sheet))
    # When it is opened, Then the panic is reported as the workbook being unreadable
    outcome, detail, _ = open_in_a_fresh_process(path)
    assert outcome == "problem" and "the workbook cannot be read" in detail, detail


def test_a_repeat_count_that_is_no_number_is_a_file_problem(tmp_path):
    path = tmp_path / "upload"
    rows = f'<table:table-row table:number-rows-repeated="many">{ods_cell("x")}</table:table-row>'
    path.write_bytes(ods_bytes({}, rows_xml=rows))
    with pytest.raises(FileProblem, match="number-rows-repeated is 'many', not a number"):
        check_footprint(path, WorkbookKind.ODS, None, BUDGET)


def test_only_the_named_xlsb_sheet_is_measured(tmp_path):
    path = tmp_path / "upload"
    path.write_bytes(xlsb_bytes(TABLE, sheet="People"))
    assert check_footprint(path, WorkbookKind.XLSB, "People", BUDGET).worst_cells == 6
    assert check_footprint(path, WorkbookKind.XLSB, "Nope", BUDGET).bytes == 0  # the reader says no sheet


def open_in_a_fresh_process(path: Path, *, budget: int = BUDGET) -> tuple[str, object, int]:
    """Open the file through open_source in a child process (an abort would kill only it): the
    outcome, the rows read or the problem, and the child's peak RSS in MB."""
    probe = f"""
import io
from pathlib import Path
from impex.formats.errors import FileProblem
from impex.formats.file_format import FileFormat
from impex.formats.source import ReadOptions, ResumePoint, SourceSpec, open_source
from impex.formats.xlsx import ArchiveLimits
data = Path({str(path)!r}).read_bytes()
limits = ArchiveLimits(max_sheet_bytes={budget})
spec = SourceSpec(size=len(data), expected=FileFormat.XLSX, options=ReadOptions(), resume=ResumePoint(),
                  spool_dir=Path({str(path.parent)!r}), archive_limits=limits)
def peak():
    # VmHWM, not ru_maxrss: a child inherits its parent's ru_maxrss across fork and exec.
    status = open("/proc/self/status").read().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) // 1024
try:
    source = open_source(data, lambda start: io.BytesIO(data[start:]), spec)
    rows = sum(1 for row in source.rows(after_row=0) if row.cells)
    source.close()
    print("ok", rows, peak(), sep="\\t")
except FileProblem as problem:
    print("problem", problem.message, peak(), sep="\\t")
"""
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    outcome, detail, peak_mb = result.stdout.strip().split("\t")
    return outcome, int(detail) if outcome == "ok" else detail, int(peak_mb)


@pytest.mark.parametrize("kind", ["xls", "xlsb"])
def test_fuzz_found_a_sheet_wider_than_excels_last_column_is_refused(tmp_path, kind):
    # Found by `make fuzz`: an .xlsb cell at column 983,040 passed the memory budget (one row of
    # 983,040 cells is 31 MB as a range), but the one row became a million-element list, mapped and
    # converted cell by cell, and the importer grew by 169 MB. No Excel sheet is wider than XFD.
    wide = {(0, 0): "id", (0, 1): "n", (1, 0): "x"}
    if kind == "xlsb":
        wide[(0, 983_040)] = "far"
    path = tmp_path / "upload"
    data = workbook_bytes(kind, wide)
    if kind == "xls":  # BIFF8 columns are 16-bit: move the second header cell (a LabelSst) to column 65,535
        label = b"\xfd\x00\x0a\x00" + struct.pack("<HH", 0, 1)
        assert label in data
        data = data.replace(label, b"\xfd\x00\x0a\x00" + struct.pack("<HH", 0, 0xFFFF), 1)
    path.write_bytes(data)
    with pytest.raises(FileProblem, match="more than Excel's 16,384"):
        check_footprint(path, WorkbookKind(kind), None, BUDGET)


def test_an_xlsx_reference_past_column_xfd_is_refused(tmp_path):
    import openpyxl

    from impex.formats.xlsx import ArchiveLimits, check_xlsx

    book = openpyxl.Workbook()
    book.active["A1"] = "id"
    path = tmp_path / "wide.xlsx"
    book.save(path)
    forged = tmp_path / "forged.xlsx"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(forged, "w") as out:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"</row>", b'<c r="ZZZ1" t="inlineStr"><is><t>far</t></is></c></row>', 1)
            out.writestr(item, data)
    with pytest.raises(FileProblem, match="past Excel's last column"):
        check_xlsx(forged, ArchiveLimits(), None, BUDGET)


def test_fuzz_found_an_xlsb_record_claiming_more_bytes_than_it_holds_is_refused(tmp_path):
    # Found by `make fuzz`: a 1.2 KB .xlsb whose record claimed 158 MB made the reader allocate the
    # 158 MB before finding the bytes missing (and the importer grew by 151 MB for nothing).
    claimed = 150_000_000
    length = bytes([(claimed >> shift & 0x7F) | (0x80 if shift < 21 else 0) for shift in (0, 7, 14, 21)])
    sheet = biff12_record(0x81) + b"\x06" + length + b"short"
    path = tmp_path / "upload"
    path.write_bytes(xlsb_bytes({}, sheet_records=sheet))
    with pytest.raises(FileProblem, match="a record claims 150,000,000 bytes where 5 are left"):
        check_footprint(path, WorkbookKind.XLSB, None, BUDGET)
    outcome, detail, peak_mb = open_in_a_fresh_process(path)
    assert outcome == "problem" and "truncated or damaged" in detail
    assert peak_mb < 140, f"refusing it still peaked at {peak_mb} MB"


def test_an_xls_whose_sector_chain_loops_is_refused_before_the_reader_follows_it(tmp_path):
    import olefile

    # Given an .xls whose directory's sector chain points back at itself (the reader would append
    # the same sector for ever)
    data = bytearray(xls_bytes(TABLE))
    path = tmp_path / "upload"
    path.write_bytes(data)
    with olefile.OleFileIO(str(path)) as ole:
        directory, sector_size = ole.first_dir_sector, ole.sectorsize
    (fat_sector,) = struct.unpack_from("<I", data, 76)  # the first FAT sector, from the header's DIFAT
    struct.pack_into("<I", data, sector_size * (fat_sector + 1) + 4 * directory, directory)
    path.write_bytes(data)
    # When it is measured, Then it is refused as damaged, naming the loop
    with pytest.raises(FileProblem, match="sector chains loops"):
        check_footprint(path, WorkbookKind.XLS, None, BUDGET)


def test_fuzz_found_a_row_record_before_the_sheet_data_does_not_hide_the_cells_after_it(tmp_path):
    # Found by the fuzz slice of `make test`: an .xlsb whose BrtBeginSheet was overwritten into a
    # 1-byte row record. The scan stopped there; the reader skipped it, read the cells after it and
    # reserved their 870,000-row x 3,650-column range: 101 GB, and the process aborted.
    far = {(0, 0): "id", (870_216, 3_651): 1.5, (3, 1): True}
    records = xlsb_sheet_records(far)
    sheet = biff12_record(0x00, b"\x00") + records[len(biff12_record(0x81)) :]
    path = tmp_path / "upload"
    path.write_bytes(xlsb_bytes({}, sheet_records=sheet))
    # When it is measured, Then the range is seen, and refused, before the reader allocates it
    with pytest.raises(FileProblem, match="spans 3,178,"):
        check_footprint(path, WorkbookKind.XLSB, None, BUDGET)
    outcome, detail, peak_mb = open_in_a_fresh_process(path)
    assert outcome == "problem" and "delete the stray cells" in str(detail)
    assert peak_mb < 140, f"refusing it still peaked at {peak_mb} MB"


@pytest.mark.parametrize(
    ("renames", "target"),
    [
        ({"xl/worksheets/sheet1.bin": "xl/WORKSHEETS/Sheet1.BIN"}, None),  # found in any case
        ({"xl/worksheets/sheet1.bin": "xl\\worksheets\\sheet1.bin"}, None),  # and with either slash
        ({"xl/worksheets/sheet1.bin": "xl/xl/worksheets/sheet1.bin"}, b"xl/worksheets/sheet1.bin"),
    ],
    ids=["member-case", "backslashes", "target-from-xl"],
)
def test_a_sparse_xlsb_is_measured_wherever_the_reader_would_find_its_sheet(tmp_path, renames, target):
    # Given the sparse .xlsb, its sheet stored where calamine looks for it (the first two made the
    # check measure nothing, and the reader abort allocating 512 GiB; the third is the target
    # resolved as calamine resolves it, from xl/)
    path = tmp_path / "renamed.xlsb"
    with zipfile.ZipFile(io.BytesIO(far_xlsb())) as source, zipfile.ZipFile(path, "w") as out:
        for item in source.infolist():
            data = source.read(item.filename)
            if target is not None and item.filename == "xl/_rels/workbook.bin.rels":
                data = data.replace(b'Target="worksheets/sheet1.bin"', b'Target="' + target + b'"')
                assert target in data
            out.writestr(renames.get(item.filename, item.filename), data)
    # When its footprint is checked, then it is refused
    with pytest.raises(FileProblem, match="17,179,869,184 cells"):
        check_footprint(path, WorkbookKind.XLSB, None, 442 * 1024**2)


def test_an_xlsb_sheet_whose_part_cannot_be_found_is_refused_not_left_to_the_reader(tmp_path):
    # Given the sparse .xlsb with its sheet's relation pointing at a part the archive lacks
    path = tmp_path / "lost.xlsb"
    with zipfile.ZipFile(io.BytesIO(far_xlsb())) as source, zipfile.ZipFile(path, "w") as out:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/_rels/workbook.bin.rels":
                data = data.replace(b'Target="worksheets/sheet1.bin"', b'Target="worksheets/gone.bin"')
                assert b"gone.bin" in data
            out.writestr(item, data)
    # Then its footprint check refuses it, saying so
    with pytest.raises(FileProblem, match="names a part it does not hold"):
        check_footprint(path, WorkbookKind.XLSB, None, 442 * 1024**2)
