"""Fuzzing the readers, detection, mapping and conversion with Hypothesis over structured generators
for CSV, JSON Lines, XLSX parts, and .xls/.xlsb/.ods workbooks with mutated records (and raw bytes).
Whatever a file holds, the only failure allowed is a FileProblem (a job FAILED with a message); no
other exception, no hang, no memory blow-up, and no process abort (a native crash would end this
very process).

`make test` runs a seconds-long slice; `make fuzz` runs for FUZZ_SECONDS in all (660: at least 10
CPU minutes), shared among the targets. Every crash found becomes a named regression test (see
tests/unit/test_hostile_cells.py, test_csv_quirks.py and test_sparse_workbooks.py).
"""

from __future__ import annotations

import codecs
import gzip
import io
import os
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from impex.datasets.mapping import RowConverter, map_columns
from impex.datasets.model import Dataset
from impex.formats.errors import FileProblem
from impex.formats.file_format import FileFormat
from impex.formats.source import ReadOptions, ResumePoint, SourceSpec, open_source
from impex.formats.xlsx import ArchiveLimits
from tests.workbooks import ods_bytes, ods_cell, xls_bytes, xlsb_bytes, xlsb_sheet_records

TARGETS = 5
BUDGET_SECONDS = float(os.environ.get("FUZZ_SECONDS", "8")) / TARGETS
PEAK_RSS_LIMIT_MB = 1024
FUZZ = settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

DATASET = Dataset.model_validate(
    {
        "tenant": "fuzz",
        "name": "d",
        "createdAt": "x",
        "updatedAt": "x",
        "keys": ["id"],
        "fields": [
            {"name": "id", "type": "string", "required": True, "aliases": ["ID", "key"]},
            {"name": "n", "type": "integer", "constraints": {"min": -5, "max": 10**30}},
            {"name": "price", "type": "decimal"},
            {"name": "ok", "type": "boolean"},
            {"name": "day", "type": "date"},
            {"name": "at", "type": "datetime"},
            {"name": "doc", "type": "json"},
            {"name": "code", "type": "string", "constraints": {"pattern": "(a+)+$", "maxLength": 50}},
        ],
    }
)

# ---- generators -------------------------------------------------------------------------------

tricky_text = st.sampled_from(
    ['"', '""', ",", ";", "\t", "|", "\n", "\r", "\r\n", "\x00", "\ufeff", "=cmd", "é", "李", " ", "{", "["]
)
cell = st.one_of(
    st.text(max_size=12),
    st.lists(tricky_text, max_size=6).map("".join),
    st.integers().map(str),
    st.integers(min_value=0, max_value=6000).map(lambda n: "9" * n),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["2024-02-30", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "31/12/2024"]),
    st.integers(min_value=1, max_value=4000).map(lambda d: "[" * d + "]" * d),
)
header = st.lists(
    st.sampled_from(["id", "ID", "n", "price", "ok", "day", "at", "doc", "code", "x", ""]), max_size=8
)
delimiter = st.sampled_from([",", ";", "\t", "|"])
encoding = st.sampled_from(
    ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32", "cp1252", "latin-1", "cp437"]
)


@st.composite
def delimited_files(draw: st.DrawFn) -> bytes:
    """CSV/TSV text with quoting, odd line endings and blank lines, in some encoding, maybe gzipped."""
    sep = draw(delimiter)
    rows = [draw(header), *draw(st.lists(st.lists(cell, max_size=9), max_size=12))]
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    quote = draw(st.booleans())

    def field(value: str) -> str:
        return (
            '"' + value.replace('"', '""') + '"' if quote or any(c in value for c in f'{sep}"\r\n') else value
        )

    text = ending.join(sep.join(field(v) for v in row) for row in rows) + draw(st.sampled_from(["", ending]))
    text += ending * draw(st.integers(min_value=0, max_value=3))
    data = text.encode(draw(encoding), errors="replace")
    return gzip.compress(data) if draw(st.booleans()) else data


@st.composite
def json_lines_files(draw: st.DrawFn) -> bytes:
    """JSON Lines with objects, bad lines, deep nesting and huge numbers."""
    objects = draw(
        st.lists(
            st.one_of(
                st.dictionaries(st.sampled_from(["id", "n", "doc", "zz", "code"]), cell, max_size=5).map(
                    lambda d: (
                        "{"
                        + ",".join(f'"{k}": {v if v[:1] in "[9" else repr(v)}' for k, v in d.items())
                        + "}"
                    )
                ),
                cell,
                st.just(""),
            ),
            min_size=1,
            max_size=10,
        )
    )
    data = ("\n".join(objects) + "\n").encode()
    return gzip.compress(data) if draw(st.booleans()) else data


column_letters = st.sampled_from(["A", "B", "C", "Z", "AA", "ALL", "XFD", "XFE", "ZZZ"])


@st.composite
def xlsx_files(draw: st.DrawFn) -> bytes:
    """Workbook parts: a sheet of inline-string and number cells at any references (near or far)."""
    cells = []
    for _ in range(draw(st.integers(min_value=0, max_value=8))):
        reference = draw(column_letters) + str(draw(st.integers(min_value=0, max_value=2_000_000)))
        value = draw(cell).replace("&", "&amp;").replace("<", "&lt;").replace("\x00", "")
        kind = draw(st.sampled_from(["inline", "number"]))
        if kind == "inline":
            cells.append(f'<c r="{reference}" t="inlineStr"><is><t>{value}</t></is></c>')
        else:
            cells.append(f'<c r="{reference}"><v>{value[:30]}</v></c>')
    dimension = draw(st.sampled_from(["A1", "A1:XFD1048576", "A1:B2", "garbage"]))
    sheet = (
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f'<dimension ref="{dimension}"/><sheetData><row r="1">{"".join(cells)}</row></sheetData></worksheet>'
    )
    parts = {
        "[Content_Types].xml": '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.'
        'spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>',
        "xl/workbook.xml": '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
        '<sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
        'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml": sheet,
    }
    if draw(st.booleans()):
        parts.pop(draw(st.sampled_from(sorted(parts))))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in parts.items():
            archive.writestr(name, body)
    return buffer.getvalue()


legacy_value = st.one_of(
    st.text(max_size=20),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True),
    st.booleans(),
)


def _mutate(data: bytes, flips: list[tuple[int, int]], start: int = 0) -> bytes:
    """The data with a few bytes (past ``start``) overwritten, to break records in every way."""
    out = bytearray(data)
    for position, value in flips:
        if len(out) > start:
            out[start + position % (len(out) - start)] = value
    return bytes(out)


@st.composite
def legacy_workbooks(draw: st.DrawFn) -> bytes:
    """.xls (BIFF8 in OLE2), .xlsb (BIFF12 records) or .ods (content.xml) with cells near or far,
    repeat counts of any size, and records overwritten at random."""
    kind = draw(st.sampled_from(["xls", "xlsb", "ods"]))
    rows, columns = {"xls": (65_535, 255), "xlsb": (1_048_575, 16_383), "ods": (5_000, 2_000)}[kind]
    cells = {(0, 0): "id", (0, 1): "n"}
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        near = draw(st.booleans())
        row = draw(st.integers(min_value=1, max_value=20 if near else rows))
        column = draw(st.integers(min_value=0, max_value=5 if near else columns))
        cells[(row, column)] = draw(legacy_value)
    flips = draw(st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=4))
    if kind == "xls":
        return _mutate(xls_bytes(cells), flips, start=512)  # past the OLE2 header
    if kind == "xlsb":
        return xlsb_bytes({}, sheet_records=_mutate(xlsb_sheet_records(cells), flips))
    repeats = draw(st.sampled_from(["1", "0", "-3", "70000", "1048576", "99999999999", "x"]))
    rows_xml = "".join(
        f"<table:table-row>{ods_cell(value)}</table:table-row>" for (_, _), value in sorted(cells.items())
    ) + (
        f'<table:table-row table:number-rows-repeated="{repeats}">'
        f"{ods_cell(draw(legacy_value), draw(st.sampled_from([1, 300, 16_384, 20_000])))}</table:table-row>"
    )
    return ods_bytes({}, rows_xml=rows_xml)


raw_bytes = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=100).map(lambda b: codecs.BOM_UTF16_LE + b),
    st.binary(max_size=100).map(lambda b: b"\x1f\x8b" + b),
    st.binary(max_size=100).map(lambda b: b"PK\x03\x04" + b),
    st.binary(max_size=1200).map(lambda b: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b),
)

# ---- the properties -----------------------------------------------------------------------------


def read_everything(data: bytes, expected: FileFormat, spool: Path, **options: str) -> None:
    """Open the file as the importer does, map it, convert every row: only FileProblem may escape."""
    spec = SourceSpec(
        size=len(data),
        expected=expected,
        options=ReadOptions(**options),
        resume=ResumePoint(),
        spool_dir=spool,
        archive_limits=ArchiveLimits(max_uncompressed_bytes=64 * 1024**2, max_sheet_bytes=64 * 1024**2),
    )
    try:
        source = open_source(data[:65536], lambda start: io.BytesIO(data[start:]), spec)
    except FileProblem:
        return
    try:
        try:
            mapping = map_columns(source.header, DATASET)
        except FileProblem:
            return
        converter = RowConverter(DATASET, source.header, mapping)
        for row in source.rows(after_row=0):
            if row.cells:
                converter.convert(row.cells)
    except FileProblem:
        return
    finally:
        source.close()


def peak_rss_mb() -> int:
    """The process's peak RSS since the last reset_peak_rss()."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) // 1024


def reset_peak_rss() -> None:
    """Start the peak afresh (Linux: writing 5 to clear_refs), so that what tests before this one in
    the same process allocated does not count."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def fuzz_for(seconds: float, run: Callable[[], None]) -> int:
    """Run a Hypothesis test again and again (fresh random examples each time) for ``seconds``."""
    rounds, end = 0, time.monotonic() + seconds
    while True:
        run()
        rounds += 1
        if time.monotonic() >= end:
            return rounds


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    reset_peak_rss()
    return tmp_path


def test_fuzz_delimited_files(spool):
    @FUZZ
    @given(delimited_files(), st.sampled_from([FileFormat.CSV, FileFormat.TSV, FileFormat.CSV_GZ]))
    def run(data: bytes, expected: FileFormat) -> None:
        read_everything(data, expected, spool)

    fuzz_for(BUDGET_SECONDS, run)
    assert peak_rss_mb() < PEAK_RSS_LIMIT_MB


def test_fuzz_json_lines_files(spool):
    @FUZZ
    @given(json_lines_files())
    def run(data: bytes) -> None:
        read_everything(data, FileFormat.JSONL, spool)

    fuzz_for(BUDGET_SECONDS, run)
    assert peak_rss_mb() < PEAK_RSS_LIMIT_MB


def test_fuzz_workbooks(spool):
    @FUZZ
    @given(xlsx_files())
    def run(data: bytes) -> None:
        read_everything(data, FileFormat.XLSX, spool)

    fuzz_for(BUDGET_SECONDS, run)
    assert peak_rss_mb() < PEAK_RSS_LIMIT_MB


def test_fuzz_legacy_workbooks(spool):
    @FUZZ
    @given(legacy_workbooks())
    def run(data: bytes) -> None:
        read_everything(data, FileFormat.XLSX, spool)

    fuzz_for(BUDGET_SECONDS, run)
    assert peak_rss_mb() < PEAK_RSS_LIMIT_MB


def test_fuzz_raw_bytes_and_options(spool):
    @FUZZ
    @given(raw_bytes, st.sampled_from(list(FileFormat)), st.sampled_from([None, "utf-16", "cp437", "ascii"]))
    def run(data: bytes, expected: FileFormat, encoding: str | None) -> None:
        if expected in (FileFormat.JSON, FileFormat.PARQUET):
            return  # not import formats
        options = {"encoding": encoding} if encoding else {}
        read_everything(data, expected, spool, **options)

    fuzz_for(BUDGET_SECONDS, run)
    assert peak_rss_mb() < PEAK_RSS_LIMIT_MB
