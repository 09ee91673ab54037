"""Tell what a file is from its first bytes, not its name."""

from __future__ import annotations

import codecs
from typing import Literal

from impex.formats.errors import FileProblem

Container = Literal["gzip", "workbook", "text"]

# A zip (.xlsx, .xlsb, .ods) or an OLE2 compound file (.xls): the workbook reader tells which.
_WORKBOOK_SIGNATURES = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")

_REFUSED = [
    (b"%PDF", "a PDF document; export the table as CSV or .xlsx"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file; use gzip or no compression"),
    (b"BZh", "a bzip2-compressed file; use gzip or no compression"),
    (b"PAR1", "a Parquet file; import CSV, TSV, JSON Lines or a workbook"),
    (b"SQLite format 3", "an SQLite database"),
]


def sniff_container(head: bytes) -> Container:
    """gzip, a workbook or text; raise FileProblem for anything impex cannot import."""
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(_WORKBOOK_SIGNATURES):
        return "workbook"
    if not head:
        raise FileProblem("the file is empty")
    for magic, what in _REFUSED:
        if head.startswith(magic):
            raise FileProblem(f"the file is {what}")
    if _looks_binary(head):
        raise FileProblem("the file is binary, not text: import CSV, TSV, JSON Lines or a workbook")
    return "text"


def _looks_binary(head: bytes) -> bool:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    sample = head[:8192]
    # Text files may carry a stray NUL; binary files are full of control bytes.
    controls = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return controls > max(8, len(sample) // 10)


def text_kind(head_text: str) -> Literal["jsonl", "delimited"]:
    """JSON Lines if the first non-blank character opens an object, otherwise delimited text."""
    stripped = head_text.lstrip("\ufeff \t\r\n")
    return "jsonl" if stripped.startswith("{") else "delimited"


def detect_encoding(head: bytes, explicit: str | None = None) -> str:
    """The file's text encoding: the explicit option, a BOM, UTF-8 if it decodes, else cp1252/latin-1."""
    if explicit:
        try:
            info = codecs.lookup(explicit)
        except LookupError:
            raise FileProblem(f"unknown encoding '{explicit}'") from None
        if not getattr(info, "_is_text_encoding", True):
            raise FileProblem(f"'{explicit}' is not a text encoding; set options.encoding to one, e.g. utf-8")
        return info.name
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        head.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"
