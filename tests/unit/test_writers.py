"""Export writers on edge values, the formula-injection rules, and empty results."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import openpyxl
import pyarrow.parquet as pq
import pytest

from impex.datasets.model import FieldType
from impex.formats.columns import Column, ColumnKind
from impex.formats.delimited import CsvWriter
from impex.formats.file_format import FileFormat
from impex.formats.jsonlines import JsonArrayWriter, JsonLinesWriter
from impex.formats.parquet import ParquetWriter
from impex.formats.sheet_xml import SheetXmlWriter
from impex.formats.values import neutralize
from impex.formats.writers import WriterOptions, open_writer

FIELDS = [
    Column("text", ColumnKind.STRING),
    Column("n", ColumnKind.INTEGER),
    Column("price", ColumnKind.DECIMAL),
    Column("ok", ColumnKind.BOOLEAN),
    Column("day", ColumnKind.DATE),
    Column("at", ColumnKind.DATETIME),
    Column("extra", ColumnKind.JSON),
]
EDGE_ROWS = [
    [
        "unicode ✓ 李 é",
        1,
        Decimal("19.99"),
        True,
        date(2024, 2, 29),
        datetime(2024, 5, 1, 13, 0, tzinfo=UTC),
        {"a": [1, Decimal("2.5")]},
    ],
    ['line one\nline two, with "quotes"', -5, Decimal("0.000001"), False, None, None, None],
    ["x" * 40_000, None, None, None, None, None, [1, None]],
    [None, 0, Decimal("123456789012345678.5"), None, date(1999, 12, 31), None, "text"],
]


class Sink:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=SUM(A1)", "'=SUM(A1)"),
        ("+1", "'+1"),
        ("-cmd", "'-cmd"),
        ("@import", "'@import"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("plain", "plain"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_formula_starts_are_neutralized(value, expected):
    assert neutralize(value) == expected


def test_csv_round_trips_edge_values():
    sink = Sink()
    writer = CsvWriter(sink, FIELDS)
    writer.write_rows(EDGE_ROWS)
    writer.close()
    rows = list(csv.reader(io.StringIO(sink.data.decode("utf-8"), newline="")))
    assert rows[0] == [f.name for f in FIELDS]
    assert rows[1] == [
        "unicode ✓ 李 é",
        "1",
        "19.99",
        "true",
        "2024-02-29",
        "2024-05-01T13:00:00Z",
        '{"a":[1,2.5]}',
    ]
    assert (
        rows[2][0] == 'line one\nline two, with "quotes"' and rows[2][1] == "-5" and rows[2][2] == "0.000001"
    )
    assert len(rows[3][0]) == 40_000
    assert rows[4][2] == "123456789012345678.5" and rows[4][0] == ""
    assert sink.data.endswith(b"\r\n")


def test_csv_neutralizes_text_but_not_numbers_and_can_be_told_not_to():
    for neutral, expected in ((True, ["'=1+1", "-5"]), (False, ["=1+1", "-5"])):
        sink = Sink()
        writer = CsvWriter(sink, FIELDS[:2], neutralize_formulas=neutral)
        writer.write_rows([["=1+1", -5]])
        writer.close()
        assert list(csv.reader(io.StringIO(sink.data.decode())))[1] == expected


def test_csv_bom_delimiter_and_gzip():
    sink = Sink()
    writer = CsvWriter(sink, FIELDS[:2], delimiter=";", bom=True, compress=True)
    writer.write_rows([["a;b", 1]])
    writer.close()
    text = gzip.decompress(bytes(sink.data)).decode("utf-8")
    assert text == '\ufefftext;n\r\n"a;b";1\r\n'


def test_json_lines_and_json_arrays_keep_numbers_exact():
    lines, array = Sink(), Sink()
    for writer_class, sink in ((JsonLinesWriter, lines), (JsonArrayWriter, array)):
        writer = writer_class(sink, FIELDS)
        writer.write_rows(EDGE_ROWS)
        if isinstance(writer, JsonArrayWriter):
            writer.finish()
        writer.close()
    parsed_lines = [json.loads(line, parse_float=Decimal) for line in lines.data.decode().splitlines()]
    parsed_array = json.loads(array.data, parse_float=Decimal)
    assert parsed_lines == parsed_array
    assert parsed_lines[0] == {
        "text": "unicode ✓ 李 é",
        "n": 1,
        "price": Decimal("19.99"),
        "ok": True,
        "day": "2024-02-29",
        "at": "2024-05-01T13:00:00Z",
        "extra": {"a": [1, Decimal("2.5")]},
    }
    assert parsed_lines[3]["price"] == Decimal("123456789012345678.5")
    assert "day" not in parsed_lines[1]  # nulls are left out


@pytest.mark.parametrize(
    ("stored", "written"),
    [
        (Decimal("123"), "123"),
        (Decimal("-12.25"), "-12.25"),
        (Decimal("0.000001"), "0.000001"),
        (Decimal("1.50"), "1.5"),
        (Decimal("1.0"), "1"),
        (Decimal("-0"), "0"),
        (Decimal("1E+5"), "100000"),
        (Decimal("1E-7"), "0.0000001"),
        (Decimal("12345678901234567890.123"), "12345678901234567890.123"),
    ],
)
def test_json_decimals_are_plain_exact_numbers(stored, written):
    # Given a decimal as DynamoDB may hand it back
    sink = Sink()
    writer = JsonLinesWriter(sink, [Column("price", ColumnKind.DECIMAL)])
    # When it is written as JSON
    writer.write_rows([[stored]])
    writer.close()
    # Then it is a plain JSON number with every digit, and no exponent or trailing zeros
    assert sink.data.decode() == f'{{"price":{written}}}\n'


@pytest.mark.parametrize(
    ("moment", "written"),
    [
        (datetime(2024, 5, 1, 13, 0, tzinfo=UTC), "2024-05-01T13:00:00Z"),
        (datetime(2024, 5, 1, 13, 0, 0, 123456, tzinfo=UTC), "2024-05-01T13:00:00.123456Z"),
        (datetime(2024, 5, 1, 15, 0, tzinfo=timezone(timedelta(hours=2))), "2024-05-01T13:00:00Z"),
    ],
)
def test_json_datetimes_are_utc_iso_text(moment, written):
    sink = Sink()
    writer = JsonLinesWriter(sink, [Column("at", ColumnKind.DATETIME)])
    writer.write_rows([[moment]])
    writer.close()
    assert json.loads(sink.data) == {"at": written}


def test_xlsx_cells_are_typed_with_a_bold_frozen_filtered_header(tmp_path):
    path = tmp_path / "out.xlsx"
    writer = SheetXmlWriter(str(path), FIELDS)
    writer.write_rows([*EDGE_ROWS, ['=HYPERLINK("http://x")', 2, None, None, None, None, None]])
    writer.close()
    sheet = openpyxl.load_workbook(path).active
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref.startswith("A1:G")
    assert sheet["A1"].font.b
    values = list(sheet.iter_rows(min_row=2, values_only=True))
    assert values[0][:6] == (
        "unicode ✓ 李 é",
        1,
        19.99,
        True,
        datetime(2024, 2, 29),
        datetime(2024, 5, 1, 13),
    )
    assert isinstance(values[0][1], int) and sheet["B2"].data_type == "n" and sheet["D2"].data_type == "b"
    assert sheet["E2"].is_date
    assert values[4][0] == '\'=HYPERLINK("http://x")'


def test_xlsx_starts_a_new_sheet_after_the_row_limit(tmp_path):
    path = tmp_path / "split.xlsx"
    writer = SheetXmlWriter(str(path), FIELDS[:1], sheet_name="data", rows_per_sheet=4)
    writer.write_rows([[str(i)] for i in range(7)])
    writer.close()
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["data", "data 2", "data 3"]
    assert [next(c.value for c in row) for row in book["data 2"].iter_rows()] == ["text", "3", "4", "5"]


def test_parquet_keeps_decimals_dates_and_types(tmp_path):
    path = tmp_path / "out.parquet"
    writer = ParquetWriter(str(path), FIELDS)
    writer.write_rows(EDGE_ROWS)
    writer.close()
    table = pq.read_table(path)
    assert str(table.schema.field("price").type) == "decimal128(38, 10)"
    assert str(table.schema.field("day").type) == "date32[day]"
    assert str(table.schema.field("at").type) == "timestamp[us, tz=UTC]"
    rows = table.to_pylist()
    assert rows[0]["price"] == Decimal("19.99") and rows[0]["day"] == date(2024, 2, 29)
    assert rows[0]["n"] == 1 and rows[0]["ok"] is True and json.loads(rows[0]["extra"]) == {"a": [1, 2.5]}
    assert rows[3]["price"] == Decimal("123456789012345678.5")


@pytest.mark.parametrize("kind", ["csv", "jsonl", "json", "xlsx", "parquet"])
def test_an_empty_result_is_still_a_valid_file(tmp_path, kind):
    # Given a writer of each format from the one factory
    sink = Sink()
    writer = open_writer(FileFormat(kind), FIELDS, sink, options=WriterOptions(), spool_dir=tmp_path)
    # When no row is written
    writer.finish()
    writer.close()
    # Then the file is still valid, with its header where the format has one
    path = tmp_path / f"empty.{kind}"
    path.write_bytes(bytes(sink.data))
    assert writer.resumable is (kind in ("csv", "jsonl", "json"))
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no spool file is left behind
    if kind == "csv":
        assert path.read_text().strip() == ",".join(f.name for f in FIELDS)
    elif kind == "jsonl":
        assert path.read_bytes() == b""
    elif kind == "json":
        assert json.loads(path.read_text()) == []
    elif kind == "xlsx":
        rows = list(openpyxl.load_workbook(path).active.iter_rows(values_only=True))
        assert rows == [tuple(f.name for f in FIELDS)]
    else:
        table = pq.read_table(path)
        assert table.num_rows == 0 and table.schema.names == [f.name for f in FIELDS]


def test_json_lines_gzip_on_request():
    sink = Sink()
    writer = JsonLinesWriter(sink, FIELDS[:2], compress=True)
    writer.write_rows([["a", 1], ["b", None]])
    writer.close()
    assert gzip.decompress(bytes(sink.data)).decode() == '{"text":"a","n":1}\n{"text":"b"}\n'


def test_column_kinds_are_the_dataset_field_types():
    assert [kind.value for kind in ColumnKind] == [field_type.value for field_type in FieldType]


def test_a_json_array_resumed_in_a_new_writer_is_one_valid_array(tmp_path):
    # Given a JSON export that wrote rows, then handed over
    sink = Sink()
    first = open_writer(FileFormat.JSON, FIELDS[:2], sink, options=WriterOptions(), spool_dir=tmp_path)
    first.write_rows([["a", 1]])
    first.close()
    state = first.resume_state()
    # When a fresh writer carries on from its state
    second = open_writer(
        FileFormat.JSON, FIELDS[:2], sink, options=WriterOptions(), spool_dir=tmp_path, resume=state
    )
    second.write_rows([["b", 2]])
    second.finish()
    second.close()
    # Then the file is one array holding both rows
    assert json.loads(bytes(sink.data)) == [{"text": "a", "n": 1}, {"text": "b", "n": 2}]
