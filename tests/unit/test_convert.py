"""Typed conversion and constraints, header mapping, and record keys."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from impex.aws.attributes import to_attribute
from impex.datasets.convert import CellError, converter_for
from impex.datasets.mapping import RowConverter, map_columns, normalize_header
from impex.datasets.model import Dataset, DatasetField
from impex.datasets.records import RecordLayout, key_text
from impex.formats.errors import FileProblem


def field(type_: str, **extra) -> DatasetField:
    return DatasetField.model_validate({"name": "f", "type": type_, **extra})


@pytest.mark.parametrize(
    ("type_", "raw", "expected"),
    [
        ("integer", "42", 42),
        ("integer", " -7 ", -7),
        ("integer", 3.0, 3),
        ("integer", "1,234,567", 1234567),
        ("integer", "1e3", 1000),
        ("decimal", "19.99", Decimal("19.99")),
        ("decimal", 2.5, Decimal("2.5")),
        ("decimal", 7, Decimal(7)),
        ("boolean", "Yes", True),
        ("boolean", "n", False),
        ("boolean", "TRUE", True),
        ("boolean", 0, False),
        ("boolean", True, True),
        ("date", "2024-02-29", date(2024, 2, 29)),
        ("date", "31/12/2024", date(2024, 12, 31)),
        ("date", "12/31/2024", date(2024, 12, 31)),
        ("date", "01.02.2024", date(2024, 2, 1)),
        ("date", "5 Mar 2024", date(2024, 3, 5)),
        ("date", datetime(2024, 1, 2), date(2024, 1, 2)),
        ("datetime", "2024-05-01T13:00:00Z", datetime(2024, 5, 1, 13, tzinfo=UTC)),
        ("datetime", "2024-05-01 15:00:00+02:00", datetime(2024, 5, 1, 13, tzinfo=UTC)),
        ("datetime", "2024-05-01 13:00", datetime(2024, 5, 1, 13, tzinfo=UTC)),
        ("datetime", date(2024, 5, 1), datetime(2024, 5, 1, tzinfo=UTC)),
        ("string", 3.0, "3"),
        ("string", 2.5, "2.5"),
        ("string", True, "true"),
        ("string", " kept ", " kept "),
        ("json", '{"a": [1, 2.5]}', {"a": [1, Decimal("2.5")]}),
        ("json", [1, "x"], [1, "x"]),
    ],
)
def test_values_convert_to_their_field_type(type_, raw, expected):
    assert converter_for(field(type_))(raw) == expected


@pytest.mark.parametrize(
    ("type_", "raw", "message"),
    [
        ("integer", "4.5", "not a whole number"),
        ("integer", "abc", "not an integer"),
        ("integer", True, "boolean"),
        ("decimal", "NaN", "finite"),
        ("decimal", "12,5", "not a number"),
        ("decimal", "1" * 40, "range DynamoDB"),
        ("boolean", "maybe", "not a boolean"),
        ("date", "2024-02-30", "not a date"),
        ("date", "03/04/2024", "ambiguous"),
        ("date", datetime(2024, 1, 2, 10), "time of day"),
        ("datetime", "yesterday", "not a date and time"),
        ("json", "{bad", "not valid JSON"),
    ],
)
def test_bad_values_raise_a_readable_error(type_, raw, message):
    with pytest.raises(CellError, match=message):
        converter_for(field(type_))(raw)


def test_day_first_resolves_ambiguous_dates():
    assert converter_for(field("date"), day_first=True)("03/04/2024") == date(2024, 4, 3)
    assert converter_for(field("date"), day_first=False)("03/04/2024") == date(2024, 3, 4)


@pytest.mark.parametrize(
    ("definition", "good", "bad", "message"),
    [
        ({"type": "integer", "constraints": {"min": 0, "max": 10}}, "10", "11", "above the maximum 10"),
        ({"type": "integer", "constraints": {"min": 0}}, "0", "-1", "below the minimum 0"),
        ({"type": "decimal", "constraints": {"max": "9.99"}}, "9.99", "10", "above"),
        ({"type": "date", "constraints": {"min": "2024-01-01"}}, "2024-01-01", "2023-12-31", "below"),
        (
            {"type": "string", "constraints": {"enum": ["red", "blue"]}},
            "red",
            "green",
            "not one of: red, blue",
        ),
        ({"type": "string", "constraints": {"pattern": "[A-Z]{3}"}}, "ABC", "ABCD", "does not match"),
        ({"type": "string", "constraints": {"maxLength": 3}}, "abc", "abcd", "longer than 3"),
        ({"type": "integer", "constraints": {"enum": [1, 2]}}, "2", "3", "not one of"),
    ],
)
def test_constraints_are_checked_after_conversion(definition, good, bad, message):
    convert = converter_for(field(definition["type"], constraints=definition["constraints"]))
    convert(good)
    with pytest.raises(CellError, match=message):
        convert(bad)


def dataset(**changes) -> Dataset:
    body = {
        "tenant": "acme",
        "name": "people",
        "createdAt": "x",
        "updatedAt": "x",
        "fields": [
            {"name": "email", "type": "string", "required": True, "aliases": ["E-mail address"]},
            {"name": "fullName", "type": "string"},
            {"name": "age", "type": "integer"},
            {"name": "country", "type": "string", "default": "NZ"},
        ],
        "keys": ["email"],
    }
    body.update(changes)
    return Dataset.model_validate(body)


def test_headers_match_loosely_and_by_alias():
    assert normalize_header("  Full_Name ") == normalize_header("full name") == normalize_header("FÚLL-NAME")
    mapping = map_columns(["E-Mail Address", "Full Name", "AGE", "Notes"], dataset())
    assert mapping.fields == ["email", "fullName", "age", None]
    assert mapping.unknown_columns == ["Notes"]


def test_an_explicit_mapping_wins():
    mapping = map_columns(["mail", "age", "full name"], dataset(), {"mail": "email", "full name": "age"})
    assert mapping.fields == ["email", None, "age"]
    assert mapping.unknown_columns == ["age"]
    assert mapping.used == {"mail": "email", "full name": "age"}


def test_missing_required_columns_fail_naming_them():
    with pytest.raises(FileProblem, match="no column for required fields: email"):
        map_columns(["name", "age"], dataset())


def test_a_mapping_naming_absent_columns_fails():
    with pytest.raises(FileProblem, match="columns the file does not have: Mail"):
        map_columns(["email"], dataset(), {"Mail": "email"})


def test_a_row_becomes_a_typed_record_with_defaults_and_errors():
    header = ["email", "full name", "age"]
    converter = RowConverter(dataset(), header, map_columns(header, dataset()))
    record, issues = converter.convert(["a@b.c", "Ann", "41"])
    assert record == {"email": "a@b.c", "fullName": "Ann", "age": 41, "country": "NZ"}
    assert issues == []
    _, issues = converter.convert(["", "Bob", "old"])
    assert {(i.column, i.message) for i in issues} == {
        ("age", "age is not an integer"),
        ("email", "email is required"),
    }
    _, issues = converter.convert(["a@b.c"])
    assert "the row has 1 values but the header has 3 columns" in issues[0].message


def test_over_long_cells_are_row_errors():
    header = ["email"]
    converter = RowConverter(dataset(), header, map_columns(header, dataset()), max_cell_chars=10)
    _, issues = converter.convert(["x" * 11])
    assert "longer than 10" in issues[0].message


def test_keys_are_canonical_and_append_only_ids_deterministic():
    assert key_text(Decimal("1.50")) == "1.5" and key_text(Decimal("10")) == "10"
    layout = RecordLayout.for_dataset(dataset(), records_table="records", external_tables={})
    assert layout.identity({"email": "a#b"}, "JOB", 2) == "a\\#b"
    assert layout.key("x", {}) == {"pk": {"S": "acme#people"}, "sk": {"S": "x"}}
    append_only = RecordLayout.for_dataset(dataset(keys=[]), records_table="records", external_tables={})
    assert (
        append_only.identity({}, "01JOB", 7)
        == append_only.identity({"email": "z"}, "01JOB", 7)
        == "01JOB#0000000007"
    )


def test_values_become_dynamodb_attributes():
    assert to_attribute(Decimal("1.5")) == {"N": "1.5"}
    assert to_attribute(date(2024, 1, 2)) == {"S": "2024-01-02"}
    assert to_attribute(datetime(2024, 1, 2, 3, tzinfo=UTC)) == {"S": "2024-01-02T03:00:00Z"}
    assert to_attribute({"a": [True, None]}) == {"M": {"a": {"L": [{"BOOL": True}, {"NULL": True}]}}}
