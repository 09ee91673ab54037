"""Workbooks in every format impex imports, generated in the tests (no binaries are committed).

Cells are given as {(row, column): value}, both from 0. .xlsx is written by openpyxl and .xls by
xlwt; .xlsb and .ods have no Python writer, so their few parts are built here, following
[MS-XLSB] (BIFF12 records) and OpenDocument 1.2 (content.xml).
"""

from __future__ import annotations

import io
import struct
import zipfile
from datetime import date, datetime
from typing import Any
from xml.sax.saxutils import escape

Cells = dict[tuple[int, int], Any]


def grid(rows: list[list[Any]]) -> Cells:
    """Cells from a list of rows (None leaves a cell empty)."""
    return {(r, c): v for r, row in enumerate(rows) for c, v in enumerate(row) if v is not None}


def workbook_bytes(kind: str, cells: Cells, *, sheet: str = "Data") -> bytes:
    """The cells as a workbook of this kind: xlsx, xls, xlsb or ods."""
    return {"xlsx": xlsx_bytes, "xls": xls_bytes, "xlsb": xlsb_bytes, "ods": ods_bytes}[kind](
        cells, sheet=sheet
    )


def xlsx_bytes(cells: Cells, *, sheet: str = "Data") -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    worksheet = book.active
    worksheet.title = sheet
    for (row, column), value in cells.items():
        worksheet.cell(row + 1, column + 1, value)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def xls_bytes(cells: Cells, *, sheet: str = "Data") -> bytes:
    import xlwt

    book = xlwt.Workbook()
    worksheet = book.add_sheet(sheet)
    dated = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    for (row, column), value in cells.items():
        if isinstance(value, date):
            worksheet.write(row, column, value, dated)
        else:
            worksheet.write(row, column, value)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# --- .xlsb ---------------------------------------------------------------------------------------


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def biff12_record(kind: int, body: bytes = b"") -> bytes:
    """One BIFF12 record: its type and length as 7-bit varints, then its body."""
    return _varint(kind) + _varint(len(body)) + body


def _wide(text: str) -> bytes:
    data = text.encode("utf-16-le")
    return struct.pack("<I", len(data) // 2) + data


def xlsb_sheet_records(cells: Cells) -> bytes:
    """A worksheet part: BrtBeginSheet, BrtWsDim, the rows and their cells, the ends."""
    body = bytearray(biff12_record(0x81) + biff12_record(0x94, bytes(16)) + biff12_record(0x91))
    rows: dict[int, list[tuple[int, Any]]] = {}
    for (row, column), value in cells.items():
        rows.setdefault(row, []).append((column, value))
    for row in sorted(rows):
        body += biff12_record(0x00, struct.pack("<IIHBBBI", row, 0, 300, 0, 0, 0, 0))
        for column, value in sorted(rows[row], key=lambda cell: cell[0]):
            header = struct.pack("<II", column, 0)
            if isinstance(value, bool):
                body += biff12_record(0x04, header + bytes([value]))
            elif isinstance(value, int | float):
                body += biff12_record(0x05, header + struct.pack("<d", float(value)))
            else:
                body += biff12_record(0x06, header + _wide(str(value)))
    return bytes(body + biff12_record(0x92) + biff12_record(0x82))


def xlsb_bytes(cells: Cells, *, sheet: str = "Data", sheet_records: bytes | None = None) -> bytes:
    book = (
        biff12_record(0x83)
        + biff12_record(0x8F)
        + biff12_record(0x9C, struct.pack("<II", 0, 1) + _wide("rId1") + _wide(sheet))
        + biff12_record(0x90)
        + biff12_record(0x84)
    )
    relationships = (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
        'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
        'officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.bin"/></Relationships>'
    )
    root = relationships.replace("worksheets/sheet1.bin", "xl/workbook.bin").replace(
        "relationships/worksheet", "relationships/officeDocument"
    )
    types = (
        '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        'content-types"><Default Extension="bin" ContentType="application/vnd.ms-excel.sheet.binary.'
        'macroEnabled.main"/><Default Extension="rels" ContentType="application/vnd.openxmlformats-'
        'package.relationships+xml"/></Types>'
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", types)
        archive.writestr("_rels/.rels", root)
        archive.writestr("xl/workbook.bin", book)
        archive.writestr("xl/_rels/workbook.bin.rels", relationships)
        archive.writestr("xl/worksheets/sheet1.bin", sheet_records or xlsb_sheet_records(cells))
    return out.getvalue()


# --- .ods ----------------------------------------------------------------------------------------

ODS_NAMESPACES = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
)


def ods_cell(value: Any, repeated: int = 1) -> str:
    """One table:table-cell (None is an empty cell), repeated across columns."""
    repeat = f' table:number-columns-repeated="{repeated}"' if repeated > 1 else ""
    if value is None:
        return f"<table:table-cell{repeat}/>"
    if isinstance(value, bool):
        kind = f'office:value-type="boolean" office:boolean-value="{str(value).lower()}"'
    elif isinstance(value, int | float):
        kind = f'office:value-type="float" office:value="{value}"'
    elif isinstance(value, datetime | date):
        kind = f'office:value-type="date" office:date-value="{value.isoformat()}"'
    else:
        kind = 'office:value-type="string"'
    return f"<table:table-cell{repeat} {kind}><text:p>{escape(str(value))}</text:p></table:table-cell>"


def ods_rows(cells: Cells) -> str:
    """table:table-row elements for the cells (gaps become repeated empty rows and cells)."""
    if not cells:
        return ""
    last_row = max(row for row, _ in cells)
    out, gap = [], 0
    for row in range(last_row + 1):
        columns = sorted(column for r, column in cells if r == row)
        if not columns:
            gap += 1
            continue
        if gap:
            out.append(
                f'<table:table-row table:number-rows-repeated="{gap}"><table:table-cell/></table:table-row>'
            )
            gap = 0
        parts, at = [], 0
        for column in columns:
            if column > at:
                parts.append(ods_cell(None, column - at))
            parts.append(ods_cell(cells[(row, column)]))
            at = column + 1
        out.append(f"<table:table-row>{''.join(parts)}</table:table-row>")
    return "".join(out)


def ods_bytes(cells: Cells, *, sheet: str = "Data", rows_xml: str | None = None) -> bytes:
    rows = ods_rows(cells) if rows_xml is None else rows_xml
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<office:document-content {ODS_NAMESPACES} office:version="1.2">'
        f'<office:body><office:spreadsheet><table:table table:name="{escape(sheet)}">{rows}</table:table>'
        "</office:spreadsheet></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:'
        'opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="/" manifest:media-type='
        '"application/vnd.oasis.opendocument.spreadsheet"/></manifest:manifest>'
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("META-INF/manifest.xml", manifest, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def ole2_bytes(stream_name: str, payload: bytes) -> bytes:
    """A minimal OLE2 compound file holding one stream (e.g. a Word document, an encrypted package)."""
    sector = 512
    payload = payload.ljust(max(4096, -(-len(payload) // sector) * sector), b"\0")  # no mini stream
    data_sectors = len(payload) // sector
    fat_sector, directory_sector, first_data = 0, 1, 2
    fat = [0xFFFFFFFD, 0xFFFFFFFE] + [first_data + i + 1 for i in range(data_sectors - 1)] + [0xFFFFFFFE]
    fat += [0xFFFFFFFF] * (sector // 4 - len(fat))
    header = bytearray(sector)
    header[0:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    struct.pack_into("<HHHHH", header, 24, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<IIIIIIII", header, 40, 0, 1, directory_sector, 0, 4096, 0xFFFFFFFE, 0, 0xFFFFFFFE)
    struct.pack_into("<I", header, 72, 0)  # no DIFAT sectors
    struct.pack_into("<I", header, 76, fat_sector)
    for i in range(1, 109):
        struct.pack_into("<I", header, 76 + 4 * i, 0xFFFFFFFF)

    def entry(name: str, kind: int, child: int, start: int, size: int) -> bytes:
        encoded = (name + "\0").encode("utf-16-le")
        out = bytearray(128)
        out[: len(encoded)] = encoded
        struct.pack_into("<HBB", out, 64, len(encoded), kind, 1)
        struct.pack_into("<III", out, 68, 0xFFFFFFFF, 0xFFFFFFFF, child)
        struct.pack_into("<II", out, 116, start, size)
        return bytes(out)

    directory = entry("Root Entry", 5, 1, 0xFFFFFFFE, 0) + entry(
        stream_name, 2, 0xFFFFFFFF, first_data, len(payload)
    )
    directory = directory.ljust(sector, b"\0")
    return bytes(header) + struct.pack(f"<{sector // 4}I", *fat) + directory + payload
