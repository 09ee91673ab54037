"""The Writer protocol and the one factory that chooses a writer by format.

CSV, JSON and JSON Lines stream straight into the sink and can be resumed by a fresh writer in a
later invocation. XLSX and Parquet cannot be appended to: they are written to a spool file that
``finish()`` copies into the sink.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from impex.formats.columns import Column
from impex.formats.delimited import CsvWriter
from impex.formats.file_format import CONTENT_TYPES, GZIP_CONTENT_TYPE, FileFormat
from impex.formats.jsonlines import JsonArrayWriter, JsonLinesWriter
from impex.formats.text import Sink

SPOOL_CHUNK = 8 * 1024 * 1024


class Writer(Protocol):
    """Writes rows of typed values (in column order) as one file format into a sink."""

    @property
    def resumable(self) -> bool:
        """Whether a fresh writer can carry on this output in a later invocation."""
        ...

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        """Write rows."""
        ...

    def resume_state(self) -> dict[str, Any]:
        """What a fresh writer needs to carry on (after close())."""
        ...

    def finish(self) -> None:
        """Complete the document in the sink (after the last row)."""
        ...

    def close(self) -> None:
        """Release what the writer holds; a compressed stream ends its member here."""
        ...


@dataclass(frozen=True)
class WriterOptions:
    """How an export writes its file."""

    delimiter: str = ","
    bom: bool = False
    gzip: bool = False
    neutralize_formulas: bool = True
    sheet_name: str = "Export"


def content_type(file_format: FileFormat, options: WriterOptions) -> str:
    """The content type of the file the writer makes (gzip only where the format streams)."""
    if options.gzip and file_format in (FileFormat.CSV, FileFormat.JSONL):
        return GZIP_CONTENT_TYPE
    return CONTENT_TYPES[file_format]


def open_writer(
    file_format: FileFormat,
    columns: Sequence[Column],
    sink: Sink,
    *,
    options: WriterOptions,
    spool_dir: Path,
    resume: dict[str, Any] | None = None,
) -> Writer:
    """A writer of ``file_format``; ``resume`` is a resumable writer's resume_state() to carry on from."""
    if file_format is FileFormat.CSV:
        return CsvWriter(
            sink,
            columns,
            delimiter=options.delimiter,
            bom=options.bom,
            neutralize_formulas=options.neutralize_formulas,
            compress=options.gzip,
            resume=resume is not None,
        )
    if file_format is FileFormat.JSONL:
        return JsonLinesWriter(sink, columns, compress=options.gzip)
    if file_format is FileFormat.JSON:
        return JsonArrayWriter(sink, columns, resume=resume)
    if file_format is FileFormat.XLSX:
        from impex.formats.sheet_xml import SheetXmlWriter

        path = _spool_path(spool_dir, ".xlsx")
        book = SheetXmlWriter(
            str(path), columns, neutralize_formulas=options.neutralize_formulas, sheet_name=options.sheet_name
        )
        return SpooledWriter(book, path, sink)
    if file_format is FileFormat.PARQUET:
        from impex.formats.parquet import ParquetWriter

        path = _spool_path(spool_dir, ".parquet")
        return SpooledWriter(ParquetWriter(str(path), columns), path, sink)
    raise ValueError(f"impex does not export {file_format}")


class _FileWriter(Protocol):
    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None: ...
    def close(self) -> None: ...


class SpooledWriter:
    """A writer of a whole-file format: rows go to a local file, which finish() copies into the sink."""

    resumable = False

    def __init__(self, inner: _FileWriter, path: Path, sink: Sink) -> None:
        self._inner = inner
        self._path = path
        self._sink = sink
        self._closed = False

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        """Write rows to the spool file."""
        self._inner.write_rows(rows)

    def resume_state(self) -> dict[str, Any]:
        """A whole-file format cannot be carried on."""
        raise TypeError("a spooled file cannot be resumed in another invocation")

    def finish(self) -> None:
        """Finish the file and copy it into the sink."""
        self._close_inner()
        with self._path.open("rb") as handle:
            while chunk := handle.read(SPOOL_CHUNK):
                self._sink.write(chunk)

    def close(self) -> None:
        """Delete the spool file."""
        self._close_inner()
        self._path.unlink(missing_ok=True)

    def _close_inner(self) -> None:
        if not self._closed:
            self._closed = True
            self._inner.close()


def _spool_path(directory: Path, suffix: str) -> Path:
    handle, name = tempfile.mkstemp(dir=directory, suffix=suffix)
    os.close(handle)
    return Path(name)
