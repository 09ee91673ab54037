"""Checks an exported benchmark XLSX against the records it was made from: every sheet read back by
openpyxl (streaming) and, when LibreOffice is installed (Debian: libreoffice-calc-nogui), every
sheet converted by headless `soffice --convert-to csv`; both must give the generated values, typed
(numbers, booleans, dates and datetimes with their formats), row for row, after the header."""

from __future__ import annotations

import csv
import math
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

from benchmarks.fake_dynamodb import stored_items

COLUMNS = ["id", "name", "email", "qty", "price", "active", "joined", "seenAt", "score", "note"]


def expected_rows(rows: int) -> Iterator[list[Any]]:
    """The typed values of the generated records, as the export writes them."""
    for item in stored_items(rows):
        yield [
            item["id"]["S"],
            item["name"]["S"],
            item["email"]["S"],
            int(item["qty"]["N"]),
            float(item["price"]["N"]),
            item["active"]["BOOL"],
            date.fromisoformat(item["joined"]["S"]),
            datetime.fromisoformat(item["seenAt"]["S"].replace("Z", "")),
            float(item["score"]["N"]),
            item["note"]["S"],
        ]


def _same(value: Any, wanted: Any) -> bool:
    if isinstance(wanted, float):
        return isinstance(value, int | float) and math.isclose(value, wanted, rel_tol=1e-12, abs_tol=1e-12)
    if isinstance(wanted, date) and not isinstance(wanted, datetime):
        return isinstance(value, datetime) and value == datetime(wanted.year, wanted.month, wanted.day)
    return bool(value == wanted and type(value) is type(wanted))


def check_with_openpyxl(path: Path, rows: int) -> int:
    """Every sheet's rows against the records; returns how many sheets there were."""
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True)
    wanted = expected_rows(rows)
    for sheet in book.worksheets:
        cells = sheet.iter_rows(values_only=True)
        assert list(next(cells)) == COLUMNS, sheet.title
        for found in cells:
            row = next(wanted)
            assert all(_same(v, w) for v, w in zip(found, row, strict=True)), (found, row)
    assert next(wanted, None) is None, "rows missing"
    sheets = len(book.worksheets)
    book.close()
    return sheets


def _text_of(wanted: Any) -> str:
    """What LibreOffice shows for a value, in the writer's number formats."""
    if isinstance(wanted, bool):
        return "TRUE" if wanted else "FALSE"
    if isinstance(wanted, datetime):
        return wanted.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(wanted, date):
        return wanted.isoformat()
    return str(wanted)


def check_with_libreoffice(path: Path, rows: int) -> str:
    """'same' when every sheet, converted by LibreOffice, holds the records; 'absent' without it."""
    soffice = shutil.which("soffice")
    if soffice is None:
        return "absent"
    with tempfile.TemporaryDirectory() as out:
        # The filter's 12th token, -1, writes every sheet to its own file (LibreOffice 7.2+).
        options = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1"
        subprocess.run(
            [
                soffice,
                "--headless",
                f"-env:UserInstallation=file://{out}/profile",
                "--convert-to",
                options,
                "--outdir",
                out,
                str(path),
            ],
            check=True,
            capture_output=True,
            timeout=1800,
        )
        files = sorted(Path(out).glob("*.csv"), key=lambda f: (len(f.name), f.name))
        wanted = expected_rows(rows)
        for file in files:
            with file.open(newline="", encoding="utf-8") as handle:
                lines = csv.reader(handle)
                assert next(lines) == COLUMNS, file.name
                for found in lines:
                    row = next(wanted)
                    for text, value in zip(found, row, strict=True):
                        if isinstance(value, float) and not isinstance(value, bool):
                            assert math.isclose(float(text), value, rel_tol=1e-9), (file.name, found, row)
                        else:
                            assert text == _text_of(value), (file.name, found, row)
        assert files and next(wanted, None) is None, "rows missing"
    return "same"
