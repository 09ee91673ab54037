"""Archive bombs for workbook imports, generated in the tests (no binaries are committed)."""

from __future__ import annotations

import io
import zipfile


def zip_bomb() -> bytes:
    """A workbook whose one sheet inflates to 300 MB of zeros (written 1 MB at a time)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        with archive.open("xl/worksheets/sheet1.xml", "w") as sheet:
            sheet.write(b"<a>")
            for _ in range(300):
                sheet.write(b"0" * 1024**2)
            sheet.write(b"</a>")
    return buffer.getvalue()


def xml_bomb() -> bytes:
    """A billion laughs in the workbook part."""
    entities = '<!DOCTYPE lolz [<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{"&lol;" * 10 if i == 1 else f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/workbook.xml", f'<?xml version="1.0"?>{entities}]><workbook>&lol9;</workbook>')
    return buffer.getvalue()
