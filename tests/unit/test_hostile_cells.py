"""One bad cell is that row's error, whatever goes wrong with it; DynamoDB's own limits are checked
before the write (moto accepts what DynamoDB would refuse, so these limits are ours to enforce)."""

from __future__ import annotations

import io

import pytest

from impex.datasets.mapping import RowConverter, map_columns
from impex.datasets.model import Dataset
from impex.formats.detect import detect_encoding
from impex.formats.errors import FileProblem
from impex.formats.jsonlines import JsonLinesReader, bad_line_reason
from impex.formats.text import LineSource
from impex.jobs.options import check_text_encoding

DATASET = Dataset.model_validate(
    {
        "tenant": "acme",
        "name": "t",
        "createdAt": "x",
        "updatedAt": "x",
        "keys": ["id"],
        "fields": [
            {"name": "id", "type": "string", "required": True},
            {"name": "n", "type": "integer"},
            {"name": "price", "type": "decimal"},
            {"name": "at", "type": "datetime"},
            {"name": "doc", "type": "json"},
            {"name": "code", "type": "string", "required": True, "constraints": {"pattern": "[A-Z]{3}"}},
        ],
    }
)
HEADER = ["id", "n", "price", "at", "doc", "code"]


def convert(**cells: object) -> tuple[dict, list]:
    """Convert one row that is valid except for the given cells."""
    row = {"id": "r1", "n": "1", "price": "2.5", "at": "2024-05-01T13:00:00Z", "doc": "{}", "code": "ABC"}
    row.update(cells)
    converter = RowConverter(DATASET, HEADER, map_columns(HEADER, DATASET))
    return converter.convert([row[name] for name in HEADER])


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_a_valid_row_converts():
    record, issues = convert()
    assert issues == [] and record["n"] == 1


@pytest.mark.parametrize(
    ("cells", "column", "message"),
    [
        ({"n": "9" * 5000}, "n", "n has more than 38 digits, more than DynamoDB can store"),
        ({"n": "9" * 39}, "n", "n has more than 38 digits, more than DynamoDB can store"),
        ({"n": 10.0**40}, "n", "n has more than 38 digits, more than DynamoDB can store"),
        ({"price": "1" * 5000}, "price", "price has more than 38 digits, more than DynamoDB can store"),
        (
            {"price": "1" * 39},
            "price",
            "price is outside the range DynamoDB can store (38 digits, 1E-130 to 1E+125)",
        ),
        (
            {"at": "0001-01-01T00:00:00+01:00"},
            "at",
            "at is outside the range of dates (years 1 to 9999 in UTC)",
        ),
        ({"doc": nested(3000)}, "doc", "doc is nested more than 32 levels deep, more than DynamoDB allows"),
        ({"doc": nested(33)}, "doc", "doc is nested more than 32 levels deep, more than DynamoDB allows"),
        ({"doc": "[" + "9" * 5000 + "]"}, "doc", "doc is not valid JSON"),
        ({"doc": "[" + "9" * 39 + "]"}, "doc", "doc has more than 38 digits, more than DynamoDB can store"),
        ({"doc": "[1e400]"}, "doc", "doc holds a number JSON cannot represent"),
    ],
)
def test_a_hostile_cell_is_one_row_error_naming_its_column(cells, column, message):
    # When a row holds one value no field of its type can store
    _record, issues = convert(**cells)
    # Then that row has exactly one error, for that column, saying what is wrong
    assert [(issue.column, issue.message) for issue in issues] == [(column, message)]
    assert len(issues[0].value) <= 200


def test_json_at_dynamodbs_nesting_limit_is_accepted():
    record, issues = convert(doc=nested(32))
    assert issues == []
    depth, value = 0, record["doc"]
    while value:
        depth, value = depth + 1, value[0]
    assert depth == 31  # 32 levels of lists, the innermost empty


def test_a_value_refused_for_a_required_field_is_not_also_reported_missing():
    _record, issues = convert(code="abc")
    assert [issue.message for issue in issues] == ["code does not match the pattern [A-Z]{3}"]


def test_an_empty_required_field_is_reported_missing():
    _, issues = convert(code="")
    assert [issue.message for issue in issues] == ["code is required"]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (nested(3000), "JSON nested too deeply to read"),
        ('{"id": ' + "9" * 5000 + "}", "not readable JSON"),
    ],
)
def test_a_hostile_json_lines_line_is_a_bad_row_not_a_crash(line, reason):
    # Given a JSON Lines file whose second line cannot be read
    data = ('{"id": "a"}\n' + line + '\n{"id": "b"}\n').encode()
    reader = JsonLinesReader(LineSource(io.BytesIO(data), "utf-8"))
    # When it is read
    rows = list(reader.rows())
    # Then that line is a row carrying the reason, and the lines around it are read
    assert [row.number for row in rows] == [1, 2, 3]
    assert bad_line_reason(rows[0].cells) is None and rows[2].cells == ["b"]
    assert reason in bad_line_reason(rows[1].cells)


@pytest.mark.parametrize("name", ["rot13", "zlib_codec", "base64", "hex", "uu"])
def test_an_encoding_that_is_no_text_encoding_is_refused(name):
    with pytest.raises(ValueError, match="is not a text encoding"):
        check_text_encoding(name)
    with pytest.raises(FileProblem, match="is not a text encoding"):
        detect_encoding(b"a,b\n", name)


@pytest.mark.parametrize("name", ["utf-8", "UTF8", "utf-16", "cp1252", "latin-1", "cp437", "shift_jis"])
def test_text_encodings_by_any_of_their_names_are_accepted(name):
    assert check_text_encoding(name) == name


def test_a_jsonl_header_line_that_cannot_be_read_is_a_file_problem():
    data = (nested(3000) + "\n").encode()
    with pytest.raises(FileProblem, match="not valid JSON"):
        JsonLinesReader(LineSource(io.BytesIO(data), "utf-8"))


def test_a_pathological_pattern_runs_in_linear_time():
    import time

    from impex.datasets.patterns import compile_pattern

    # Given the pattern that takes Python's engine seconds on 28 characters, and doubles with each more
    pattern = compile_pattern(r"(a+)+$")
    started = time.perf_counter()
    # When it is matched against cells that make a backtracking engine explode
    results = [pattern.fullmatch("a" * n + "!") for n in (27, 40, 5000, 100_000)]
    # Then each answer comes at once
    assert results == [None, None, None, None]
    assert time.perf_counter() - started < 0.5


def test_a_pathological_pattern_in_a_dataset_is_one_fast_row_error_per_cell():
    import time

    dataset = Dataset.model_validate(
        {
            "tenant": "acme",
            "name": "p",
            "createdAt": "x",
            "updatedAt": "x",
            "fields": [{"name": "code", "type": "string", "constraints": {"pattern": "(a+)+$"}}],
        }
    )
    converter = RowConverter(dataset, ["code"], map_columns(["code"], dataset))
    started = time.perf_counter()
    outcomes = [converter.convert(["a" * 30 + "!"]) for _ in range(1000)]
    assert time.perf_counter() - started < 1.0
    assert all(
        [i.message for i in issues] == ["code does not match the pattern (a+)+$"] for _, issues in outcomes
    )


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(a)\1", "cannot be run in linear time"),
        (r"(?=a)b", "cannot be run in linear time"),
        (r"(?<!x)y", "cannot be run in linear time"),
        ("(", "is not a valid regular expression"),
    ],
)
def test_a_pattern_re2_cannot_run_is_refused_when_the_dataset_is_created(pattern, reason):
    from pydantic import ValidationError

    from impex.datasets.model import DatasetDefinition

    with pytest.raises(ValidationError, match=reason):
        DatasetDefinition.model_validate(
            {"fields": [{"name": "code", "type": "string", "constraints": {"pattern": pattern}}]}
        )
