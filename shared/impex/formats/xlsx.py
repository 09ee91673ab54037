"""Excel (.xlsx) reading: archive safety checks, then python-calamine (openpyxl as the fallback)."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from impex.formats.errors import FileProblem
from impex.formats.tabular import SourceRow

SCAN_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ArchiveLimits:
    """Zip-bomb guards: total uncompressed size and the compression ratio of any one entry."""

    max_uncompressed_bytes: int = 1024**3
    max_ratio: int = 200


def check_archive(path: Path, limits: ArchiveLimits) -> None:
    """Refuse a workbook that is not one, that inflates too far, or that declares XML entities.

    Every entry is inflated once here, under a running cap, so sizes an attacker declares falsely
    are caught (by the cap or by the CRC check) before any XML parser sees the file.
    """
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise FileProblem(
            "the file looks like a zip archive but cannot be opened; is it a complete .xlsx?"
        ) from None
    with archive:
        names = set(archive.namelist())
        if "xl/workbook.xml" not in names:
            raise FileProblem("the file is a zip archive but not an Excel workbook (.xlsx)")
        total = 0
        for info in archive.infolist():
            if info.file_size > limits.max_ratio * max(info.compress_size, 1) and info.file_size > SCAN_CHUNK:
                raise FileProblem(
                    _bomb(f"entry {info.filename} expands {info.file_size // max(info.compress_size, 1)}x")
                )
            is_xml = info.filename.endswith((".xml", ".rels", ".vml"))
            tail = b""
            try:
                with archive.open(info) as entry:
                    while chunk := entry.read(SCAN_CHUNK):
                        total += len(chunk)
                        if total > limits.max_uncompressed_bytes:
                            raise FileProblem(
                                _bomb(f"it inflates past {limits.max_uncompressed_bytes // 1024**2} MB")
                            )
                        if is_xml and (b"<!DOCTYPE" in tail + chunk or b"<!ENTITY" in tail + chunk):
                            raise FileProblem(
                                "the workbook declares XML entities (a possible XML bomb); "
                                "Excel never writes these, so re-save the file from Excel"
                            )
                        tail = chunk[-16:]
            except (zipfile.BadZipFile, EOFError, OSError) as error:
                raise FileProblem(f"the workbook is corrupt ({error})") from None


def _bomb(detail: str) -> str:
    return f"the workbook is unsafe to open: {detail} (a possible zip bomb)"


class XlsxReader:
    """Rows of one sheet (the first, or a named one). Row numbers are the sheet's own."""

    def __init__(self, path: Path, *, sheet: str | None = None) -> None:
        try:
            self._rows, self.sheet_names, self.total_rows = _calamine_rows(path, sheet)
        except FileProblem:
            raise
        except Exception:
            self._rows, self.sheet_names, self.total_rows = _openpyxl_rows(path, sheet)
        self.header = self._read_header()

    def _read_header(self) -> list[str]:
        for number, cells in self._rows:
            if any(not _blank(cell) for cell in cells):
                self._header_number = number
                return ["" if _blank(cell) else _header_text(cell) for cell in cells]
        raise FileProblem("the sheet has no header row")

    @property
    def header_end_offset(self) -> None:
        return None

    def rows(self) -> Iterator[SourceRow]:
        """Data rows after the header; empty rows are skipped (their numbers are kept by the others)."""
        for number, cells in self._rows:
            values = [
                None if cell is None or (cell.__class__ is str and not cell.strip()) else cell
                for cell in cells
            ]
            if values.count(None) == len(values):
                continue
            yield SourceRow(number, values, None)


def _blank(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


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
    start = worksheet.start[0] if worksheet.start else 0

    def numbered() -> Iterator[tuple[int, list[Any]]]:
        for offset, row in enumerate(worksheet.iter_rows()):
            yield start + offset + 1, list(row)

    return numbered(), names, int(worksheet.height)


def _openpyxl_rows(path: Path, sheet: str | None) -> tuple[Iterator[tuple[int, list[Any]]], list[str], int]:
    # openpyxl parses through defusedxml when it is installed (it is, in the data layer).
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as error:
        raise FileProblem(f"the workbook cannot be read ({type(error).__name__}: {error})") from None
    names = list(workbook.sheetnames)
    if sheet is not None and sheet not in names:
        raise FileProblem(f"the workbook has no sheet '{sheet}'; its sheets are: {', '.join(names)}")
    worksheet = workbook[sheet] if sheet else workbook[names[0]]

    def numbered() -> Iterator[tuple[int, list[Any]]]:
        for number, row in enumerate(worksheet.iter_rows(values_only=True), start=1):
            yield number, list(row)

    return numbered(), names, int(worksheet.max_row or 0)
