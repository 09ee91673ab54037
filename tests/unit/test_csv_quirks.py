"""Real-world CSV quirks from public test suites, and caps that hold in every encoding."""

from __future__ import annotations

import codecs
import gzip
import io

import pytest

from impex.datasets.mapping import map_columns
from impex.datasets.model import Dataset
from impex.formats.delimited import DelimitedReader, sniff_delimiter
from impex.formats.errors import FileProblem
from impex.formats.file_format import FileFormat
from impex.formats.source import ReadOptions, ResumePoint, SourceSpec, open_source
from impex.formats.text import MAX_LINE_BYTES, MAX_LINE_CHARS, LineSource, first_lines_terminator
from impex.formats.xlsx import ArchiveLimits


def rows_of(data: bytes, tmp_path, **options: str) -> tuple[list[str], list[list[str]]]:
    """Open ``data`` the way the importer does (detection, sniffing, decoding) and read every row."""
    spec = SourceSpec(
        size=len(data),
        expected=FileFormat.CSV,
        options=ReadOptions(**options),
        resume=ResumePoint(),
        spool_dir=tmp_path,
        archive_limits=ArchiveLimits(),
    )
    source = open_source(data[:65536], lambda start: io.BytesIO(data[start:]), spec)
    try:
        return source.header, [row.cells for row in source.rows(after_row=0)]
    finally:
        source.close()


def test_a_cr_only_file_keeps_a_cr_inside_a_quoted_field(tmp_path):
    # Given a classic Mac file (CR line endings) with a CR inside a quoted field
    data = b'id,note\r1,"first\rsecond"\r2,plain\r'
    # When it is read
    header, rows = rows_of(data, tmp_path)
    # Then the field keeps its CR, and the records end where the file's lines do
    assert header == ["id", "note"]
    assert rows == [["1", "first\rsecond"], ["2", "plain"]]


def test_a_header_with_whitespace_inside_quoted_names_is_still_comma_separated(tmp_path):
    # Given a header whose quoted names hold tabs, newlines and spaces
    data = b'"first\tname","last\nname","e mail"\r\nAda,Lovelace,ada@x.io\r\nAlan,Turing,alan@x.io\r\n'
    # When it is opened
    header, rows = rows_of(data, tmp_path)
    # Then the delimiter sniffed from the parsed records is the comma
    assert header == ["first\tname", "last\nname", "e mail"]
    assert rows == [["Ada", "Lovelace", "ada@x.io"], ["Alan", "Turing", "alan@x.io"]]


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ('"a;b","c;d"\n"1;2","3;4"\n', ","),  # semicolons only inside quotes
        ("a;b;c\n1;2;3\n", ";"),
        ("a|b\n1|2\n3|", "|"),  # the last record may be cut off
        ("a;b;c", ";"),  # a header with no line break at all
        ("justone\n1\n", ","),
    ],
)
def test_the_delimiter_is_sniffed_from_parsed_records(sample, expected):
    assert sniff_delimiter(sample) == expected


def test_an_explicit_delimiter_still_wins(tmp_path):
    header, rows = rows_of(b'"a,b";c\n"1,2";3\n', tmp_path, delimiter=";")
    assert header == ["a,b", "c"] and rows == [["1,2", "3"]]


DATASET = Dataset.model_validate(
    {
        "tenant": "acme",
        "name": "people",
        "createdAt": "x",
        "updatedAt": "x",
        "fields": [{"name": "email", "type": "string"}, {"name": "age", "type": "integer"}],
    }
)


def test_a_header_that_matches_no_field_is_refused_naming_both_sides():
    # Given a dataset of optional fields only, and a file none of whose columns is one of them
    # When its header is mapped
    with pytest.raises(FileProblem) as raised:
        map_columns(["foo", "bar"], DATASET)
    # Then it is refused, listing the file's columns and the dataset's fields
    assert raised.value.message == (
        "none of the file's columns (foo, bar) matches a field of dataset 'people' (email, age); "
        "rename the headers or give a mapping"
    )


def test_a_header_with_one_matching_column_is_mapped():
    mapping = map_columns(["foo", "E-Mail"], DATASET)
    assert mapping.used == {"E-Mail": "email"} and mapping.unknown_columns == ["foo"]


LONG = MAX_LINE_CHARS + 1000


@pytest.mark.parametrize(
    ("encoding", "data"),
    [
        ("utf-16", "a,b\n".encode("utf-16") + ("x" * LONG).encode("utf-16-le")),
        ("utf-16-le", "a,b\n".encode("utf-16-le") + ("x" * LONG).encode("utf-16-le")),
        ("utf-32", "a,b\n".encode("utf-32") + ("x" * LONG).encode("utf-32-le")),
        ("cp437", b"a,b\n" + b"x" * (MAX_LINE_BYTES + 10)),
        ("shift_jis", b"a,b\n" + b"x" * (MAX_LINE_BYTES + 10)),
        ("utf-8", b"a,b\n" + b"x" * (MAX_LINE_BYTES + 10)),
        ("cp1252", b"a,b\n" + b"x" * (MAX_LINE_BYTES + 10)),
    ],
)
def test_the_line_cap_holds_in_every_encoding(encoding, data):
    # Given a file whose second line is longer than the cap, in one encoding family or another
    lines = LineSource(io.BytesIO(data), encoding, terminator=first_lines_terminator(data[:1024]))
    reader = DelimitedReader(lines, ",")
    # When it is read, then it is refused as soon as the line passes the cap
    with pytest.raises(FileProblem, match="longer than"):
        list(reader.rows())


def test_the_line_cap_holds_inside_gzip_with_a_utf16_bom(tmp_path):
    # Given a small gzip that inflates to one huge UTF-16 line after the header
    text = (
        codecs.BOM_UTF16_LE + "a,b\n".encode("utf-16-le") + ("y" * (MAX_LINE_CHARS * 3)).encode("utf-16-le")
    )
    data = gzip.compress(text, compresslevel=9)
    assert len(data) < 200_000
    # When it is opened and read as the importer does, then the cap stops it
    with pytest.raises(FileProblem, match="longer than"):
        rows_of(data, tmp_path)


def test_fuzz_found_a_header_the_csv_module_refuses_is_a_file_problem(tmp_path):
    # Found by `make fuzz`: a lone CR then LF (here UTF-16 without a BOM, read as UTF-8 with NULs) made
    # the csv module raise while reading the header, which was taken for a transient failure.
    with pytest.raises(FileProblem, match="header row is malformed"):
        rows_of(b"\r\x00\n\x00", tmp_path)


def test_fuzz_found_utf16_without_a_byte_order_mark_is_a_file_problem(tmp_path):
    # Found by `make fuzz`: encoding utf-16 and no BOM raised UnicodeError (not UnicodeDecodeError).
    with pytest.raises(FileProblem, match=r"not valid utf-16|byte order"):
        rows_of(b"\x00\x00", tmp_path, encoding="utf-16")


NUMBERS = b"a,b\n" + b"".join(f"{i},{i * 7919 % 100003}\n".encode() for i in range(50_000))
# mtime=0: the bytes (and so the test ids) must not depend on the second they were made in, or two
# pytest-xdist workers collect different tests.
CUT_SHORT = gzip.compress(NUMBERS, mtime=0)[: len(gzip.compress(NUMBERS, mtime=0)) // 2]
SMALL = gzip.compress(b"a,b\n1,2\n", mtime=0)


@pytest.mark.parametrize(
    "data",
    [
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",  # found by `make fuzz`
        CUT_SHORT,
        SMALL[:20] + b"\xff" * 64 + SMALL[20:],  # corrupt
    ],
    ids=["empty-deflate", "cut-short", "corrupt"],
)
def test_fuzz_found_corrupt_or_truncated_gzip_is_a_file_problem(tmp_path, data):
    # Found by `make fuzz`: zlib.error (not an OSError) escaped from a gzip whose blocks are invalid.
    with pytest.raises(FileProblem, match="gzip"):
        rows_of(data, tmp_path)
