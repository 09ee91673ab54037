"""Workbooks other than .xlsx: telling them apart by content, and measuring, before the reader runs,
the memory its dense ranges would take.

python-calamine reads .xls, .xlsb and .ods into dense ranges (from the first to the last used cell),
and a few stray cells far apart make a tiny file whose ranges need gigabytes: the allocation then
aborts the process, which no Python handler can catch. Each scan below walks the file's own cell
records the way the reader does and adds up what it would allocate, so such a file is refused with
a message instead. Per-cell sizes are calamine's (a cell value is 32 bytes, a formula text 24, a
positioned cell 40), and were checked against the peak RSS of reading sparse files.
"""

from __future__ import annotations

import struct
import xml.parsers.expat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from impex.formats.errors import FileProblem

VALUE_BYTES = 32  # a cell value in a dense range
FORMULA_BYTES = 24  # a formula's text in the parallel formula range
POSITIONED_BYTES = 40  # a cell value with its position, as read before the range is built

# Excel's last column (XFD). Readers take wider rows, and every row of such a sheet becomes a Python
# list that wide, mapped and converted cell by cell: far more memory than the range itself.
MAX_COLUMNS = 16_384

ODS_MIMETYPE = b"application/vnd.oasis.opendocument.spreadsheet"
OLE2_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


class WorkbookKind(StrEnum):
    """The workbook formats impex imports, as their content tells them apart."""

    XLSX = "xlsx"
    XLSB = "xlsb"
    ODS = "ods"
    XLS = "xls"


def workbook_kind(path: Path) -> WorkbookKind:
    """Which workbook the file is, from its content (zip members, OLE2 streams), never its name."""
    with path.open("rb") as file:
        head = file.read(len(OLE2_SIGNATURE))
    if head == OLE2_SIGNATURE:
        return _ole2_kind(path)
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise FileProblem(
            "the file looks like a zip archive but cannot be opened; is it a complete workbook?"
        ) from None
    with archive:
        names = set(archive.namelist())
        if "xl/workbook.xml" in names:
            return WorkbookKind.XLSX
        if "xl/workbook.bin" in names:
            return WorkbookKind.XLSB
        if "mimetype" in names:
            mimetype = _small_member(archive, "mimetype").strip()
            if mimetype == ODS_MIMETYPE:
                return WorkbookKind.ODS
            if mimetype.startswith(b"application/vnd.oasis.opendocument."):
                kind = mimetype.rsplit(b".", 1)[-1].decode("ascii", "replace")
                raise FileProblem(f"the file is an OpenDocument {kind} document, not a spreadsheet")
    raise FileProblem("the file is a zip archive but not a workbook (.xlsx, .xlsb or .ods)")


def _small_member(archive: zipfile.ZipFile, name: str) -> bytes:
    try:
        with archive.open(name) as member:
            return member.read(256)
    except (zipfile.BadZipFile, EOFError, OSError, RuntimeError) as error:
        raise FileProblem(f"the workbook is corrupt ({error})") from None


def _ole2_kind(path: Path) -> WorkbookKind:
    streams = _ole2_streams(path)
    if "workbook" in streams or "book" in streams:
        return WorkbookKind.XLS
    if "encryptedpackage" in streams:
        raise FileProblem(
            "the workbook is password-protected; remove the password in Excel and upload it again"
        )
    if "worddocument" in streams:
        raise FileProblem("the file is a Word document, not a workbook")
    raise FileProblem("the file is an OLE2 compound file (an old Office format), but not an Excel workbook")


def _ole2_streams(path: Path) -> set[str]:
    import olefile  # the data layer's; read only when an OLE2 file arrives

    try:
        with olefile.OleFileIO(str(path)) as ole:
            return {"/".join(entry).lower() for entry in ole.listdir()}
    except Exception as error:  # olefile raises many kinds on a damaged container
        raise FileProblem(f"the file is a damaged Excel 97-2003 (.xls) workbook ({error})") from None


@dataclass
class Footprint:
    """What reading a workbook's ranges allocates, with the sheet that takes most of it."""

    bytes: int = 0
    worst_sheet: str = ""
    worst_cells: int = 0
    widest_sheet: str = ""
    widest: int = 0

    def add(self, sheet: str, cells: int, size: int, *, columns: int = 0) -> None:
        """Count one sheet's ranges (and how many columns its range spans)."""
        self.bytes += size
        if cells > self.worst_cells:
            self.worst_sheet, self.worst_cells = sheet, cells
        if columns > self.widest:
            self.widest_sheet, self.widest = sheet, columns


@dataclass
class _Bounds:
    first_row: int = -1
    last_row: int = -1
    first_column: int = -1
    last_column: int = -1
    count: int = 0

    def add(self, row: int, first_column: int, last_column: int) -> None:
        if self.first_row < 0:
            self.first_row = self.last_row = row
            self.first_column, self.last_column = first_column, last_column
        else:
            self.first_row, self.last_row = min(self.first_row, row), max(self.last_row, row)
            self.first_column = min(self.first_column, first_column)
            self.last_column = max(self.last_column, last_column)
        self.count += last_column - first_column + 1

    @property
    def columns(self) -> int:
        return 0 if self.first_row < 0 else self.last_column - self.first_column + 1

    @property
    def cells(self) -> int:
        return 0 if self.first_row < 0 else (self.last_row - self.first_row + 1) * self.columns


def check_footprint(path: Path, kind: WorkbookKind, sheet: str | None, budget_bytes: int) -> Footprint:
    """Refuse a .xls, .xlsb or .ods workbook whose ranges would not fit the memory budget."""
    if kind is WorkbookKind.XLS:
        footprint = _xls_footprint(path)
    elif kind is WorkbookKind.XLSB:
        footprint = _xlsb_footprint(path, sheet)
    elif kind is WorkbookKind.ODS:
        footprint = _ods_footprint(path)
    else:
        raise ValueError(f"{kind} workbooks are measured by the .xlsx scan")
    if footprint.widest > MAX_COLUMNS:
        raise FileProblem(
            f"the sheet '{footprint.widest_sheet}' spans {footprint.widest:,} columns, more than Excel's "
            f"{MAX_COLUMNS:,} (A to XFD); delete the cells past column XFD, or save the sheet as CSV"
        )
    if footprint.bytes > budget_bytes:
        raise FileProblem(
            f"reading the workbook would take {footprint.bytes // 1024**2:,} MB of memory, more than the "
            f"importer can give ({budget_bytes // 1024**2:,} MB): its sheet '{footprint.worst_sheet}' spans "
            f"{footprint.worst_cells:,} cells; delete the stray cells far from the data, "
            "or save the sheet as CSV"
        )
    return footprint


# --- .xlsb: BIFF12 records in a zip --------------------------------------------------------------

_XLSB_ROW = 0x0000
_XLSB_VALUE_CELLS = frozenset(range(0x0002, 0x000C))  # BrtCellRk … BrtFmlaError (blank cells are skipped)
_XLSB_BUNDLE_SHEET = 0x009C
_XLSB_BEGIN_SHEET_DATA = 0x0091
_XLSB_END_SHEET_DATA = 0x0092
_XLSB_DIMENSION_BYTES = 16
_XLSB_MAX_ROW = 0x0010_0000  # the reader stops at a row past Excel's last


def _biff12_records(data: bytes) -> Iterator[tuple[int, memoryview]]:
    """(type, body) of each record: a type of one or two bytes, a length of up to four (7 bits each)."""
    view = memoryview(data)
    position, end = 0, len(data)
    while position < end:
        kind = view[position] & 0x7F
        if view[position] & 0x80:
            if position + 1 >= end:
                return
            kind += (view[position + 1] & 0x7F) << 7
            position += 1
        position += 1
        length = 0
        for shift in range(0, 28, 7):
            if position >= end:
                return
            byte = view[position]
            position += 1
            length += (byte & 0x7F) << shift
            if not byte & 0x80:
                break
        if position + length > end:
            # The reader makes room for the length the record claims before it finds the bytes
            # missing: a few bytes claiming 256 MB would take 256 MB.
            raise FileProblem(
                f"the workbook is truncated or damaged: a record claims {length:,} bytes where "
                f"{end - position:,} are left; re-save it from Excel"
            )
        yield kind, view[position : position + length]
        position += length


def as_read(name: str) -> str:
    """A zip part's name as calamine looks it up: in any case, either slash."""
    return name.replace("\\", "/").lower()


def parts_as_read(entries: list[zipfile.ZipInfo]) -> dict[str, zipfile.ZipInfo]:
    """Each entry of an archive by its name as calamine looks it up. Two entries under one such name
    are refused: which of them a reader takes would be its choice, and a check must measure what the
    reader reads (a sheet stored as xl/worksheets/SHEET1.xml went unmeasured, and was read)."""
    parts: dict[str, zipfile.ZipInfo] = {}
    for entry in entries:
        name = as_read(entry.filename)
        if name in parts:
            raise FileProblem(
                f"the workbook holds two parts named {parts[name].filename!r} and {entry.filename!r} "
                "(Excel never writes both); re-save the file from Excel"
            )
        parts[name] = entry
    return parts


def part_of_target(parts: dict[str, zipfile.ZipInfo], target: str) -> str | None:
    """The part a workbook relation's target names, as calamine resolves it: from the archive's root
    when it starts with a slash, else from xl/."""
    entry = parts.get(as_read(target[1:] if target.startswith("/") else f"xl/{target}"))
    return entry.filename if entry is not None else None


def parsed_part(archive: zipfile.ZipFile, part: zipfile.ZipInfo) -> Any:
    """A workbook's XML part (its sheet list, its relations) parsed; FileProblem when it is no XML."""
    from xml.etree.ElementTree import ParseError

    from defusedxml.ElementTree import fromstring  # the data layer's; the api function never reads sheets

    try:
        return fromstring(_read_member(archive, part.filename))
    except ParseError as error:
        raise FileProblem(
            f"the workbook's {part.filename} is not valid XML ({error}); re-save the file from Excel"
        ) from None


def named_twice(sheet: str) -> FileProblem:
    """The problem of a workbook that names a sheet's part more than once (readers differ on which)."""
    return FileProblem(
        f"the workbook names the part of sheet '{sheet}' more than once; re-save the file from Excel"
    )


def missing_part(sheet: str, target: str) -> FileProblem:
    """The problem of a sheet whose part is not in the archive: refused rather than left to the
    reader, which, finding a part some other way, would read a sheet nothing measured."""
    return FileProblem(
        f"the workbook's sheet '{sheet}' names a part it does not hold ({target!r}); re-save the file "
        "from Excel"
    )


def _check_records(archive: zipfile.ZipFile, parts: dict[str, zipfile.ZipInfo]) -> None:
    """Walk every binary part the reader reads whole when the workbook opens, so none of them can
    claim more bytes than it holds."""
    for name in ("xl/workbook.bin", "xl/sharedstrings.bin", "xl/styles.bin"):
        if name in parts:
            for _ in _biff12_records(_read_member(archive, parts[name].filename)):
                pass


def _xlsb_footprint(path: Path, sheet: str | None) -> Footprint:
    footprint = Footprint()
    with zipfile.ZipFile(path) as archive:
        parts = parts_as_read(archive.infolist())
        _check_records(archive, parts)
        member, name = _xlsb_sheet_member(archive, parts, sheet)
        if member is None:
            return footprint  # the reader reports a missing sheet itself
        data = _read_member(archive, member)
    for _ in _biff12_records(data):
        pass  # the reader may read to the end looking for a record: no length may lie, wherever it is
    bounds, row, unpack = _Bounds(), 0, struct.unpack_from
    # The reader reads each record into one buffer that only ever grows, so a record shorter than
    # the field read from it leaves the previous record's bytes there: mirror that, or a truncated
    # cell record would be a cell the reader places and the scan misses. The buffer already holds
    # the 16 bytes of the sheet's dimension record when cells begin, and cells are only read after
    # BrtBeginSheetData: a row record before it is no row (fuzz found a 1-byte one that stopped this
    # scan while the reader went on to allocate 101 GB).
    buffer = bytearray(_XLSB_DIMENSION_BYTES)
    in_sheet_data = False
    for kind, body in _biff12_records(data):
        if len(buffer) < len(body):
            buffer.extend(bytes(len(body) - len(buffer)))
        buffer[: len(body)] = body
        if not in_sheet_data:
            in_sheet_data = kind == _XLSB_BEGIN_SHEET_DATA
            continue
        if kind == _XLSB_END_SHEET_DATA:
            break
        if kind != _XLSB_ROW and kind not in _XLSB_VALUE_CELLS:
            continue
        (number,) = unpack("<I", buffer)
        if kind == _XLSB_ROW:
            row = number
            if row > _XLSB_MAX_ROW:
                break
        else:
            bounds.add(row, number, number)
    footprint.add(
        name,
        bounds.cells,
        bounds.count * POSITIONED_BYTES + bounds.cells * VALUE_BYTES,
        columns=bounds.columns,
    )
    return footprint


def _xlsb_sheet_member(
    archive: zipfile.ZipFile, parts: dict[str, zipfile.ZipInfo], sheet: str | None
) -> tuple[str | None, str]:
    relations_part, workbook_part = parts.get("xl/_rels/workbook.bin.rels"), parts.get("xl/workbook.bin")
    if relations_part is None or workbook_part is None:
        return None, ""  # the reader fails on it, and says so
    relations = parsed_part(archive, relations_part)
    targets: dict[str, list[str]] = {}
    for element in relations:
        targets.setdefault(element.get("Id") or "", []).append(element.get("Target") or "")
    for kind, body in _biff12_records(_read_member(archive, workbook_part.filename)):
        if kind != _XLSB_BUNDLE_SHEET or len(body) < 12:
            continue
        relation, offset = _wide_string(body, 8)
        name, _ = _wide_string(body, offset)
        if sheet is None or name == sheet:
            found = targets.get(relation, [])
            if len(found) > 1:
                raise named_twice(name)
            target = found[0] if found else ""
            member = part_of_target(parts, target) if found else None
            if member is None:
                raise missing_part(name, target)
            return member, name
    return None, ""


def _wide_string(body: memoryview, offset: int) -> tuple[str, int]:
    if offset + 4 > len(body):
        return "", len(body)
    (characters,) = struct.unpack_from("<I", body, offset)
    if characters == 0xFFFF_FFFF:
        return "", offset + 4
    end = offset + 4 + 2 * characters
    return bytes(body[offset + 4 : end]).decode("utf-16-le", "replace"), end


def _read_member(archive: zipfile.ZipFile, member: str) -> bytes:
    # check_archive has already inflated every member under the archive's size cap.
    try:
        return archive.read(member)
    except (zipfile.BadZipFile, EOFError, OSError, RuntimeError) as error:
        raise FileProblem(f"the workbook is corrupt ({error})") from None


# --- .xls: BIFF8 records in an OLE2 stream -------------------------------------------------------

_XLS_BOF, _XLS_EOF, _XLS_BOUND_SHEET, _XLS_DIMENSIONS = 0x0809, 0x000A, 0x0085, 0x0200
_XLS_FORMULA, _XLS_FORMULA_STRING, _XLS_MULRK = 0x0006, 0x0207, 0x00BD
# Number, Label, RString, BoolErr, Rk, LabelSst: a value at (row, column); blanks are skipped.
_XLS_VALUE_CELLS = frozenset({0x0203, 0x0204, 0x00D6, 0x0205, 0x027E, 0x00FD})


def _xls_records(stream: bytes, position: int) -> Iterator[tuple[int, memoryview]]:
    view = memoryview(stream)
    while position + 4 <= len(stream):
        kind, length = struct.unpack_from("<HH", stream, position)
        yield kind, view[position + 4 : position + 4 + length]
        position += 4 + length


def _xls_footprint(path: Path) -> Footprint:
    """Every sheet is read when the workbook opens, so every sheet is counted."""
    import olefile

    try:
        with olefile.OleFileIO(str(path)) as ole:
            _check_sector_chains(ole)
            name = "Workbook" if ole.exists("Workbook") else "Book"
            stream = ole.openstream(name).read()
    except FileProblem:
        raise
    except Exception as error:  # olefile raises many kinds on a damaged container
        raise FileProblem(f"the file is a damaged Excel 97-2003 (.xls) workbook ({error})") from None
    footprint = Footprint()
    for sheet, position in _xls_sheets(stream):
        _xls_sheet_footprint(stream, sheet, position, footprint)
    return footprint


_END_OF_CHAIN = 0xFFFF_FFFE
_SPECIAL_SECTORS = 0xFFFF_FFFA  # ids from here up mark free, end-of-chain and FAT sectors


def _check_sector_chains(ole: Any) -> None:
    """Refuse a compound file whose sector chains loop. The reader follows the directory's chain
    until its end and a stream's until its declared size (up to 4 GB): a loop makes it append the
    same sectors for ever, and a 5 KB file exhausts the memory."""
    fat = ole.fat
    starts = [ole.first_dir_sector, ole.first_mini_fat_sector]
    starts += [entry.isectStart for entry in ole.direntries if entry is not None and entry.size >= 4096]
    root = ole.direntries[0] if ole.direntries else None
    if root is not None:
        starts.append(root.isectStart)  # the mini stream
    for start in starts:
        seen: set[int] = set()
        sector = start
        while sector < _SPECIAL_SECTORS and sector < len(fat):
            if sector in seen:
                raise FileProblem(
                    "the file is a damaged Excel 97-2003 (.xls) workbook: one of its sector chains loops; "
                    "re-save it from Excel"
                )
            seen.add(sector)
            sector = fat[sector]


def _xls_sheets(stream: bytes) -> list[tuple[str, int]]:
    sheets = []
    for kind, body in _xls_records(stream, 0):
        if kind == _XLS_EOF:
            break
        if kind == _XLS_BOUND_SHEET and len(body) >= 8:
            (position,) = struct.unpack_from("<I", body)
            characters, high = body[6], body[7] & 1 if len(body) > 7 else 0
            raw = bytes(body[8 : 8 + characters * (2 if high else 1)])
            sheets.append((raw.decode("utf-16-le" if high else "latin-1", "replace"), position))
    return sheets


def _xls_sheet_footprint(stream: bytes, sheet: str, position: int, footprint: Footprint) -> None:
    cells, formulas, reserved, depth, formula_at = _Bounds(), _Bounds(), 0, 0, (0, 0)
    unpack = struct.unpack_from
    for kind, body in _xls_records(stream, position):
        if kind == _XLS_BOF:
            depth += 1
        elif kind == _XLS_EOF:
            depth -= 1
            if depth <= 0:
                break
        elif depth != 1:
            continue  # an embedded chart's records
        elif kind == _XLS_DIMENSIONS:
            reserved += _xls_declared_cells(body)
        elif kind in _XLS_VALUE_CELLS and len(body) >= 4:
            row, column = unpack("<HH", body)
            cells.add(row, column, column)
        elif kind == _XLS_MULRK and len(body) >= 6:
            row, first = unpack("<HH", body)
            (last,) = unpack("<H", body, len(body) - 2)
            if last >= first:
                cells.add(row, first, last)
        elif kind == _XLS_FORMULA and len(body) >= 4:
            formula_at = unpack("<HH", body)
            cells.add(formula_at[0], formula_at[1], formula_at[1])
            formulas.add(formula_at[0], formula_at[1], formula_at[1])
        elif kind == _XLS_FORMULA_STRING:
            cells.add(formula_at[0], formula_at[1], formula_at[1])
    size = (
        (reserved + cells.count) * POSITIONED_BYTES
        + cells.cells * VALUE_BYTES
        + formulas.count * VALUE_BYTES
        + formulas.cells * FORMULA_BYTES
    )
    footprint.add(sheet, max(cells.cells, reserved), size, columns=cells.columns)


def _xls_declared_cells(body: memoryview) -> int:
    """The cells the reader reserves room for from a DIMENSIONS record (its arithmetic wraps as u32)."""
    if len(body) == 14:
        first_row, last_row, first_column, last_column = struct.unpack_from("<IIHH", body)
    elif len(body) == 10:
        first_row, last_row, first_column, last_column = struct.unpack_from("<HHHH", body)
    else:
        return 0
    if first_column > 0xFF or last_column < first_column:
        first_column = 0
    if last_row < 1 or last_column < 1:
        return 1
    rows: int = (last_row - first_row) % 2**32
    columns: int = (last_column - first_column) % 2**32
    return rows * columns


# --- .ods: content.xml -----------------------------------------------------------------------------

_ODS_MAX_ROWS = 1_048_576
_ODS_MAX_COLUMNS = 16_384
_ODS_MAX_CELLS = 100_000_000  # past this the reader refuses the table itself


class _OdsScan:
    """Mirrors the reader: cells up to each row's last value are kept as read, trailing empty cells
    and rows are dropped, then each table becomes one dense range (values and formulas)."""

    def __init__(self, footprint: Footprint) -> None:
        self.footprint = footprint
        self.table: str | None = None
        self.cell_depth = 0

    def start(self, tag: str, attributes: dict[str, str]) -> None:
        if tag == "table:table":
            self.table, self.bounds, self.kept, self.rows = attributes.get("table:name", ""), _Bounds(), 0, 0
        elif self.table is None:
            return
        elif tag == "table:table-row":
            self.row_repeats = min(
                _repeats(attributes, "table:number-rows-repeated"), _ODS_MAX_ROWS - self.rows
            )
            self.column, self.first_value, self.last_value = 0, -1, -1
        elif tag in ("table:table-cell", "table:covered-table-cell") and self.cell_depth == 0:
            repeats = min(
                _repeats(attributes, "table:number-columns-repeated"), _ODS_MAX_COLUMNS - self.column
            )
            self.cell_repeats = max(repeats, 0)
            self.cell_has_value = "office:value-type" in attributes or "table:formula" in attributes
            self.cell_depth = 1
        elif self.cell_depth:
            self.cell_depth += 1

    def text(self, data: str) -> None:
        if self.cell_depth and data.strip():
            self.cell_has_value = True

    def end(self, tag: str) -> None:
        if self.table is None:
            return
        if self.cell_depth:
            self.cell_depth -= 1
            if self.cell_depth == 0:
                self._end_cell()
        elif tag == "table:table-row":
            self._end_row()
        elif tag == "table:table":
            cells = min(self.bounds.cells, _ODS_MAX_CELLS)
            # Values and formulas: 61 bytes a cell measured, so both are counted at a value's size.
            size = (self.kept + cells) * 2 * VALUE_BYTES
            self.footprint.add(self.table, self.bounds.cells, size, columns=self.bounds.columns)
            self.table = None

    def _end_cell(self) -> None:
        if self.cell_has_value and self.cell_repeats:
            if self.first_value < 0:
                self.first_value = self.column
            self.last_value = self.column + self.cell_repeats - 1
        self.column += self.cell_repeats

    def _end_row(self) -> None:
        if self.last_value >= 0 and self.row_repeats > 0:
            self.kept += self.last_value + 1
            self.bounds.add(self.rows, self.first_value, self.last_value)
            self.bounds.add(self.rows + self.row_repeats - 1, self.first_value, self.last_value)
        self.rows += max(self.row_repeats, 0)


def _repeats(attributes: dict[str, str], name: str) -> int:
    value = attributes.get(name)
    if value is None:
        return 1
    try:
        return int(value)
    except ValueError:
        raise FileProblem(f"the spreadsheet's {name} is '{value[:20]}', not a number") from None


def _ods_footprint(path: Path) -> Footprint:
    """Every table is read when the workbook opens, so every table is counted."""
    footprint = Footprint()
    scan = _OdsScan(footprint)
    parser = xml.parsers.expat.ParserCreate()
    parser.StartElementHandler = scan.start
    parser.EndElementHandler = scan.end
    parser.CharacterDataHandler = scan.text
    # check_archive has refused entity declarations, so expat expands nothing here.
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        with zipfile.ZipFile(path) as archive, archive.open("content.xml") as content:
            parser.ParseFile(content)
    except KeyError:
        raise FileProblem("the OpenDocument spreadsheet has no content.xml") from None
    except xml.parsers.expat.ExpatError as error:
        raise FileProblem(f"the spreadsheet's content.xml is not well-formed XML ({error})") from None
    except (zipfile.BadZipFile, EOFError, OSError, RuntimeError) as error:
        raise FileProblem(f"the workbook is corrupt ({error})") from None
    return footprint
