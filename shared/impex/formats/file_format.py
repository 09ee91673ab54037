"""The file formats impex reads and writes. Gzip is a property of a format, not a suffix to strip."""

from __future__ import annotations

from enum import StrEnum


class FileFormat(StrEnum):
    """A file format as the API names it (imports may be gzip-compressed text)."""

    CSV = "csv"
    TSV = "tsv"
    XLSX = "xlsx"
    XLSB = "xlsb"
    XLS = "xls"
    ODS = "ods"
    JSON = "json"
    JSONL = "jsonl"
    PARQUET = "parquet"
    CSV_GZ = "csv.gz"
    TSV_GZ = "tsv.gz"
    JSONL_GZ = "jsonl.gz"

    @property
    def gzip(self) -> bool:
        """Whether the file is gzip-compressed."""
        return self.value.endswith(".gz")

    @property
    def plain(self) -> FileFormat:
        """The format inside the compression (csv for csv.gz; itself when not compressed)."""
        return FileFormat(self.value.split(".", 1)[0])

    @property
    def spreadsheet(self) -> bool:
        """Whether the file is a workbook (read whole from a local copy, never streamed)."""
        return self in _SPREADSHEETS


_SPREADSHEETS = frozenset({FileFormat.XLSX, FileFormat.XLSB, FileFormat.XLS, FileFormat.ODS})

IMPORT_FORMATS = (
    FileFormat.CSV,
    FileFormat.TSV,
    FileFormat.XLSX,
    FileFormat.XLSB,
    FileFormat.XLS,
    FileFormat.ODS,
    FileFormat.JSONL,
    FileFormat.CSV_GZ,
    FileFormat.TSV_GZ,
    FileFormat.JSONL_GZ,
)

CONTENT_TYPES = {
    FileFormat.CSV: "text/csv; charset=utf-8",
    FileFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    FileFormat.JSON: "application/json",
    FileFormat.JSONL: "application/x-ndjson",
    FileFormat.PARQUET: "application/vnd.apache.parquet",
}
GZIP_CONTENT_TYPE = "application/gzip"

_FORMAT_BY_SUFFIX = {
    ".csv": FileFormat.CSV,
    ".tsv": FileFormat.TSV,
    ".tab": FileFormat.TSV,
    ".txt": FileFormat.CSV,
    ".xlsx": FileFormat.XLSX,
    ".xlsm": FileFormat.XLSX,
    ".xlsb": FileFormat.XLSB,
    ".xls": FileFormat.XLS,
    ".ods": FileFormat.ODS,
    ".jsonl": FileFormat.JSONL,
    ".ndjson": FileFormat.JSONL,
    ".csv.gz": FileFormat.CSV_GZ,
    ".tsv.gz": FileFormat.TSV_GZ,
    ".jsonl.gz": FileFormat.JSONL_GZ,
    ".ndjson.gz": FileFormat.JSONL_GZ,
}


def format_from_file_name(file_name: str) -> FileFormat | None:
    """The import format a file name's extension suggests (the importer still checks the content)."""
    lowered = file_name.lower()
    matches = [suffix for suffix in _FORMAT_BY_SUFFIX if lowered.endswith(suffix)]
    return _FORMAT_BY_SUFFIX[max(matches, key=len)] if matches else None
