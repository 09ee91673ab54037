"""Streaming writers for exports: CSV, XLSX, JSON, JSON Lines and Parquet. Bytes go to a sink.

Values arrive typed (str, int, Decimal, bool, date, datetime, dict/list, None) in the order of
``fields``. Text values that a spreadsheet would evaluate are neutralised in CSV and XLSX (OWASP
ASVS 1.2.10) unless the export turns that off; real numbers stay numbers.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import IO, Any, Protocol

from impex.datasets.model import DatasetField, FieldType

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\0")
XLSX_MAX_ROWS = 1_048_576  # including the header row
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}


class Sink(Protocol):
    def write(self, data: bytes) -> Any: ...


def neutralize(text: str) -> str:
    """Prefix a quote to text a spreadsheet would run as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Text:
    """Text output to a sink, optionally as gzip (each invocation's share is one gzip member)."""

    def __init__(self, sink: Sink, *, compress: bool) -> None:
        self._sink = sink
        self._gzip = gzip.GzipFile(fileobj=_SinkFile(sink), mode="wb", mtime=0) if compress else None

    def write(self, text: str) -> None:
        data = text.encode("utf-8")
        if self._gzip is not None:
            self._gzip.write(data)
        else:
            self._sink.write(data)

    def close(self) -> None:
        if self._gzip is not None:
            self._gzip.close()


class _SinkFile(io.RawIOBase):
    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._sink.write(bytes(data))
        return len(data)


class CsvWriter:
    """RFC 4180, UTF-8 (optionally with a BOM for Excel), any one-character delimiter."""

    appendable = True

    def __init__(
        self,
        sink: Sink,
        fields: Sequence[DatasetField],
        *,
        delimiter: str = ",",
        bom: bool = False,
        neutralize_formulas: bool = True,
        compress: bool = False,
        resume: bool = False,
    ) -> None:
        self._out = _Text(sink, compress=compress)
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, delimiter=delimiter, lineterminator="\r\n")
        self._types = [f.type for f in fields]
        self._neutralize = neutralize_formulas
        if not resume:
            if bom:
                self._out.write("\ufeff")
            self._csv.writerow([f.name for f in fields])
            self._flush()

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        for row in rows:
            self._csv.writerow([self._cell(value) for value in row])
        self._flush()

    def _cell(self, value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, str):
            return neutralize(value) if self._neutralize else value
        text = _plain_text(value)
        if self._neutralize and isinstance(value, dict | list):
            return neutralize(text)
        return text

    def _flush(self) -> None:
        self._out.write(self._buffer.getvalue())
        self._buffer.seek(0)
        self._buffer.truncate()

    def close(self) -> None:
        self._out.close()


class JsonLinesWriter:
    """One JSON object per line; numbers stay numbers, dates are ISO 8601 text."""

    appendable = True

    def __init__(
        self, sink: Sink, fields: Sequence[DatasetField], *, compress: bool = False, resume: bool = False
    ) -> None:
        self._out = _Text(sink, compress=compress)
        self._encode = _object_encoder(fields)

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        lines = [self._encode(row) for row in rows]
        if lines:
            self._out.write("\n".join(lines) + "\n")

    def close(self) -> None:
        self._out.close()


class JsonArrayWriter:
    """One JSON array, streamed: `[` … `]`, objects separated by commas."""

    appendable = True

    def __init__(
        self, sink: Sink, fields: Sequence[DatasetField], *, resume: bool = False, started: bool = False
    ) -> None:
        self._out = _Text(sink, compress=False)
        self._encode = _object_encoder(fields)
        self.started = started
        if not resume:
            self._out.write("[")

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        parts = []
        for row in rows:
            parts.append(("," if self.started else "") + "\n" + self._encode(row))
            self.started = True
        if parts:
            self._out.write("".join(parts))

    def finish(self) -> None:
        self._out.write("\n]\n" if self.started else "]\n")

    def close(self) -> None:
        self._out.close()


class XlsxWriter:
    """Typed cells, a bold frozen header with an autofilter, a new sheet every 1,048,575 rows.

    xlsxwriter's constant_memory mode writes each row as it comes (rows cannot be revisited), into a
    file under /tmp that is uploaded when the export ends.
    """

    appendable = False

    def __init__(
        self,
        path: str,
        fields: Sequence[DatasetField],
        *,
        neutralize_formulas: bool = True,
        sheet_name: str = "Export",
    ) -> None:
        import xlsxwriter

        self._book = xlsxwriter.Workbook(
            path,
            {
                "constant_memory": True,
                "strings_to_formulas": False,
                "strings_to_numbers": False,
                "strings_to_urls": False,
            },
        )
        self._fields = list(fields)
        self._neutralize = neutralize_formulas
        self._sheet_name = sheet_name[:25]
        self._bold = self._book.add_format({"bold": True})
        self._date = self._book.add_format({"num_format": "yyyy-mm-dd"})
        self._datetime = self._book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self._sheets = 0
        self._row = 0
        self._sheet: Any = None
        self._new_sheet()

    def _new_sheet(self) -> None:
        self._sheets += 1
        name = self._sheet_name if self._sheets == 1 else f"{self._sheet_name} {self._sheets}"
        self._sheet = self._book.add_worksheet(name)
        for column, field in enumerate(self._fields):
            self._sheet.write_string(0, column, field.name, self._bold)
            self._sheet.set_column(column, column, max(10, min(40, len(field.name) + 2)))
        self._sheet.freeze_panes(1, 0)
        self._sheet.autofilter(0, 0, XLSX_MAX_ROWS - 1, max(len(self._fields) - 1, 0))
        self._row = 0

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        writers = self._column_writers()
        for values in rows:
            if self._row + 1 >= XLSX_MAX_ROWS:
                self._new_sheet()
                writers = self._column_writers()
            self._row += 1
            row = self._row
            for column, value in enumerate(values):
                if value is not None:
                    writers[column](row, column, value)

    def _column_writers(self) -> list[Any]:
        """One writer per column, chosen by the field's type (values of another type fall back)."""
        sheet = self._sheet

        def number(row: int, column: int, value: Any) -> None:
            if isinstance(value, int | Decimal) and not isinstance(value, bool):
                sheet.write_number(row, column, float(value))
            else:
                self._cell(row, column, value)

        def text(row: int, column: int, value: Any) -> None:
            if isinstance(value, str):
                sheet.write_string(row, column, neutralize(value) if self._neutralize else value)
            else:
                self._cell(row, column, value)

        by_type = {FieldType.INTEGER: number, FieldType.DECIMAL: number, FieldType.STRING: text}
        return [by_type.get(f.type, self._cell) for f in self._fields]

    def _cell(self, row: int, column: int, value: Any) -> None:
        sheet = self._sheet
        if value is None:
            return
        if isinstance(value, bool):
            sheet.write_boolean(row, column, value)
        elif isinstance(value, int | float | Decimal):
            sheet.write_number(row, column, float(value))
        elif isinstance(value, datetime):
            sheet.write_datetime(row, column, value.astimezone(UTC).replace(tzinfo=None), self._datetime)
        elif isinstance(value, date):
            sheet.write_datetime(row, column, datetime(value.year, value.month, value.day), self._date)
        else:
            text = value if isinstance(value, str) else _plain_text(value)
            sheet.write_string(row, column, neutralize(text) if self._neutralize else text)

    def close(self) -> None:
        self._book.close()


class ParquetWriter:
    """A typed schema from the dataset: decimals as decimal128, dates as date32, datetimes in UTC."""

    appendable = False
    DECIMAL_SCALE = 10
    ROW_GROUP_ROWS = 16_384

    def __init__(self, path: str, fields: Sequence[DatasetField]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        self._fields = list(fields)
        self.schema = pa.schema([pa.field(f.name, _arrow_type(pa, f.type)) for f in self._fields])
        self._writer = pq.ParquetWriter(path, self.schema, compression="zstd")
        self._pending: list[Sequence[Any]] = []

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        # Rows gather into large row groups: a row group per page would grow the file's metadata
        # (and the writer's memory) with every page.
        self._pending.extend(rows)
        if len(self._pending) >= self.ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        rows, self._pending = self._pending, []
        if not rows:
            return
        columns = []
        for index, field in enumerate(self._fields):
            values = [row[index] for row in rows]
            if field.type in (FieldType.DECIMAL, FieldType.JSON):
                # Only these need work per value; the other types arrive as Arrow takes them.
                values = [_arrow_value(field.type, value, self.DECIMAL_SCALE) for value in values]
            columns.append(self._pa.array(values, type=self.schema.field(index).type))
        self._writer.write_table(self._pa.Table.from_arrays(columns, schema=self.schema))
        # Arrow's allocator keeps freed blocks for reuse; hand them back so memory stays flat.
        self._pa.default_memory_pool().release_unused()

    def close(self) -> None:
        self._flush()
        self._writer.close()


def _arrow_type(pa: Any, field_type: FieldType) -> Any:
    return {
        FieldType.STRING: pa.string(),
        FieldType.INTEGER: pa.int64(),
        FieldType.DECIMAL: pa.decimal128(38, ParquetWriter.DECIMAL_SCALE),
        FieldType.BOOLEAN: pa.bool_(),
        FieldType.DATE: pa.date32(),
        FieldType.DATETIME: pa.timestamp("us", tz="UTC"),
        FieldType.JSON: pa.string(),
    }[field_type]


def _arrow_value(field_type: FieldType, value: Any, scale: int) -> Any:
    if value is None:
        return None
    if field_type is FieldType.DECIMAL:
        return Decimal(value).quantize(Decimal(1).scaleb(-scale))
    if field_type is FieldType.JSON:
        return _json(value)
    return value


def _plain_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        text = value.astimezone(UTC).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return _json(value)
    return str(value)


_encode_text = json.encoder.encode_basestring


def _typed_json(field_type: FieldType) -> Any:
    """A JSON encoder for values of one field type (falls back to the general one for surprises)."""

    def text(value: Any) -> str:
        return _encode_text(value) if isinstance(value, str) else _json(value)

    def integer(value: Any) -> str:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else _json(value)

    def boolean(value: Any) -> str:
        return ("true" if value else "false") if isinstance(value, bool) else _json(value)

    def moment(value: Any) -> str:
        if value.__class__ is datetime and value.tzinfo is UTC:
            return '"' + value.isoformat()[:-6] + 'Z"'  # the common case, without _plain_text's checks
        return '"' + _plain_text(value) + '"' if isinstance(value, date) else _json(value)

    def decimal(value: Any) -> str:
        if value.__class__ is Decimal:
            digits = str(value)
            # Already what _json would make of it: no exponent, no trailing zeros after a point, not -0.
            if "E" not in digits and not ("." in digits and digits[-1] == "0") and digits != "-0":
                return digits
        return _json(value)

    encoders = {
        FieldType.STRING: text,
        FieldType.INTEGER: integer,
        FieldType.DECIMAL: decimal,
        FieldType.BOOLEAN: boolean,
        FieldType.DATE: moment,
        FieldType.DATETIME: moment,
    }
    return encoders.get(field_type, _json)


def _object_encoder(fields: Sequence[DatasetField]) -> Any:
    """Encode a row (values in field order) as a JSON object, leaving out nulls: the per-row hot path."""
    plan = [(_encode_text(f.name) + ":", _typed_json(f.type)) for f in fields]

    def encode(row: Sequence[Any]) -> str:
        pairs = [
            key + encoder(value) for (key, encoder), value in zip(plan, row, strict=True) if value is not None
        ]
        return "{" + ",".join(pairs) + "}"

    return encode


def _json(value: Any) -> str:
    """JSON text in which decimals keep every digit (json.dumps would round them through float)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return str(int(value)) if value == value.to_integral_value() else format(value.normalize(), "f")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return (
            "{"
            + ",".join(json.dumps(str(k), ensure_ascii=False) + ":" + _json(v) for k, v in value.items())
            + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ",".join(_json(v) for v in value) + "]"
    return json.dumps(_plain_text(value), ensure_ascii=False)


def text_sink_for(handle: IO[bytes]) -> Sink:
    """A file opened for binary writing, as a sink."""
    return handle
