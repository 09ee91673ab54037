"""Open an uploaded file as rows: tell what it is from its first bytes, then read it the right way.

Detection is by content (magic bytes, then the text itself), never by name alone: a file whose
content is not the format the job expects is refused with a message saying what it is.
"""

from __future__ import annotations

import gzip
import io
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from impex.formats.columns import MARK_EVERY, SourceRow, progress_mark
from impex.formats.delimited import DelimitedReader, sniff_delimiter
from impex.formats.detect import detect_encoding, sniff_container, text_kind
from impex.formats.errors import FileProblem
from impex.formats.file_format import FileFormat
from impex.formats.jsonlines import JsonLinesReader
from impex.formats.text import CHUNK, LineSource, first_lines_terminator
from impex.formats.workbooks import WorkbookKind, check_footprint, workbook_kind
from impex.formats.xlsx import ArchiveLimits, WorkbookReader, check_archive, check_xlsx

HEAD_BYTES = 64 * 1024

# The file's bytes from a byte offset on (a ranged GET).
Reopen = Callable[[int], IO[bytes]]


@dataclass(frozen=True)
class ReadOptions:
    """What the job says about reading its file (each overrides detection)."""

    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None


@dataclass(frozen=True)
class ResumePoint:
    """Where an earlier invocation stopped: the header it read, its last row and the byte after it."""

    header: list[str] | None = None
    last_row: int = 0
    offset: int | None = None


@dataclass(frozen=True)
class SourceSpec:
    """Everything open_source needs besides the bytes."""

    size: int
    expected: FileFormat
    options: ReadOptions
    resume: ResumePoint
    spool_dir: Path
    archive_limits: ArchiveLimits


class Source:
    """An opened file: its header, its rows, and what the pipeline needs to know about them."""

    def __init__(
        self,
        header: list[str],
        rows: Callable[[], Iterator[SourceRow]],
        *,
        resumable: bool,
        total_rows: int | None,
        fraction: Callable[[], float],
        resources: ExitStack,
        unknown_keys: Callable[[], tuple[int, list[str]]] | None = None,
        fraction_at: Callable[[int], float] | None = None,
    ) -> None:
        self.header = header
        self._fraction_at = fraction_at
        self._done = 0.0
        self._unknown_keys = unknown_keys
        self._rows = rows
        self.resumable = resumable
        self._total_rows = total_rows
        self._fraction = fraction
        self._resources = resources

    def rows(self, *, after_row: int) -> Iterator[SourceRow]:
        """The rows after ``after_row`` (those an earlier invocation did are skipped), and progress
        marks (rows with no cells) while blank or skipped records go by."""
        skipped = 0
        for row in self._rows():
            if row.number > after_row:
                yield row
            else:
                skipped += 1
                if skipped % MARK_EVERY == 0:
                    yield progress_mark(row.number, None)

    def estimated_total(self, processed: int, *, position: int | None = None) -> int | None:
        """Exact when the format knows it; otherwise an estimate: the rows done so far over the
        share of the file they came from, which is the byte after the last processed row when it
        is known (``position``), else the bytes read. Read-ahead made the second swing the
        estimate, so the first is used whenever it exists; and the share done never goes down, so
        neither does the progress computed from it (processed / total)."""
        if self._total_rows is not None:
            return max(self._total_rows, processed)
        if position is not None and self._fraction_at is not None:
            fraction = self._fraction_at(position)
        else:
            fraction = self._fraction()
        self._done = max(self._done, min(fraction, 1.0))
        if self._done <= 0.01 or processed == 0:
            return None
        return max(processed, round(processed / self._done))

    def take_unknown_keys(self) -> tuple[int, list[str]]:
        """Keys outside the header (JSON Lines) seen since the last call: how many, and a few names."""
        return self._unknown_keys() if self._unknown_keys is not None else (0, [])

    def close(self) -> None:
        """Close the stream and remove any local copy."""
        self._resources.close()


def open_source(head: bytes, reopen: Reopen, spec: SourceSpec) -> Source:
    """Open the file whose first bytes are ``head``; raise FileProblem for what impex cannot import."""
    resources = ExitStack()
    try:
        container = sniff_container(head)
        if container == "workbook":
            return _open_workbook(reopen, spec, resources)
        if spec.expected.spreadsheet:
            raise FileProblem(f"the job expects a workbook (.{spec.expected}), but the file is not one")
        return _open_text(head, reopen, spec, resources, compressed=container == "gzip")
    except BaseException:
        resources.close()
        raise


def _open_workbook(reopen: Reopen, spec: SourceSpec, resources: ExitStack) -> Source:
    folder = Path(resources.enter_context(tempfile.TemporaryDirectory(dir=spec.spool_dir)))
    path = folder / "upload"
    with reopen(0) as body, path.open("wb") as copy:
        shutil.copyfileobj(body, copy, CHUNK)
    kind = workbook_kind(path)
    if not spec.expected.spreadsheet:
        raise FileProblem(
            f"the file is a workbook (.{kind}), but the job expects {spec.expected}; "
            f"import it with format {kind}"
        )
    # The reader picks its parser by extension: name the copy after what the content is.
    path = path.rename(path.with_suffix(f".{kind}"))
    reader = checked_workbook(path, kind, spec.options.sheet, spec.archive_limits)
    return Source(
        reader.header,
        reader.rows,
        resumable=False,
        total_rows=reader.total_rows - 1,
        fraction=lambda: 0.0,
        resources=resources,
    )


def checked_workbook(
    path: Path, kind: WorkbookKind, sheet: str | None, limits: ArchiveLimits
) -> WorkbookReader:
    """A reader of the workbook at ``path`` once it has passed every check: its archive (sizes,
    ratios, entities), then what its sheet would take in memory (the extent of its cells, or the
    footprint of an .xls/.xlsb/.ods)."""
    budget = limits.max_sheet_bytes
    streaming = False
    if kind is WorkbookKind.XLSX:
        extent = check_xlsx(path, limits, sheet, budget)
        streaming = extent is not None and extent.positional
    else:
        if kind is not WorkbookKind.XLS:
            check_archive(path, limits)
        check_footprint(path, kind, sheet, budget)
    return WorkbookReader(path, sheet=sheet, kind=kind, streaming=streaming)


def _decompressed_head(head: bytes) -> bytes:
    try:
        inner = gzip.GzipFile(fileobj=io.BytesIO(head)).read1(HEAD_BYTES)
    except (OSError, EOFError, zlib.error):
        inner = b""
    if not inner:
        raise FileProblem("the file is gzip-compressed but could not be decompressed")
    if sniff_container(inner) != "text":
        raise FileProblem("the gzip file holds a workbook or another gzip file; upload the workbook itself")
    return inner


def _sample(head: bytes, encoding: str) -> str:
    """The first bytes as text, for telling JSON Lines from delimited text and sniffing the delimiter."""
    try:
        return head.decode(encoding, errors="replace")
    except UnicodeError:  # e.g. utf-16 asked for, and no BOM to tell the byte order
        raise FileProblem(
            f"the file does not start as {encoding} text does (no byte-order mark?); set options.encoding "
            "to one that names the byte order, e.g. utf-16-le"
        ) from None


def _check_text_kind(kind: str, expected: FileFormat) -> None:
    if kind == "jsonl" and expected.plain in (FileFormat.CSV, FileFormat.TSV):
        raise FileProblem(f"the file holds JSON Lines, but the job expects {expected}; import it as jsonl")
    if kind == "delimited" and expected.plain is FileFormat.JSONL:
        raise FileProblem("the job expects JSON Lines, but the file does not start with a JSON object")


def _open_text(
    head: bytes, reopen: Reopen, spec: SourceSpec, resources: ExitStack, *, compressed: bool
) -> Source:
    if compressed:
        head = _decompressed_head(head)
    encoding = detect_encoding(head, spec.options.encoding)
    sample = _sample(head, encoding)
    kind = text_kind(sample)
    _check_text_kind(kind, spec.expected)
    resume = spec.resume
    # Resume exactly where the last checkpoint left off (a ranged GET), when the format allows it.
    resuming = resume.offset is not None and resume.header is not None and not compressed
    start = (resume.offset or 0) if resuming else 0
    resume_rows = resume.last_row if resuming else 0
    # A checkpoint taken after the last row points at the end of the file: nothing is left to read.
    body: IO[bytes] = io.BytesIO() if start >= spec.size else reopen(start)
    counted = _CountingStream(body, already=start)
    resources.callback(counted.close)
    inflated = _Inflated(gzip.GzipFile(fileobj=counted)) if compressed else None
    stream: IO[bytes] = inflated or io.BufferedReader(counted, CHUNK)  # type: ignore[assignment]
    lines = LineSource(stream, encoding, start_offset=start, terminator=first_lines_terminator(head))
    header = resume.header if start else None
    size = max(spec.size, 1)
    resumable = lines.byte_exact and not compressed
    reader = _text_reader(kind, lines, spec, sample, header=header, resume_rows=resume_rows)
    return Source(
        reader.header,
        reader.rows,
        resumable=resumable,
        total_rows=None,
        fraction=lambda: counted.consumed / size,
        resources=resources,
        fraction_at=_share_of_file(counted, inflated, size),
        unknown_keys=reader.take_unknown_keys if isinstance(reader, JsonLinesReader) else None,
    )


def _text_reader(
    kind: str, lines: LineSource, spec: SourceSpec, sample: str, *, header: list[str] | None, resume_rows: int
) -> JsonLinesReader | DelimitedReader:
    if kind == "jsonl":
        return JsonLinesReader(lines, header=header, rows_done=resume_rows)
    delimiter = spec.options.delimiter or (
        "\t" if spec.expected.plain is FileFormat.TSV else sniff_delimiter(sample)
    )
    return DelimitedReader(lines, delimiter, header=header, rows_done=max(resume_rows - 1, 0))


def _share_of_file(counted: _CountingStream, inflated: _Inflated | None, size: int) -> Callable[[int], float]:
    """Where a row ends, as a share of the file: its offset over the size, or for gzip over the size
    it will inflate to at the ratio seen so far (a gzip file's offsets are decompressed bytes)."""
    if inflated is None:
        return lambda offset: offset / size
    return lambda offset: offset * counted.consumed / (size * max(inflated.produced, 1))


class _Inflated(io.RawIOBase):
    """A gzip stream whose corrupt or truncated data is a file problem, not a transient failure
    (a failure to read the store's bytes still is one)."""

    def __init__(self, inner: gzip.GzipFile) -> None:
        self._inner = inner
        self.produced = 0  # decompressed bytes handed out, for the inflation ratio of estimates

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._inner.read(size)
            self.produced += len(data)
            return data
        except (gzip.BadGzipFile, zlib.error, EOFError) as error:
            raise FileProblem(f"the gzip data is corrupt or cut short ({error})") from None

    def close(self) -> None:
        self._inner.close()
        super().close()


class _CountingStream(io.RawIOBase):
    """Counts the bytes read from the store (for progress estimates)."""

    def __init__(self, inner: IO[bytes], already: int = 0) -> None:
        self._inner = inner
        self.consumed = already

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self.consumed += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._inner.close()
        super().close()
