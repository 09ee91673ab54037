"""Excel (.xlsx): archive safety checks and reading with python-calamine (openpyxl as the fallback).
impex's writer is formats/sheet_xml.py."""

from __future__ import annotations

import operator
import re
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from typing import Any

from impex.formats.columns import MARK_EVERY, SourceRow, progress_mark
from impex.formats.errors import FileProblem
from impex.formats.workbooks import (
    MAX_COLUMNS,
    WorkbookKind,
    missing_part,
    named_twice,
    parsed_part,
    part_of_target,
    parts_as_read,
)

SCAN_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ArchiveLimits:
    """Zip-bomb guards (total uncompressed size, the compression ratio of any one entry) and the
    memory a sheet's dense range may take."""

    max_uncompressed_bytes: int = 1024**3
    max_ratio: int = 200
    max_sheet_bytes: int = 442 * 1024**2


def check_archive(path: Path, limits: ArchiveLimits) -> None:
    """Refuse a workbook that is not one, that inflates too far, or that declares XML entities.

    Every entry is inflated once here, under a running cap, so sizes an attacker declares falsely
    are caught (by the cap or by the CRC check) before any XML parser sees the file.
    """
    with _open_archive(path) as archive:
        _inflate_members(archive, archive.infolist(), limits, _Inflated())


def check_xlsx(path: Path, limits: ArchiveLimits, sheet: str | None, budget_bytes: int) -> SheetExtent | None:
    """check_archive, and the extent of the sheet's cells against the memory budget, in one inflating
    pass (the sheet's XML is scanned as it is inflated; a second pass cost ~0.2 s per 100 MB).

    A dense reader allocates the rectangle from the first to the last cell referenced, whatever the
    sheet declares: one cell at A1 and one at XFD1048576 make a 1.6 KB file whose range is 17 billion
    cells, and that allocation fails with an abort no Python handler can catch. So every cell
    reference is read, streaming, before any reader runs.
    """
    with _open_archive(path) as archive:
        entries = archive.infolist()
        parts = parts_as_read(entries)
        # The workbook and its relations (which name the sheet's member) are checked first, so they
        # are read only once they are known to be safe.
        first = [parts[name] for name in sorted(_WORKBOOK_PARTS) if name in parts]
        inflated = _Inflated()
        capped = {entry.filename: _PartCap(entry.filename).feed for entry in first}
        _inflate_members(archive, first, limits, inflated, scanners=capped)
        member = _sheet_member(archive, parts, sheet)
        scan = _ExtentScan()
        scanners: dict[str, Callable[[bytes], None]] = {}
        strings = _SharedStrings(budget_bytes)
        if (table := parts.get("xl/sharedstrings.xml")) is not None:
            scanners[table.filename] = strings.feed
        if member is not None:
            scanners[member] = scan.feed
        done = {entry.filename for entry in first}
        rest = [entry for entry in entries if entry.filename not in done]
        _inflate_members(archive, rest, limits, inflated, scanners=scanners)
    if member is None:
        return None  # the reader reports a missing sheet itself
    extent = _within_budget(scan.extent(), budget_bytes)
    _within_memory(extent, scan.text_bytes(), strings.estimate, budget_bytes)
    if scan.positional:
        return replace(extent or SheetExtent(1, 1, 1, 1), positional=True)
    return extent


_WORKBOOK_PARTS = frozenset({"xl/workbook.xml", "xl/_rels/workbook.xml.rels"})
# The most either of those may inflate to. They are parsed whole (to find the sheet), as a tree about
# ten times their size: a 140 MB workbook.xml of defined names (7.7 MB deflated) took 1.4 GB. Excel
# writes a few KB.
WORKBOOK_PART_BYTES = 16 * 1024**2


class _PartCap:
    """Refuses a workbook part that inflates past WORKBOOK_PART_BYTES, fed in chunks as it is inflated."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._bytes = 0

    def feed(self, chunk: bytes) -> None:
        """Count the next chunk; FileProblem once the part is past its cap."""
        self._bytes += len(chunk)
        if self._bytes > WORKBOOK_PART_BYTES:
            raise FileProblem(
                f"the workbook's {self._name} inflates past {WORKBOOK_PART_BYTES // 1024**2} MB (Excel "
                "writes a few KB: it lists the sheets and their names); re-save the file from Excel, or save "
                "the sheet as CSV"
            )


@dataclass
class _Inflated:
    """Bytes inflated so far, across the archive's entries."""

    total: int = 0


def _open_archive(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise FileProblem(
            "the file looks like a zip archive but cannot be opened; is it a complete .xlsx?"
        ) from None


def _inflate_members(
    archive: zipfile.ZipFile,
    entries: list[zipfile.ZipInfo],
    limits: ArchiveLimits,
    inflated: _Inflated,
    *,
    scanners: Mapping[str, Callable[[bytes], None]] | None = None,
) -> None:
    for info in entries:
        if info.file_size > limits.max_ratio * max(info.compress_size, 1) and info.file_size > SCAN_CHUNK:
            raise FileProblem(
                _bomb(f"entry {info.filename} expands {info.file_size // max(info.compress_size, 1)}x")
            )
        is_xml = info.filename.endswith((".xml", ".rels", ".vml"))
        scanned = (scanners or {}).get(info.filename)
        tail = b""
        try:
            with archive.open(info) as entry:
                while chunk := entry.read(SCAN_CHUNK):
                    inflated.total += len(chunk)
                    if inflated.total > limits.max_uncompressed_bytes:
                        raise FileProblem(
                            _bomb(f"it inflates past {limits.max_uncompressed_bytes // 1024**2} MB")
                        )
                    if is_xml and (b"<!DOCTYPE" in tail + chunk or b"<!ENTITY" in tail + chunk):
                        raise FileProblem(
                            "the workbook declares XML entities (a possible XML bomb); "
                            "Excel never writes these, so re-save the file from Excel"
                        )
                    tail = chunk[-16:]
                    if scanned is not None:
                        scanned(chunk)
        except (zipfile.BadZipFile, EOFError, OSError) as error:
            raise FileProblem(f"the workbook is corrupt ({error})") from None


CELL_BYTES = 32  # what the dense reader keeps per cell of a sheet's range
CELL_MARKUP_BYTES = 11  # the least XML a referenced cell takes: <c r="A1"/>
# Any attribute named r (prefixed or not, either quote, spaces around =) holding a cell reference:
# found without parsing tags, so a ">" inside another attribute's value cannot hide one.
# The pattern starts with its literal "r" (the look-behind follows it) so the engine can skip ahead.
# Letters and digits of any length: calamine reads B99999999 (row 99,999,999) and AAAA1 (column
# 18,279), and a scan that matched only what Excel writes let such a cell through to the reader.
_CELL_REF = re.compile(rb"r(?<=[^\w.-]r)\s*=\s*[\"']([A-Za-z]+)([0-9]+)[\"']")
_LETTERS, _NUMBER = operator.itemgetter(0), operator.itemgetter(1)  # of a reference found
# A cell calamine places by order: the start tag of a <c> (any prefix; not an empty <c/>, which it
# skips) none of whose attributes is named r. Attributes are matched whole, quoted values and all, so
# an "r=" inside another one's value does not count; a tag whose attributes are not well formed does
# not match, and calamine refuses it. A tag split across chunks is looked at whole in the next window.
_ATTRIBUTES_BUT_R = rb"(?:\s+(?!r\s*=)[A-Za-z_][\w.:-]*\s*=\s*(?:\"[^\"]*\"|'[^']*'))*\s*>"
_POSITIONAL_CELL = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?c" + _ATTRIBUTES_BUT_R)
# The same without a prefix, which starts with a literal "<c" the engine skips to: 0.22-0.30 s over the
# bench's 100 MB sheet against 0.80-0.82 s (run where the window holds no ":c", which a prefix needs).
_UNPREFIXED_POSITIONAL_CELL = re.compile(rb"<c" + _ATTRIBUTES_BUT_R)
_ROW_DIGITS, _COLUMN_LETTERS = 7, 3  # the most a row number (leading zeros aside) and a column may have
EXCEL_LAST_ROW = 1_048_576
# What a reference may be made of: the end of a chunk made only of these may hold half of one.
_REF_BYTES = frozenset(b" \t\r\n=\"'0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True)
class SheetExtent:
    """The rectangle of cells a dense reader allocates for a sheet: from its first to its last used cell
    (a declared dimension is not what it allocates: calamine ignores it, and openpyxl is told to)."""

    first_row: int
    first_column: int
    last_row: int
    last_column: int
    # Cells placed by their order, not a reference (a <c> without r): calamine puts one after the last
    # cell of its row and after the last row's end, so its range cannot be known from references, and
    # such a sheet is read by the streaming reader instead.
    positional: bool = False

    @property
    def cells(self) -> int:
        """How many cells the rectangle holds."""
        return (self.last_row - self.first_row + 1) * (self.last_column - self.first_column + 1)

    def reference(self) -> str:
        """The rectangle as a spreadsheet names it (A1:XFD1048576)."""
        first = f"{_column_name(self.first_column)}{self.first_row}"
        return f"{first}:{_column_name(self.last_column)}{self.last_row}"


def _within_budget(extent: SheetExtent | None, budget_bytes: int) -> SheetExtent | None:
    if extent is not None and extent.last_column - extent.first_column + 1 > MAX_COLUMNS:
        raise FileProblem(
            f"the sheet's cells span {extent.reference()}, past Excel's last column (XFD); delete the cells "
            "past column XFD, or save the sheet as CSV"
        )
    if extent is not None and extent.cells * CELL_BYTES > budget_bytes:
        raise FileProblem(
            f"the sheet's cells span {extent.reference()} ({extent.cells:,} cells), more than the importer "
            f"can hold in memory ({budget_bytes // 1024**2:,} MB); delete the stray cells far from the data, "
            "or save the sheet as CSV"
        )
    return extent


def _within_memory(extent: SheetExtent | None, text: int, strings: int, budget_bytes: int) -> None:
    """Refuse a sheet whose range, text and shared strings together take more than twice the budget:
    each within its own budget, they could still add up past the function's memory (the reader keeps
    inline text as it is: 200 MB of one letter with a random one every 300 bytes is a 1.8 MB upload,
    within the zip-bomb ratio, that calamine held in 210 MB)."""
    cells = extent.cells * CELL_BYTES if extent is not None else 0
    held, allowed = cells + text + strings, 2 * budget_bytes
    if held > allowed:
        mb = 1024**2
        raise FileProblem(
            f"reading the sheet would hold about {held // mb:,} MB ({cells // mb:,} MB for its cells' range, "
            f"{text // mb:,} MB of text, {strings // mb:,} MB of shared strings), more than the importer can "
            f"give ({allowed // mb:,} MB); save the sheet as CSV, or split it into smaller workbooks"
        )


def _sheet_member(
    archive: zipfile.ZipFile, parts: dict[str, zipfile.ZipInfo], sheet: str | None
) -> str | None:
    """The archive member holding the named sheet (or the first), from the workbook and its relations,
    found as calamine finds it (a target from the archive's root if it starts with a slash, else from
    xl/; names in any case)."""
    workbook_part, relations_part = parts.get("xl/workbook.xml"), parts.get("xl/_rels/workbook.xml.rels")
    if workbook_part is None or relations_part is None:
        return None  # the reader fails on it, and says so
    chosen = _chosen_sheet(parsed_part(archive, workbook_part), sheet)
    if chosen is None:
        return None
    name = chosen.get("name") or ""
    target = _relation_target(parsed_part(archive, relations_part), chosen, name)
    member = part_of_target(parts, target) if target is not None else None
    if member is None:
        raise missing_part(name, target or "")
    return member


def _relation_target(relations: Any, chosen: Any, name: str) -> str | None:
    """The target of the one relation the sheet element names; None when there is none."""
    ids = {value for key, value in chosen.attrib.items() if _local(key) == "id"}
    found = [element for element in relations if element.get("Id") in ids]
    if len(ids) > 1 or len(found) > 1:
        raise named_twice(name)
    return (found[0].get("Target") or "") if found else None


def _chosen_sheet(workbook: Any, sheet: str | None) -> Any:
    """The workbook's <sheet> element of that name (or its first), with or without a namespace, at any
    depth, as calamine lists them; a name listed twice is refused (which one a reader takes is its
    choice)."""
    sheets = [element for element in workbook.iter() if _local(element.tag) == "sheet"]
    chosen = next((e for e in sheets if sheet is None or e.get("name") == sheet), None)
    if chosen is not None and sum(e.get("name") == chosen.get("name") for e in sheets) > 1:
        raise named_twice(chosen.get("name") or "")
    return chosen


def _local(name: str) -> str:
    """An XML tag's or attribute's name without its namespace."""
    return name.rsplit("}", 1)[-1]


# What calamine holds for each shared string, at most, besides its text (measured: 24 bytes for an
# empty one, 56 for a short one whose XML is 22 bytes; the text itself is never longer than its XML).
STRING_BYTES = 40
# Where a shared string starts, as calamine sees one (prefixed or not), counted with bytes.count: no
# other element of the table starts with "si", and text cannot hold a "<", so this never undercounts
# (an unknown <sig> element, or ":si" in a text, would count too: the estimate only grows).
_STRING_STARTS = (b"<si", b":si")
_STRING_TAIL = 2  # the bytes of a window's end a start may have begun in (a start is 3 bytes)


class _SharedStrings:
    """The memory the reader's shared-strings table will take, fed in chunks as it is inflated: a
    workbook of 200 million empty strings is a 7 MB upload that needs 5 GB, so the table is refused,
    saying so, once its estimate passes the budget."""

    def __init__(self, budget_bytes: int) -> None:
        self._budget = budget_bytes
        self._strings = 0
        self._bytes = 0
        self._tail = b""

    @property
    def estimate(self) -> int:
        """The memory the table takes, at most, by its strings and bytes so far."""
        return self._strings * STRING_BYTES + self._bytes

    def feed(self, chunk: bytes) -> None:
        """Count the next chunk's strings (and their bytes); FileProblem once past the budget."""
        window = self._tail + chunk
        tail = self._tail
        self._strings += sum(window.count(start) - tail.count(start) for start in _STRING_STARTS)
        self._bytes += len(chunk)
        self._tail = window[-_STRING_TAIL:]
        if self.estimate > self._budget:
            megabytes, budget = self._bytes // 1024**2, self._budget // 1024**2
            raise FileProblem(
                f"the workbook's shared strings (over {self._strings:,} strings, {megabytes:,} MB) take "
                f"more memory than the importer can hold ({budget:,} MB); save the sheet as CSV, or split "
                "it into smaller workbooks"
            )


class _ExtentScan:
    """The bounds of every cell reference in a sheet's XML, fed in chunks as it is inflated."""

    def __init__(self) -> None:
        self._rows: list[int] = []
        self._columns: list[int] = []
        self._tail = b""
        self._bytes = 0
        self._references = 0
        self.positional = False
        self._tag_tail = b""

    def feed(self, chunk: bytes) -> None:
        """Scan the next chunk (with the end of the last one a reference may be running in)."""
        window = self._tail + chunk
        if not self.positional:
            self._look_for_positional_cells(self._tag_tail + chunk)
        # A reference in the carried-over tail may be found twice: the bounds do not mind.
        found = _CELL_REF.findall(window)
        self._bytes += len(chunk)
        self._references += len(found)
        if found:
            # C-level work: a sheet has millions. (zip(*found) to split the pairs cost more than
            # the regex: one call with every pair as an argument.)
            numbers = list(map(_NUMBER, found))
            if max(map(len, numbers)) > _ROW_DIGITS:  # rare: leading zeros, or a row no sheet has
                numbers = [_row_digits(number, found) for number in numbers]
            row_numbers = list(map(int, numbers))
            self._rows += (min(row_numbers), max(row_numbers))
            distinct = set(map(_LETTERS, found))
            if max(map(len, distinct)) > _COLUMN_LETTERS:
                letters = max(distinct, key=len)
                raise FileProblem(_too_far(_shown(letters), "past Excel's last column (XFD)"))
            upper = {letter.upper() for letter in distinct}
            self._columns += (min(map(_column_number, upper)), max(map(_column_number, upper)))
        self._tail = _unfinished(window)

    def _look_for_positional_cells(self, window: bytes) -> None:
        pattern = _POSITIONAL_CELL if b":c" in window else _UNPREFIXED_POSITIONAL_CELL
        self.positional = pattern.search(window) is not None
        # A tag the window ends inside is looked at whole in the next one.
        start = window.rfind(b"<")
        self._tag_tail = window[start:] if start >= 0 and window.find(b">", start) < 0 else b""
        if len(self._tag_tail) > SCAN_CHUNK:
            raise FileProblem("the sheet holds a tag over 1 MB long; it is not a sheet Excel writes")

    def text_bytes(self) -> int:
        """At most how much of the sheet's XML is text the reader keeps (inline strings, numbers):
        what is left once each cell's least markup (<c r="A1"/>) is taken off."""
        return max(0, self._bytes - CELL_MARKUP_BYTES * self._references)

    def extent(self) -> SheetExtent | None:
        """The rectangle from the first to the last cell referenced, or None for a sheet with none."""
        if not self._rows:
            return None
        return SheetExtent(min(self._rows), min(self._columns), max(self._rows), max(self._columns))


def _row_digits(number: bytes, found: list[tuple[bytes, bytes]]) -> bytes:
    """A row number's digits without leading zeros; FileProblem for one past any sheet's last row."""
    digits = number.lstrip(b"0") or b"0"
    if len(digits) > _ROW_DIGITS:
        letters = next(letters for letters, candidate in found if candidate is number)
        reference = _shown(letters) + _shown(digits)
        raise FileProblem(_too_far(reference, f"past Excel's last row ({EXCEL_LAST_ROW:,})"))
    return digits


def _shown(text: bytes) -> str:
    """A reference's letters or digits as a message shows them (a long run cut short)."""
    return text[:12].decode("ascii") + ("…" if len(text) > 12 else "")


def _too_far(reference: str, where: str) -> str:
    return f"the sheet has a cell at {reference}, {where}; delete that cell, or save the sheet as CSV"


def _unfinished(window: bytes) -> bytes:
    """The end of the window a reference may still be running in: from the byte before the last run
    of reference characters (a longer run than a chunk cannot be markup Excel writes)."""
    start = len(window)
    while start > 0 and window[start - 1] in _REF_BYTES:
        start -= 1
        if len(window) - start > SCAN_CHUNK:
            raise FileProblem(
                "the sheet holds over 1 MB of text with no markup; it is not a sheet Excel writes"
            )
    return window[max(start - 1, 0) :]


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters.upper():
        number = number * 26 + letter - 64
    return number


def _column_name(number: int) -> str:
    name = ""
    while number:
        number, remainder = divmod(number - 1, 26)
        name = chr(65 + remainder) + name
    return name


def _bomb(detail: str) -> str:
    return f"the workbook is unsafe to open: {detail} (a possible zip bomb)"


class WorkbookReader:
    """Rows of one sheet (the first, or a named one) of any workbook calamine reads (.xlsx, .xlsb,
    .xls, .ods), with openpyxl as the fallback for .xlsx. Row numbers are the sheet's own."""

    def __init__(
        self,
        path: Path,
        *,
        sheet: str | None = None,
        kind: WorkbookKind = WorkbookKind.XLSX,
        streaming: bool = False,
    ) -> None:
        """``streaming``: read the .xlsx with openpyxl's streaming reader, never calamine's dense one
        (for a sheet whose cells' range the check could not know)."""
        if streaming:
            self._rows, self.sheet_names, self.total_rows = _streaming_rows(path, sheet)
            self.header = self._read_header()
            return
        try:
            self._rows, self.sheet_names, self.total_rows = _calamine_rows(path, sheet)
        except _StartsFarDown:
            if kind is not WorkbookKind.XLSX:
                raise
            self._rows, self.sheet_names, self.total_rows = _streaming_rows(path, sheet)
        except FileProblem:
            raise
        except _NOT_OURS:
            raise
        except BaseException as error:  # BaseException: a panic inside the Rust reader is one
            if kind is not WorkbookKind.XLSX:
                raise _unreadable(error) from None
            self._rows, self.sheet_names, self.total_rows = _streaming_rows(path, sheet)
        self.header = self._read_header()

    def _read_header(self) -> list[str]:
        with _reader_failures():
            for _, cells in self._rows:
                if any(not _blank(cell) for cell in cells):
                    return ["" if _blank(cell) else _header_text(cell) for cell in cells]
        raise FileProblem("the sheet has no header row")

    def rows(self) -> Iterator[SourceRow]:
        """Data rows after the header; empty rows are skipped (their numbers are kept by the others)."""
        with _reader_failures():
            yield from self._data_rows()

    def _data_rows(self) -> Iterator[SourceRow]:
        empty = 0
        for number, cells in self._rows:
            # Most rows have no blank cell: they are handed on as the reader made them; the others
            # get None for every blank cell (empty, or only whitespace), and are skipped if all are.
            # (A row the streaming reader made of nothing, [], between two rows far apart, is empty.)
            if not cells or None in cells or any(map(_blank_text, cells)):
                cells = [None if cell is None or _blank_text(cell) else cell for cell in cells]
                if cells.count(None) == len(cells):
                    empty += 1
                    if empty % MARK_EVERY == 0:
                        yield progress_mark(number, None)
                    continue
            yield SourceRow(number, cells, None)


# What a reader's failure never is: the process being stopped, or a generator being closed.
_NOT_OURS = (KeyboardInterrupt, SystemExit, GeneratorExit)


def _unreadable(error: BaseException) -> FileProblem:
    return FileProblem(f"the workbook cannot be read ({type(error).__name__}: {str(error)[:200]})")


@contextmanager
def _reader_failures() -> Iterator[None]:
    """A reader's own failure on a malformed sheet (or its panic) becomes a FileProblem saying so."""
    try:
        yield
    except (FileProblem, *_NOT_OURS):
        raise
    except BaseException as error:  # BaseException: a panic inside the Rust reader is one
        raise _unreadable(error) from None


def _blank(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _blank_text(cell: Any) -> bool:
    """An empty or whitespace-only text cell (None is checked apart, at C speed)."""
    return cell.__class__ is str and (not cell or cell.isspace())


def _header_text(cell: Any) -> str:
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


def _calamine_rows(path: Path, sheet: str | None) -> tuple[Iterator[tuple[int, list[Any]]], list[str], int]:
    from python_calamine import CalamineWorkbook

    workbook = CalamineWorkbook.from_path(str(path))
    names = list(workbook.sheet_names)
    if sheet is not None and sheet not in names:
        raise FileProblem(f"the workbook has no sheet '{sheet}'; its sheets are: {', '.join(names)}")
    worksheet = workbook.get_sheet_by_name(sheet) if sheet else workbook.get_sheet_by_index(0)
    if worksheet.start is None:  # no cell at all
        return iter(()), names, 0
    above, width = worksheet.start[0], int(worksheet.width)
    if above * width > MAX_CELLS_ABOVE:
        raise _StartsFarDown(above, width)
    # The iterator yields an empty row for each row above the range, then the range's rows: those
    # are stepped past, and the range's first row is numbered as the sheet numbers it. (calamine makes
    # a new list for every row: each is handed on as it is, not copied.)
    rows = islice(worksheet.iter_rows(), above, None)
    return enumerate(rows, start=above + 1), names, int(worksheet.height)


# python-calamine's row iterator steps through the rows above a sheet's range as rows of empty cells as
# wide as the range (~15 ns a cell here): two cells, at A1000000 and XFD1000000, are a small range and
# 16 billion empty cells above it, about four minutes of a worker each read. Past this many, the .xlsx
# is read by the streaming reader, and other workbooks are refused.
MAX_CELLS_ABOVE = 20_000_000


class _StartsFarDown(FileProblem):
    """The sheet's cells start too far down, over too many columns, for calamine's iterator."""

    def __init__(self, above: int, width: int) -> None:
        super().__init__(
            f"the sheet's cells start at row {above + 1:,} and span {width:,} columns: reading past the "
            f"{above * width:,} empty cells above them would take too long; delete the empty rows above the "
            "data (or the stray cells far to its right), or save the sheet as .xlsx or CSV"
        )


def _streaming_rows(path: Path, sheet: str | None) -> tuple[Iterator[tuple[int, list[Any]]], list[str], int]:
    """openpyxl's rows cut to the columns the sheet uses, each as wide as they are, as calamine's range
    (the rectangle of the used cells) has them: a short row is no ragged one, a header shorter than a
    later row leaves that row's extra columns with no header, and unused columns on the left are not
    there. Finding those columns takes a first pass over the sheet; this reader is only for the rare
    sheet calamine cannot read or whose range the check could not know. (One difference is left: an
    inline text's surrounding spaces without xml:space="preserve" are kept here, calamine trims them.)"""
    with _reader_failures():
        rows, names, _ = _openpyxl_rows(path, sheet)
        used = _used_range(rows)
    if used is None:
        return iter(()), names, 0
    rows, names, _ = _openpyxl_rows(path, sheet)
    first_row, first, last_row, last = used
    width = last - first

    def cut() -> Iterator[tuple[int, list[Any]]]:
        for number, cells in rows:
            # A row openpyxl made of nothing ([], between rows far apart) stays empty.
            cells = cells[first:last]
            if cells and len(cells) < width:
                cells += [None] * (width - len(cells))
            yield number, cells

    return cut(), names, last_row - first_row + 1


def _used_range(rows: Iterator[tuple[int, list[Any]]]) -> tuple[int, int, int, int] | None:
    """The first and last row numbers with a value, and the columns (from, to: 0-based, end excluded)
    holding one; None for a sheet without any."""
    used: tuple[int, int, int, int] | None = None
    for number, cells in rows:
        held = [position for position, cell in enumerate(cells) if cell is not None]
        if not held:
            continue
        if used is None:
            used = (number, held[0], number, held[-1] + 1)
        else:
            used = (used[0], min(used[1], held[0]), number, max(used[3], held[-1] + 1))
    return used


def _openpyxl_rows(path: Path, sheet: str | None) -> tuple[Iterator[tuple[int, list[Any]]], list[str], int]:
    # openpyxl parses through defusedxml when it is installed (it is, in the data layer).
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as error:
        raise _unreadable(error) from None
    names = list(workbook.sheetnames)
    if not names:
        raise FileProblem("the workbook has no sheets")
    if sheet is not None and sheet not in names:
        raise FileProblem(f"the workbook has no sheet '{sheet}'; its sheets are: {', '.join(names)}")
    worksheet = workbook[sheet] if sheet else workbook[names[0]]
    # A declared dimension is the file's word, not its cells': read-only rows would be padded to it.
    worksheet.reset_dimensions()

    def numbered() -> Iterator[tuple[int, list[Any]]]:
        try:
            for number, row in enumerate(worksheet.iter_rows(values_only=True), start=1):
                yield number, list(row)
        finally:
            workbook.close()  # a read-only workbook holds its archive open until closed

    return numbered(), names, int(worksheet.max_row or 0)
