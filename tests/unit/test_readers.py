"""Readers on tricky files made here: quoted newlines, BOMs, UTF-16, latin-1, ragged rows, line endings."""

from __future__ import annotations

import codecs
import io
import json

import pytest

from impex.formats.delimited import DelimitedReader, sniff_delimiter
from impex.formats.detect import detect_encoding, sniff_container, text_kind
from impex.formats.errors import FileProblem
from impex.formats.file_format import FileFormat
from impex.formats.jsonlines import JsonLinesReader, bad_line_reason
from impex.formats.source import ReadOptions, ResumePoint, SourceSpec, open_source
from impex.formats.text import LineSource, first_lines_terminator
from impex.formats.xlsx import ArchiveLimits


def read_csv(data: bytes, encoding: str | None = None, delimiter: str | None = None):
    head = data[:65536]
    encoding = encoding or detect_encoding(head)
    lines = LineSource(io.BytesIO(data), encoding, terminator=first_lines_terminator(head))
    reader = DelimitedReader(lines, delimiter or sniff_delimiter(head.decode(encoding, "replace")))
    return reader.header, [(row.number, row.cells) for row in reader.rows()]


def test_quoted_fields_hold_delimiters_quotes_and_newlines():
    data = b'id,text\n1,"a, b"\n2,"say ""hi"""\n3,"line one\nline two"\n4,plain\n'
    header, rows = read_csv(data)
    assert header == ["id", "text"]
    assert rows == [
        (2, ["1", "a, b"]),
        (3, ["2", 'say "hi"']),
        (4, ["3", "line one\nline two"]),
        (5, ["4", "plain"]),
    ]


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_lf_crlf_and_old_mac_cr_line_endings(ending):
    data = ending.join([b"a,b", b"1,2", b"3,4"]) + ending
    header, rows = read_csv(data)
    assert header == ["a", "b"]
    assert [cells for _, cells in rows] == [["1", "2"], ["3", "4"]]


def test_a_utf8_bom_is_not_part_of_the_first_header():
    data = codecs.BOM_UTF8 + "naïve,b\nçà,2\n".encode()
    assert detect_encoding(data) == "utf-8-sig"
    header, rows = read_csv(data)
    assert header == ["naïve", "b"]
    assert rows[0][1] == ["çà", "2"]


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_a_bom_is_read(codec):
    text = "name,city\nZoë,Zürich\n李,北京\n"
    data = (
        text.encode("utf-16")
        if codec == "utf-16"
        else codecs.BOM_UTF16_LE + text.encode(codec)
        if codec.endswith("le")
        else codecs.BOM_UTF16_BE + text.encode(codec)
    )
    assert detect_encoding(data) == "utf-16"
    header, rows = read_csv(data)
    assert header == ["name", "city"]
    assert [cells for _, cells in rows] == [["Zoë", "Zürich"], ["李", "北京"]]


def test_legacy_single_byte_files_are_detected_not_crashed_on():
    data = "name;price\nCafé;5€\nCrème brûlée;7\n".encode("cp1252")
    assert detect_encoding(data) == "cp1252"
    header, rows = read_csv(data)
    assert header == ["name", "price"]
    assert rows[0][1] == ["Café", "5€"]
    assert detect_encoding(bytes([0x81, 0x41])) == "latin-1"


def test_an_explicit_encoding_wins():
    data = "a\nÄ\n".encode("latin-1")
    assert detect_encoding(data, "latin-1") == "iso8859-1"
    _, rows = read_csv(data, encoding="latin-1")
    assert rows[0][1] == ["Ä"]
    with pytest.raises(FileProblem, match="unknown encoding"):
        detect_encoding(data, "klingon")


def test_invalid_utf8_later_in_the_file_is_a_clear_problem():
    data = b"a\n" + b"ok\n" * 10 + b"\xff\xfe bad\n"
    with pytest.raises(FileProblem, match=r"not valid utf-8 near byte \d+; set options.encoding"):
        read_csv(data, encoding="utf-8")


def test_ragged_rows_come_through_for_the_caller_to_report():
    _, rows = read_csv(b"a,b,c\n1,2\n1,2,3,4\n1,2,3\n")
    assert [len(cells) for _, cells in rows] == [2, 4, 3]


def test_nul_bytes_blank_lines_and_no_trailing_newline():
    _, rows = read_csv(b"a,b\n1,x\x00y\n\n\n2,z")
    assert rows == [(2, ["1", "x\x00y"]), (5, ["2", "z"])]


def test_byte_offsets_let_a_reader_resume_mid_file():
    data = b'id,note\n1,"multi\nline"\n2,b\n3,c\n'
    lines = LineSource(io.BytesIO(data), "utf-8")
    reader = DelimitedReader(lines, ",")
    first = next(iter(reader.rows()))
    assert first.end_offset == data.index(b"2,b")
    # Resume from that offset with the saved header and row count
    resumed = DelimitedReader(
        LineSource(io.BytesIO(data[first.end_offset :]), "utf-8", start_offset=first.end_offset),
        ",",
        header=reader.header,
        rows_done=first.number - 1,
    )
    assert [(r.number, r.cells) for r in resumed.rows()] == [(3, ["2", "b"]), (4, ["3", "c"])]


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("a,b,c\n1,2,3", ","),
        ("a;b;c\n1;2;3", ";"),
        ("a\tb\n1\t2", "\t"),
        ("a|b\n1|2", "|"),
        ("single\nx", ","),
    ],
)
def test_the_delimiter_is_sniffed(sample, expected):
    assert sniff_delimiter(sample) == expected


def test_an_explicit_delimiter_wins_over_the_sniffed_one(tmp_path):
    # Given a file that sniffs as comma-separated
    data = b"a,b;c\n1,2;3\n4,5;6\n"
    spec = SourceSpec(
        size=len(data),
        expected=FileFormat.CSV,
        options=ReadOptions(delimiter=";"),
        resume=ResumePoint(),
        spool_dir=tmp_path,
        archive_limits=ArchiveLimits(),
    )
    # When it is opened with delimiter ";"
    source = open_source(data, lambda start: io.BytesIO(data[start:]), spec)
    # Then the semicolon splits it
    assert source.header == ["a,b", "c"]
    assert [row.cells for row in source.rows(after_row=0)] == [["1,2", "3"], ["4,5", "6"]]
    source.close()


def test_a_file_without_a_header_row_is_a_problem():
    with pytest.raises(FileProblem, match="no header"):
        read_csv(b"\n\n")


def test_json_lines_take_the_first_objects_keys_as_the_header():
    data = b'{"a": 1, "b": "x"}\n\n{"b": "y", "a": 2, "c": true}\nnot json\n[1]\n'
    lines = LineSource(io.BytesIO(data), "utf-8")
    reader = JsonLinesReader(lines)
    rows = list(reader.rows())
    assert reader.header == ["a", "b"]
    assert [(r.number, r.cells) for r in rows[:2]] == [(1, [1, "x"]), (3, [2, "y"])]
    assert reader.take_unknown_keys() == (1, ["c"])
    assert reader.take_unknown_keys() == (0, [])
    assert bad_line_reason(rows[2].cells).startswith("not valid JSON")
    assert bad_line_reason(rows[3].cells) == "not a JSON object"
    assert bad_line_reason(rows[0].cells) is None


@pytest.mark.parametrize(
    ("head", "problem"),
    [
        (b"%PDF-1.7\n%\xe2\xe3", "PDF"),
        (b"\x89PNG\r\n\x1a\n", "PNG"),
        (bytes(range(0, 8)) * 200, "binary"),
        (b"", "empty"),
    ],
)
def test_unsupported_files_are_refused_by_content(head, problem):
    with pytest.raises(FileProblem, match=problem):
        sniff_container(head)


def test_containers_and_text_kinds_are_recognised():
    assert sniff_container(b"\x1f\x8b\x08\x00") == "gzip"
    assert sniff_container(b"PK\x03\x04rest") == "workbook"
    assert sniff_container(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100) == "workbook"
    assert sniff_container(b"a,b\n1,2\n") == "text"
    assert text_kind(' \n{"a": 1}') == "jsonl"
    assert text_kind("a,b") == "delimited"
    assert json.loads('{"ok": true}')["ok"]


def test_blank_records_are_passed_as_progress_marks_every_thousand():
    data = b"a,b\n" + b"\n" * 2500 + b"1,2\n"
    reader = DelimitedReader(LineSource(io.BytesIO(data), "utf-8"), ",")
    rows = list(reader.rows())
    assert [(row.number, row.cells) for row in rows] == [(1001, []), (2001, []), (2502, ["1", "2"])]
    assert rows[0].end_offset == 4 + 1000  # just after the thousandth blank line
