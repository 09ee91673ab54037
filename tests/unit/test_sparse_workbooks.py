"""No workbook, whatever its cells' extent or its declared dimension, makes a reader allocate beyond
the memory budget; a process abort is the one failure Python cannot report, so none may happen."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pytest

from impex.formats.errors import FileProblem
from impex.formats.xlsx import CELL_BYTES, ArchiveLimits, check_xlsx

BUDGET = 442 * 1024**2


def workbook(path: Path, cells: dict[str, object], *, dimension: str | None = None) -> Path:
    """A small workbook with these cells (and, if given, a forged declared dimension)."""
    book = openpyxl.Workbook()
    for reference, value in cells.items():
        book.active[reference] = value
    book.save(path)
    if dimension is not None:
        forged = path.with_suffix(".forged.xlsx")
        with zipfile.ZipFile(path) as source, zipfile.ZipFile(forged, "w", zipfile.ZIP_DEFLATED) as out:
            for item in source.infolist():
                data = source.read(item.filename)
                if item.filename == "xl/worksheets/sheet1.xml":
                    data = re.sub(rb'<dimension ref="[^"]*"', f'<dimension ref="{dimension}"'.encode(), data)
                out.writestr(item, data)
        return forged
    return path


@pytest.mark.parametrize(("far", "cells"), [("XFD1048576", 16384 * 1048576), ("ALL1048576", 1000 * 1048576)])
def test_a_sheet_whose_cells_span_too_far_is_refused_before_any_reader_runs(tmp_path, far, cells):
    # Given a tiny workbook with one cell at A1 and one far away
    path = workbook(tmp_path / "sparse.xlsx", {"A1": "email", far: "x"})
    assert path.stat().st_size < 10_000
    # When its extent is checked against the budget
    with pytest.raises(FileProblem) as raised:
        check_xlsx(path, ArchiveLimits(), None, BUDGET)
    # Then it is refused, saying how far the cells span and what to do
    assert f"span A1:{far} ({cells:,} cells)" in raised.value.message
    assert "delete the stray cells" in raised.value.message


def test_a_sheet_within_the_budget_passes_with_its_extent(tmp_path):
    cells = {f"{column}{row}": row for column in "ABCDEFGHIJ" for row in range(1, 501)}
    extent = check_xlsx(workbook(tmp_path / "dense.xlsx", cells), ArchiveLimits(), None, BUDGET)
    assert extent is not None and extent.reference() == "A1:J500" and extent.cells == 5000
    assert extent.cells * CELL_BYTES < BUDGET


def test_only_the_named_sheet_is_measured(tmp_path):
    book = openpyxl.Workbook()
    book.active["A1"] = "fine"
    far = book.create_sheet("far")
    far["A1"], far["XFD1048576"] = "email", "x"
    path = tmp_path / "two.xlsx"
    book.save(path)
    assert check_xlsx(path, ArchiveLimits(), None, BUDGET).reference() == "A1:A1"
    with pytest.raises(FileProblem, match="A1:XFD1048576"):
        check_xlsx(path, ArchiveLimits(), "far", BUDGET)


def test_a_forged_declared_dimension_costs_nothing(tmp_path):
    # Given two real cells under a declared dimension of the whole sheet
    path = workbook(tmp_path / "declared.xlsx", {"A1": "email", "A2": "a@x.io"}, dimension="A1:XFD1048576")
    # Then the extent is the cells', and reading the sheet takes no more memory than a small one
    assert check_xlsx(path, ArchiveLimits(), None, BUDGET).reference() == "A1:A2"
    assert read_in_a_fresh_process(path) == ("ok", 1)


def test_a_sparse_workbook_ends_as_a_file_problem_never_a_process_abort(tmp_path):
    # Given the 1.6 KB workbook that made the dense reader ask for 512 GiB and abort
    path = workbook(tmp_path / "bomb.xlsx", {"A1": "email", "XFD1048576": "x"})
    # When a fresh process opens it exactly as the importer does
    outcome = read_in_a_fresh_process(path)
    # Then it reports a file problem and exits normally
    assert outcome[0] == "problem" and "A1:XFD1048576" in outcome[1]


def read_in_a_fresh_process(path: Path) -> tuple[str, object]:
    """Open the workbook through open_source in a child process (an abort would kill only it)."""
    probe = f"""
import io, sys
from pathlib import Path
from impex.formats.errors import FileProblem
from impex.formats.file_format import FileFormat
from impex.formats.source import ReadOptions, ResumePoint, SourceSpec, open_source
from impex.formats.xlsx import ArchiveLimits
data = Path({str(path)!r}).read_bytes()
limits = ArchiveLimits(max_sheet_bytes={BUDGET})
spec = SourceSpec(size=len(data), expected=FileFormat.XLSX, options=ReadOptions(), resume=ResumePoint(),
                  spool_dir=Path({str(path.parent)!r}), archive_limits=limits)
try:
    source = open_source(data, lambda start: io.BytesIO(data[start:]), spec)
    rows = sum(1 for row in source.rows(after_row=0) if row.cells)  # not the progress marks
    source.close()
    # VmHWM, not ru_maxrss: a child inherits its parent's ru_maxrss across fork and exec.
    peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
    print("ok", rows, peak // 1024)
except FileProblem as problem:
    print("problem", problem.message)
"""
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    kind, _, rest = result.stdout.strip().partition(" ")
    if kind == "ok":
        rows, peak_mb = (int(part) for part in rest.split())
        assert peak_mb < 300, f"reading a two-cell sheet peaked at {peak_mb} MB"
        return kind, rows
    return kind, rest


def test_fuzz_found_a_workbook_without_sheets_is_a_file_problem(tmp_path):
    # Found by `make fuzz`: a workbook whose sheet list is empty made the openpyxl fallback index an
    # empty list (IndexError), which was taken for a transient failure.
    from impex.formats.xlsx import WorkbookReader

    path = tmp_path / "empty.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "xl/workbook.xml",
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheets/></workbook>',
        )
        archive.writestr("[Content_Types].xml", "<Types/>")
    with pytest.raises(FileProblem):
        WorkbookReader(path)


def raw_sheet_workbook(path: Path, sheet_xml: bytes) -> Path:
    """A workbook whose sheet XML is exactly ``sheet_xml`` (to hide references the way an attacker would)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "xl/workbook.xml",
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
            '<sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>',
        )
        archive.writestr(
            "xl/_rels/workbook.xml.rels",
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
        )
        archive.writestr("xl/worksheets/sheet1.xml", sheet_xml)
    return path


@pytest.mark.parametrize(
    "far_cell",
    [
        b'<x:c r="XFD1048576"/>',  # a namespace prefix
        b"<c r='XFD1048576'/>",  # single quotes
        b'<c r = "XFD1048576"/>',  # spaces around =
        b'<c t="s" f=">" r="XFD1048576"/>',  # a ">" inside another attribute's value
        b'<c r="xfd1048576"/>',  # lower case
    ],
)
def test_a_far_cell_cannot_hide_from_the_extent_scan(tmp_path, far_cell):
    sheet = b'<worksheet><sheetData><row r="1"><c r="A1"/>' + far_cell + b"</row></sheetData></worksheet>"
    with pytest.raises(FileProblem, match="A1:XFD1048576"):
        check_xlsx(raw_sheet_workbook(tmp_path / "hidden.xlsx", sheet), ArchiveLimits(), None, BUDGET)


# Spaces compress a thousandfold, past the zip-bomb ratio: what these test is the scan behind it.
PADDING_ALLOWED = ArchiveLimits(max_ratio=1_000_000)


def test_a_far_cell_split_across_the_scans_chunks_is_still_seen(tmp_path):
    from impex.formats.xlsx import SCAN_CHUNK

    # Given a reference padded with spaces so that it straddles the boundary of the scan's chunks
    start = b'<worksheet><sheetData><row r="1"><c r="A1"/><c r'
    padding = b" " * (SCAN_CHUNK - len(start) - 3)
    sheet = start + padding + b'= "XFD1048576"/></row></sheetData></worksheet>'
    with pytest.raises(FileProblem, match="A1:XFD1048576"):
        check_xlsx(raw_sheet_workbook(tmp_path / "split.xlsx", sheet), PADDING_ALLOWED, None, BUDGET)


def test_more_than_a_chunk_of_bare_text_is_refused(tmp_path):
    from impex.formats.xlsx import SCAN_CHUNK

    sheet = (
        b'<worksheet><sheetData><row r="1"><c r' + b" " * (3 * SCAN_CHUNK) + b'="XFD1"/></row></sheetData>'
    )
    with pytest.raises(FileProblem, match=r"no markup|a tag over 1 MB long"):
        check_xlsx(raw_sheet_workbook(tmp_path / "bare.xlsx", sheet), PADDING_ALLOWED, None, BUDGET)


@pytest.mark.parametrize(
    ("far_cell", "says"),
    [
        # calamine reads every one of these; the first two made it allocate 200 million and 37 million
        # cells from a file of a few hundred bytes, the scan having matched only 1-3 letters, 1-7 digits
        (b'<c r="B99999999"/>', "past Excel's last row"),
        (b'<c r="AAAA2000"/>', "past Excel's last column"),
        (b'<c r="A' + b"9" * 5000 + b'"/>', "past Excel's last row"),  # int() refuses 4,301+ digits
        (b'<c r="' + b"Z" * 50_000 + b'1"/>', "past Excel's last column"),
    ],
    ids=["8-digit-row", "4-letter-column", "5000-digit-row", "50000-letter-column"],
)
def test_a_reference_past_excels_last_row_or_column_is_refused_whatever_its_length(tmp_path, far_cell, says):
    # Given a sheet with a cell at A1 and one whose reference names a row or column no sheet has
    sheet = b'<worksheet><sheetData><row r="1"><c r="A1"/>' + far_cell + b"</row></sheetData></worksheet>"
    path = raw_sheet_workbook(tmp_path / "far.xlsx", sheet)
    # When its extent is checked
    with pytest.raises(FileProblem) as raised:
        check_xlsx(path, PADDING_ALLOWED, None, BUDGET)
    # Then it is refused before any reader runs, saying why and what to do
    assert says in raised.value.message and "save the sheet as CSV" in raised.value.message


def test_a_reference_with_leading_zeros_counts_as_the_row_it_names(tmp_path):
    # Given references whose row numbers have leading zeros (calamine reads A0000000002 as row 2)
    sheet = (
        b'<worksheet><sheetData><row r="1"><c r="A1"/></row><row r="2"><c r="C0000000002"/>'
        b'<c r="B00000000000000000000000000000000000000000001"/></row></sheetData></worksheet>'
    )
    # Then the extent is the rows and columns they name
    extent = check_xlsx(raw_sheet_workbook(tmp_path / "zeros.xlsx", sheet), ArchiveLimits(), None, BUDGET)
    assert extent is not None and extent.reference() == "A1:C2"


def shared_strings_workbook(path: Path, strings: bytes, *, member: str = "xl/sharedStrings.xml") -> Path:
    """A workbook whose one cell is the first of a shared-strings table of ``strings`` (the <si>
    elements), after a comment of random bytes that keeps the table's compression ratio within the
    zip-bomb guard's; the table stored under ``member``."""
    import os

    plain = workbook(path.with_suffix(".plain.xlsx"), {"A1": "replaced"})
    noise = os.urandom(len(strings) // 100).hex().encode()
    table = b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><!--' + noise + b"-->"
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":  # its inline text becomes string 0
                inline = b't="inlineStr"><is><t>replaced</t></is>'
                assert inline in data, "the edit would forge nothing"
                data = data.replace(inline, b't="s"><v>0</v>')
            out.writestr(item, data)
        out.writestr(member, table + strings + b"</sst>")
    return path


@pytest.mark.parametrize("member", ["xl/sharedStrings.xml", "xl/SHAREDSTRINGS.XML"])
def test_a_shared_strings_table_too_large_to_hold_is_refused_before_any_reader_runs(tmp_path, member):
    # Given a workbook whose shared-strings table holds a million empty strings: 5 MB of XML that the
    # reader holds in 24+ MB (calamine finds the table whatever the case of its name)
    path = shared_strings_workbook(tmp_path / "strings.xlsx", b"<si/>" * 1_000_000, member=member)
    assert path.stat().st_size < 200_000
    # When it is checked against a 16 MB budget
    with pytest.raises(FileProblem) as raised:
        check_xlsx(path, ArchiveLimits(), None, 16 * 1024**2)
    # Then it is refused, saying why and what to do
    message = raised.value.message
    assert "shared strings" in message and "(16 MB)" in message and "save the sheet as CSV" in message


def test_a_shared_strings_table_within_the_budget_passes_and_reads(tmp_path):
    # Given a workbook with ten thousand shared strings, plain and rich, some split by whitespace
    strings = b"".join(
        b"<si><t>v%d</t></si>" % i if i % 3 else b"<si >\n<r><t>a</t></r><r><t>%d</t></r></si>" % i
        for i in range(10_000)
    )
    path = shared_strings_workbook(tmp_path / "fine.xlsx", strings)
    # Then the extent check passes, and the sheet reads its one cell
    assert check_xlsx(path, ArchiveLimits(), None, BUDGET).reference() == "A1:A1"
    from impex.formats.xlsx import WorkbookReader

    assert WorkbookReader(path).header == ["a0"]  # the first string's two rich-text runs


def test_the_shared_strings_are_counted_exactly_wherever_the_chunks_split_them():
    from impex.formats.xlsx import STRING_BYTES, _SharedStrings

    # Given a table of strings in every form the reader takes (prefixed, with attributes, empty)
    table = b"".join(
        [b"<si>a</si>", b"<x:si/>", b'<si\tcount="1"/>', b"<si\n>b</si>", b"<s>x</s>", b"<t>s</t>"]
    )
    expected = 4
    for size in range(1, len(table) + 1):
        # When it is fed in chunks of every size
        counter = _SharedStrings(budget_bytes=10**9)
        for start in range(0, len(table), size):
            counter.feed(table[start : start + size])
        # Then every string is counted once, and nothing that is not one
        assert counter._strings == expected, size
    # And the estimate is what the budget is checked against
    over = _SharedStrings(budget_bytes=expected * STRING_BYTES + len(table) - 1)
    with pytest.raises(FileProblem):
        over.feed(table)


@pytest.mark.parametrize("member", ["xl/workbook.xml", "xl/_rels/workbook.xml.rels", "XL/Workbook.XML"])
def test_a_workbook_part_too_large_to_parse_is_refused_before_it_is_parsed(tmp_path, member, monkeypatch):
    import impex.formats.xlsx as xlsx

    # Given a workbook whose own part (the sheets' list, or its relations) holds a megabyte of defined
    # names (the cap is lowered to half of that: a real one takes 16 MB), after random bytes that keep
    # its compression ratio within the zip-bomb guard's
    monkeypatch.setattr(xlsx, "WORKBOOK_PART_BYTES", 512 * 1024)
    path = workbook(tmp_path / "plain.xlsx", {"A1": "email"})
    names = b"".join(b'<definedName name="n%d">S!A1</definedName>' % i for i in range(25_000))
    forged = tmp_path / "names.xlsx"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(forged, "w", zipfile.ZIP_DEFLATED) as out:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename.lower() == member.lower():
                data = data.replace(
                    b"</", b"<!--" + os.urandom(6000).hex().encode() + b"-->" + names + b"</", 1
                )
                out.writestr(member, data)
            else:
                out.writestr(item, data)
    assert forged.stat().st_size < 100_000
    # When it is checked
    with pytest.raises(FileProblem) as raised:
        check_xlsx(forged, ArchiveLimits(), None, BUDGET)
    # Then it is refused before anything parses it, saying why and what to do
    assert "inflates past" in raised.value.message
    assert "re-save the file from Excel" in raised.value.message


def rearranged(
    path: Path, out: Path, *, names: dict[str, str], edits: dict[str, tuple[bytes, bytes]]
) -> Path:
    """``path``'s archive with some entries renamed (old -> new) and some edited (name -> (old, new))."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename in edits:
                data = data.replace(*edits[item.filename])
            archive.writestr(names.get(item.filename, item.filename), data)
    return out


SHEET, RELATIONS = "xl/worksheets/sheet1.xml", "xl/_rels/workbook.xml.rels"


@pytest.mark.parametrize(
    ("names", "edits"),
    [
        ({SHEET: "xl/worksheets/SHEET1.xml"}, {}),  # calamine finds parts in any case
        ({SHEET: "xl\\worksheets\\sheet1.xml"}, {}),  # and with either slash
        ({SHEET: "xl/xl/worksheets/sheet1.xml"}, {RELATIONS: (b"/xl/worksheets/", b"xl/worksheets/")}),
        ({}, {RELATIONS: (b"/xl/worksheets/sheet1.xml", b"/XL/WORKSHEETS/SHEET1.XML")}),
        (
            {},
            {"xl/workbook.xml": (b' xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"', b"")},
        ),
    ],
    ids=["member-case", "backslashes", "target-from-xl", "target-case", "no-default-namespace"],
)
def test_the_sheet_is_measured_wherever_the_reader_would_find_it(tmp_path, names, edits):
    # Given the 1.6 KB workbook whose dense range aborts the reader, its sheet named the way calamine
    # still finds it (each of these made the check measure nothing, and the reader abort)
    sparse = workbook(tmp_path / "sparse.xlsx", {"A1": "email", "XFD1048576": "x"})
    with zipfile.ZipFile(sparse) as archive:
        assert b"/xl/worksheets/sheet1.xml" in archive.read(RELATIONS)  # what the edits rely on
    path = rearranged(sparse, tmp_path / "renamed.xlsx", names=names, edits=edits)
    # When it is checked, then it is refused, naming the span
    with pytest.raises(FileProblem, match="A1:XFD1048576"):
        check_xlsx(path, ArchiveLimits(), None, BUDGET)


def test_two_parts_under_one_name_as_the_reader_reads_names_are_refused(tmp_path):
    # Given a workbook holding its sheet twice, the second under another case
    path = workbook(tmp_path / "plain.xlsx", {"A1": "email"})
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("XL/worksheets/sheet1.xml", archive.read(SHEET))
    # Then it is refused, naming both: which one a reader would take is not the check's to guess
    with pytest.raises(
        FileProblem,
        match=re.escape("two parts named 'xl/worksheets/sheet1.xml' and 'XL/worksheets/sheet1.xml'"),
    ):
        check_xlsx(path, ArchiveLimits(), None, BUDGET)


def test_a_workbook_part_that_is_not_xml_is_a_file_problem_and_a_missing_one_is_the_readers(tmp_path):
    plain = workbook(tmp_path / "plain.xlsx", {"A1": "email"})
    # Given a workbook whose workbook.xml is cut short
    cut = rearranged(
        plain, tmp_path / "cut.xlsx", names={}, edits={"xl/workbook.xml": (b"</workbook>", b"<")}
    )
    # Then the check says so (it was a ParseError, retried as if transient)
    with pytest.raises(FileProblem, match=re.escape("xl/workbook.xml is not valid XML")):
        check_xlsx(cut, ArchiveLimits(), None, BUDGET)
    # And one without it measures nothing (it was a KeyError): the reader refuses it, saying so
    gone = rearranged(plain, tmp_path / "gone.xlsx", names={"xl/workbook.xml": "xl/elsewhere.xml"}, edits={})
    assert check_xlsx(gone, ArchiveLimits(), None, BUDGET) is None
    from impex.formats.xlsx import WorkbookReader

    with pytest.raises(FileProblem):
        WorkbookReader(gone)


def text_of(size: int) -> bytes:
    """``size`` bytes of text, with punctuation, that deflates about a hundredfold (under the zip-bomb
    ratio)."""
    out = bytearray(b"a" * size)
    for index, byte in zip(range(0, size, 300), os.urandom(size // 300 + 1), strict=False):
        out[index] = 97 + byte % 26
    out[150::300] = b"," * len(range(150, size, 300))
    return bytes(out)


@pytest.mark.parametrize(("text_mb", "refused"), [(20, True), (15, False)])
def test_a_sheets_range_text_and_strings_together_are_held_to_twice_the_budget(tmp_path, text_mb, refused):
    # Given a sheet whose range (A1:J40000, 12.8 MB at 32 bytes a cell) fits a 16 MB budget, and one
    # inline string of ``text_mb`` MB: alone each fits, together they need 32.8 MB or 27.8 MB
    text = text_of(text_mb * 1024**2)
    sheet = (
        b'<worksheet><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>'
        + text
        + b'</t></is></c><c r="J40000"/></row></sheetData></worksheet>'
    )
    path = raw_sheet_workbook(tmp_path / "text.xlsx", sheet)
    assert path.stat().st_size < 1024**2
    # When it is checked against the 16 MB budget (twice that for all the reader holds)
    if refused:
        # Then past 32 MB it is refused, saying what takes the memory and what to do
        with pytest.raises(FileProblem) as raised:
            check_xlsx(path, ArchiveLimits(), None, 16 * 1024**2)
        message = raised.value.message
        assert "12 MB for its cells' range, 20 MB of text" in message and "(32 MB)" in message
        assert "save the sheet as CSV" in message
    else:
        assert check_xlsx(path, ArchiveLimits(), None, 16 * 1024**2).reference() == "A1:J40000"


@pytest.mark.parametrize(
    "edit",
    [
        (b"/xl/worksheets/sheet1.xml", b"/xl/worksheets/elsewhere.xml"),  # a part the archive lacks
        (b'Id="rId1"', b'Id="rId9"'),  # no relation of the sheet's id
    ],
    ids=["missing-part", "missing-relation"],
)
def test_a_sheet_whose_part_cannot_be_found_is_refused_not_left_to_the_reader(tmp_path, edit):
    # Given a workbook whose first sheet names a part that is not there (a reader finding one some
    # other way would read a sheet nothing measured)
    plain = workbook(tmp_path / "plain.xlsx", {"A1": "email"})
    with zipfile.ZipFile(plain) as archive:
        assert edit[0] in archive.read(RELATIONS)
    path = rearranged(plain, tmp_path / "lost.xlsx", names={}, edits={RELATIONS: edit})
    # Then the check refuses it, saying so
    with pytest.raises(FileProblem, match="names a part it does not hold"):
        check_xlsx(path, ArchiveLimits(), None, BUDGET)


def test_a_sheet_name_listed_twice_is_refused(tmp_path):
    # Given a workbook listing a second sheet "far" (calamine lists <sheet> elements at any depth)
    plain = workbook(tmp_path / "plain.xlsx", {"A1": "email"})
    listed = b'<bookViews><sheet name="Sheet" sheetId="9" r:id="rId9" />'
    path = rearranged(
        plain, tmp_path / "twice.xlsx", names={}, edits={"xl/workbook.xml": (b"<bookViews>", listed)}
    )
    # Then the check refuses it: which of the two a reader would take is not the check's to guess
    with pytest.raises(FileProblem, match="names the part of sheet 'Sheet' more than once"):
        check_xlsx(path, ArchiveLimits(), None, BUDGET)


def positional_workbook(path: Path, rows: bytes) -> Path:
    """An openpyxl workbook whose sheet's <sheetData> is ``rows`` (cells placed by order, no r)."""
    plain = workbook(path.with_suffix(".plain.xlsx"), {"A1": "x"})
    sheet = b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    sheet += rows + b"</sheetData></worksheet>"
    return _with_sheet(plain, path, sheet)


def _with_sheet(plain: Path, path: Path, sheet: bytes) -> Path:
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for item in source.infolist():
            out.writestr(item, sheet if item.filename == SHEET else source.read(item.filename))
    return path


def test_a_sheet_whose_cells_are_placed_by_order_is_read_streaming_never_densely(tmp_path):
    # Given the sheet that aborted the reader: a row of 300 cells without references, and a row
    # numbered 1,048,576 (calamine places each cell after the last, and would hold 1,048,576 x 300)
    header = b'<row r="1">' + b'<c t="inlineStr"><is><t>h</t></is></c>' * 300 + b"</row>"
    path = positional_workbook(
        tmp_path / "positional.xlsx", header + b'<row r="1048576"><c><v>1</v></c></row>'
    )
    # When it is checked, then it is known for a sheet whose range its references do not give
    extent = check_xlsx(path, ArchiveLimits(), None, BUDGET)
    assert extent is not None and extent.positional
    # And when a fresh process opens it as the importer does, it reads it (streaming), in little memory
    assert read_in_a_fresh_process(path) == ("ok", 1)


def test_a_sheet_of_cells_without_references_reads_as_its_cells_say(tmp_path):
    from impex.formats.xlsx import WorkbookReader

    # Given a sheet a writer made without cell references (its cells placed in order)
    rows = b"".join(
        b"<row>" + b"".join(b'<c t="inlineStr"><is><t>%s</t></is></c>' % text for text in line) + b"</row>"
        for line in [(b"email", b"name"), (b"a@x.io", b"A"), (b"b@x.io", b"B"), (b"c@x.io",)]
    )
    path = positional_workbook(tmp_path / "plain-order.xlsx", rows)
    extent = check_xlsx(path, ArchiveLimits(), None, BUDGET)
    assert extent is not None and extent.positional
    # Then the streaming reader gives its header and rows in order, a short row as wide as the others
    # (as calamine's rectangle has it: no ragged row)
    reader = WorkbookReader(path, streaming=True)
    assert reader.header == ["email", "name"]
    assert [row.cells for row in reader.rows()] == [["a@x.io", "A"], ["b@x.io", "B"], ["c@x.io", None]]


def test_a_cell_placed_by_order_is_seen_wherever_the_chunks_split_its_tag():
    from impex.formats.xlsx import _ExtentScan

    # Given a row whose one positional cell has a long, prefixed attribute list
    text = b'<row r="1"><c r="A1"/><c x:foo="1" s="2" t="n"><v>1</v></c></row>'
    for cut in range(1, len(text)):
        # When it is fed in two chunks, split anywhere
        scan = _ExtentScan()
        scan.feed(text[:cut])
        scan.feed(text[cut:])
        # Then the cell placed by order is seen
        assert scan.positional, cut
    # And a row of referenced cells is not taken for one
    scan = _ExtentScan()
    scan.feed(b'<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1"/></row>')
    assert not scan.positional
