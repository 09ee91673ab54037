"""Parquet export: a typed schema from the columns, written in large row groups with pyarrow."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from impex.formats.columns import Column, ColumnKind
from impex.formats.values import json_text


class ParquetWriter:
    """A typed schema from the dataset: decimals as decimal128, dates as date32, datetimes in UTC."""

    DECIMAL_SCALE = 10
    ROW_GROUP_ROWS = 16_384

    def __init__(self, path: str, columns: Sequence[Column]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        self._columns = list(columns)
        self.schema = pa.schema([pa.field(c.name, _arrow_type(pa, c.kind)) for c in self._columns])
        self._writer = pq.ParquetWriter(path, self.schema, compression="zstd")
        self._pending: list[Sequence[Any]] = []

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        """Write rows of typed values, in column order (gathered into large row groups)."""
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
        for index, column in enumerate(self._columns):
            values = [row[index] for row in rows]
            if column.kind in (ColumnKind.DECIMAL, ColumnKind.JSON):
                # Only these need work per value; the other types arrive as Arrow takes them.
                values = [_arrow_value(column.kind, value, self.DECIMAL_SCALE) for value in values]
            columns.append(self._pa.array(values, type=self.schema.field(index).type))
        self._writer.write_table(self._pa.Table.from_arrays(columns, schema=self.schema))
        # Arrow's allocator keeps freed blocks for reuse; hand them back so memory stays flat.
        self._pa.default_memory_pool().release_unused()

    def close(self) -> None:
        """Write what is pending and the file's footer."""
        self._flush()
        self._writer.close()


def _arrow_type(pa: Any, kind: ColumnKind) -> Any:
    return {
        ColumnKind.STRING: pa.string(),
        ColumnKind.INTEGER: pa.int64(),
        ColumnKind.DECIMAL: pa.decimal128(38, ParquetWriter.DECIMAL_SCALE),
        ColumnKind.BOOLEAN: pa.bool_(),
        ColumnKind.DATE: pa.date32(),
        ColumnKind.DATETIME: pa.timestamp("us", tz="UTC"),
        ColumnKind.JSON: pa.string(),
    }[kind]


def _arrow_value(kind: ColumnKind, value: Any, scale: int) -> Any:
    if value is None:
        return None
    if kind is ColumnKind.DECIMAL:
        return Decimal(value).quantize(Decimal(1).scaleb(-scale))
    if kind is ColumnKind.JSON:
        return json_text(value)
    return value
