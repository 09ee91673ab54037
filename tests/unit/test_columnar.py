"""The import's fast path (issue #14) builds exactly the items the exact path builds.

A property test over generated batches: cells in canonical form, in every other form the converters
take, blanks, refused values, typed spreadsheet cells, ragged rows and keys that need escaping. For
every row the fast path builds, the exact path (RowConverter.convert, then the layout's identity,
key and item) must give no row error and the same identity, key and item; every row the exact path
refuses, the fast path must leave to it. Canonical rows must take the fast path (or it would be a
fast path in name only)."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from impex.datasets.columnar import ColumnarConverter
from impex.datasets.mapping import RowConverter, map_columns
from impex.datasets.model import Dataset
from impex.datasets.records import RecordLayout
from impex.formats.columns import SourceRow

SERIALIZER, DESERIALIZER = TypeSerializer(), TypeDeserializer()
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
JOB = "01JOBFASTPATH"
MAX_CELL_CHARS = 40

FIELDS: list[dict[str, Any]] = [
    {"name": "code", "type": "string", "required": True},
    {"name": "name", "type": "string"},
    {"name": "qty", "type": "integer"},
    {"name": "price", "type": "decimal"},
    {"name": "active", "type": "boolean"},
    {"name": "joined", "type": "date"},
    {"name": "seenAt", "type": "datetime"},
    {"name": "extra", "type": "json"},
    {"name": "grade", "type": "string", "constraints": {"pattern": "[A-C]", "maxLength": 1}},
    {"name": "level", "type": "integer", "constraints": {"min": 0, "max": 10}},
    {"name": "country", "type": "string", "default": "NZ"},
    {"name": "ratio", "type": "decimal", "required": True, "default": "1.5"},
    {"name": "unmapped", "type": "integer", "default": 7},
]
HEADER = [f["name"] for f in FIELDS if f["name"] != "unmapped"]


def make_dataset(keys: list[str], shards: int = 1) -> Dataset:
    return Dataset.model_validate(
        {
            "tenant": "acme",
            "name": "things",
            "createdAt": "x",
            "updatedAt": "x",
            "fields": [{**f, "required": True} if f["name"] in keys else f for f in FIELDS],
            "keys": keys,
            "shards": shards,
        }
    )


KEYINGS = {
    "string-key": (["code"], 1),
    "sharded": (["code"], 4),
    "integer-key": (["qty"], 1),
    "two-keys": (["code", "joined"], 1),
    "decimal-key": (["price"], 1),
    "append-only": ([], 1),
}

blank = st.sampled_from(["", " ", "\t", "\u00a0", "\x1c"])
# Per field: values the exact path takes (in canonical form and in others), then values it refuses.
VALID: dict[str, st.SearchStrategy[Any]] = {
    "code": st.one_of(
        st.text(st.characters(codec="utf-8"), min_size=1, max_size=12),
        st.sampled_from(["a#b", "back\\slash", "#", "multi\nline", "K0001", " padded "]),
    ),
    "qty": st.one_of(
        st.integers(-(10**37) + 1, 10**37 - 1).map(str),
        st.sampled_from(["007", "-0", "+5", "1,000", "12.0", " 12", "1e3", "١٢", "9" * 37, "-" + "9" * 37]),
    ),
    "price": st.one_of(
        st.decimals(allow_nan=False, allow_infinity=False).map(str),
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
        st.integers(-(10**6), 10**6).map(lambda n: f"{n / 1000}"),
        st.sampled_from(
            [
                "0.0000001",
                "0.000001",
                "0.0000000",
                "0.000000",
                "-0",
                "-0.0",
                ".5",
                "5.",
                "1_000",
                "1E5",
                "12.50",
                "00.5",
                "0.10",
                "1" * 38,
                "0." + "1" * 36,
                "-" + "1" * 37,
            ]
        ),
    ),
    "active": st.sampled_from(
        [
            "true",
            "false",
            "TRUE",
            "False",
            "yes",
            "No",
            "Y",
            "1",
            "0",
            "on",
            "OFF",
            "x",
            "X",
            "✓",
            " yes",
            "t",
        ]
    ),
    "joined": st.one_of(
        st.dates().map(date.isoformat),
        st.sampled_from(["2024/05/01", "01.05.2024", "20240501", "13/04/2024", "1 May 2024", " 2024-05-01"]),
    ),
    "seenAt": st.one_of(
        st.datetimes(timezones=st.just(UTC)).map(lambda moment: moment.isoformat().replace("+00:00", "Z")),
        st.datetimes().map(lambda moment: moment.replace(microsecond=0).isoformat() + "Z"),
        st.sampled_from(
            [
                "2024-05-01T13:00:00+02:00",
                "2024-05-01 13:00",
                "2024-05-01T13:00:00.000Z",
                "2024-05-01",
                "2024-05-01T13:00:00z",
                "2024-05-01t13:00:00Z",
                "20240501T130000Z",
            ]
        ),
    ),
    "extra": st.sampled_from(['{"a": 1}', "[1, 2.5]", "null", '"text"', "3", "true"]),
    "grade": st.sampled_from(["A", "B", "C"]),
    "level": st.sampled_from(["0", "10", "5", "7.0"]),
}
VALID["country"] = VALID["code"]
VALID["name"] = VALID["code"]
VALID["ratio"] = VALID["price"]
REFUSED: dict[str, st.SearchStrategy[Any]] = {
    "code": st.just("x" * (MAX_CELL_CHARS + 1)),
    "qty": st.sampled_from(["12.5", "12,34", "9" * 39, "1e400", "x"]),
    "price": st.sampled_from(["1" * 39, "0." + "1" * 39, "NaN", "-Infinity", "1e200", "abc"]),
    "active": st.sampled_from(["maybe", "2", "yess"]),
    "joined": st.sampled_from(
        ["2024-02-30", "2024-13-01", "0000-01-01", "03/04/2024", "2024-05-01T10:00:00"]
    ),
    "seenAt": st.sampled_from(
        ["2024-05-01T24:00:00Z", "2024-05-01T23:59:60Z", "0001-01-01T00:00:00+01:00", "x"]
    ),
    "extra": st.sampled_from(["not json", "1e400", "[" * 40 + "]" * 40]),
    "grade": st.sampled_from(["D", "AB", "a"]),
    "level": st.sampled_from(["11", "-1", "x"]),
}
REFUSED["country"] = REFUSED["name"] = REFUSED["code"]
REFUSED["ratio"] = REFUSED["price"]
typed = st.one_of(
    st.none(),
    st.integers(-1000, 1000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.datetimes(),
    st.dates(),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
)


def other(name: str) -> st.SearchStrategy[Any]:
    """A blank, a value the field refuses, or a typed spreadsheet cell."""
    return st.one_of(blank, REFUSED[name], typed)


@st.composite
def row_cells(draw: st.DrawFn) -> list[Any]:
    """A row the field takes, with a few of its cells (none, often) swapped for others."""
    cells = [draw(VALID[name]) for name in HEADER]
    for position in draw(st.lists(st.integers(0, len(HEADER) - 1), max_size=3)):
        cells[position] = draw(other(HEADER[position]))
    return cells


ragged = st.one_of(
    st.just([]), row_cells().map(lambda cells: cells[:-1]), row_cells().map(lambda cells: [*cells, "x"])
)
batches = st.lists(st.one_of(row_cells(), row_cells(), row_cells(), ragged), min_size=1, max_size=25)


def converters(keying: str) -> tuple[RowConverter, RecordLayout]:
    keys, shards = KEYINGS[keying]
    dataset = make_dataset(keys, shards)
    converter = RowConverter(dataset, HEADER, map_columns(HEADER, dataset), max_cell_chars=MAX_CELL_CHARS)
    return converter, RecordLayout(dataset, "records", None)


def as_boto3_serialises(item: dict[str, Any]) -> dict[str, Any]:
    """The item read by boto3's deserialiser and written again by its serialiser (the reference)."""
    return {name: SERIALIZER.serialize(DESERIALIZER.deserialize(value)) for name, value in item.items()}


def exact(converter: RowConverter, layout: RecordLayout, row: SourceRow) -> tuple[str, dict, dict] | None:
    record, issues = converter.convert(row.cells)
    if issues:
        return None
    identity = layout.identity(record, JOB, row.number)
    key = layout.key(identity, record)
    return identity, key, layout.item(record, key, JOB, row.number)


@pytest.mark.parametrize("keying", list(KEYINGS))
@PROPERTY
@given(cells=batches)
def test_every_row_the_fast_path_builds_is_the_exact_paths_item(keying, cells):
    # Given a batch of generated rows and both paths over the same mapping
    converter, layout = converters(keying)
    rows = [SourceRow(number, row, None) for number, row in enumerate(cells, start=2)]
    # When the fast path prepares the batch
    prepared = ColumnarConverter(converter, layout, JOB).prepare(rows)
    # Then each row it built is exactly what the exact path builds, and it built none the exact path
    # refuses
    assert len(prepared) == len(rows)
    for row, fast in zip(rows, prepared, strict=True):
        if fast is not None:
            assert fast == exact(converter, layout, row), row
            # and boto3's serialiser gives back every attribute value as the fast path built it
            assert as_boto3_serialises(fast[2]) == fast[2]


canonical_rows = st.tuples(
    st.from_regex(r"[A-Za-z0-9 _.@-]{1,20}", fullmatch=True).filter(lambda text: not text.isspace()),
    st.integers(-(10**30), 10**30).map(str),
    st.decimals(min_value=-(10**9), max_value=10**9, places=2, allow_nan=False).map(str),
    st.sampled_from(["true", "false", "yes", "no", "1", "0"]),
    st.dates().map(date.isoformat),
    st.datetimes(timezones=st.just(UTC)).map(
        lambda moment: moment.replace(microsecond=0).isoformat()[:19] + "Z"
    ),
)


@PROPERTY
@given(values=st.lists(canonical_rows, min_size=1, max_size=30, unique_by=lambda values: values[0]))
def test_rows_in_canonical_form_all_take_the_fast_path(values):
    # Given rows whose every cell is in the form the exact path writes back (blanks where allowed)
    converter, layout = converters("string-key")
    rows = [
        SourceRow(
            number,
            [
                code,
                code,
                qty,
                price,
                active,
                joined,
                seen,
                "",
                "",
                "",
                "",
                "",
            ],
            None,
        )
        for number, (code, qty, price, active, joined, seen) in enumerate(values, start=2)
    ]
    # When the fast path prepares them
    prepared = ColumnarConverter(converter, layout, JOB).prepare(rows)
    # Then it built every one of them, each as the exact path would
    for row, fast in zip(rows, prepared, strict=True):
        assert fast is not None, row
        assert fast == exact(converter, layout, row)
        assert as_boto3_serialises(fast[2]) == fast[2]


def test_a_batch_of_rows_with_errors_leaves_only_those_rows_to_the_exact_path():
    # Given a batch where one row has a bad integer, one a blank required code and one is ragged
    converter, layout = converters("string-key")
    good = ["K1", "Ann", "3", "1.50", "yes", "2024-05-01", "2024-05-01T13:00:00Z", "", "A", "2", "", ""]
    rows = [
        SourceRow(2, good, None),
        SourceRow(3, [*good[:2], "three", *good[3:]], None),
        SourceRow(4, ["", *good[1:]], None),
        SourceRow(5, good[:-1], None),
        SourceRow(6, ["K2", *good[1:]], None),
    ]
    # When the fast path prepares the batch
    prepared = ColumnarConverter(converter, layout, JOB).prepare(rows)
    # Then the good rows are built (the default country and ratio, the unmapped default included)
    # and the three others are left to the exact path
    assert [fast is not None for fast in prepared] == [True, False, False, False, True]
    identity, key, item = prepared[0]  # type: ignore[misc]
    assert identity == "K1" and key == {"pk": {"S": "acme#things"}, "sk": {"S": "K1"}}
    assert item["country"] == {"S": "NZ"} and item["ratio"] == {"N": "1.5"} and item["unmapped"] == {"N": "7"}
    assert item["qty"] == {"N": "3"} and item["active"] == {"BOOL": True} and "extra" not in item


def test_typed_spreadsheet_cells_are_converted_by_the_fields_converters():
    # Given a row of typed cells, as a workbook gives them
    converter, layout = converters("string-key")
    cells = [
        "K1",
        "Ann",
        3.0,
        Decimal("2.5"),
        True,
        datetime(2024, 5, 1),
        datetime(2024, 5, 1, 13, 0),
        None,
        "B",
        4,
        None,
        None,
    ]
    row = SourceRow(2, cells, None)
    # When the fast path prepares it
    (fast,) = ColumnarConverter(converter, layout, JOB).prepare([row])
    # Then its item is the exact path's
    assert fast is not None and fast == exact(converter, layout, row)
    assert fast[2]["joined"] == {"S": "2024-05-01"} and fast[2]["qty"] == {"N": "3"}


def test_a_column_of_long_cells_is_checked_cell_by_cell_without_another_copy_of_it():
    # Given 1,000 rows whose date cells are 30,000 characters each (30 MB of hostile text)
    converter, layout = converters("string-key")
    converter = RowConverter(converter.dataset, HEADER, converter.mapping, max_cell_chars=40_000)
    good = ["K", "Ann", "3", "1.50", "yes", "2024-05-01", "2024-05-01T13:00:00Z", "", "A", "2", "", ""]
    rows = [SourceRow(n, [f"K{n}", *good[1:5], "2" * 30_000, *good[6:]], None) for n in range(2, 1002)]
    fast = ColumnarConverter(converter, layout, JOB)
    # When the fast path prepares them, measuring what it allocates
    tracemalloc.start()
    try:
        prepared = fast.prepare(rows)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Then every row is left to the exact path (no such date exists), and the column was never
    # joined into one more 30 MB string
    assert prepared == [None] * len(rows)
    assert peak < 10 * 1024**2, peak


# A workbook's typed columns: numbers as floats (or ints, from openpyxl), dates as date or datetime,
# booleans as bool, a column often of one class only (the case the fast path takes whole).
whole_floats = st.one_of(
    st.integers(-(10**15), 10**15).map(float),
    st.sampled_from([0.0, -0.0, 1e16, -1e37, 9.999999999999999e37, 1e38, 1e300, float("inf"), float("nan")]),
)
any_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    whole_floats,
    st.sampled_from([1e-4, 1e-5, 0.1 + 0.2, 123456789.125, 1e-129, 1.5e-129, 1e125, 9.99e124, 5e-324, -2.5]),
)
TYPED_COLUMNS: dict[str, st.SearchStrategy[Any]] = {
    "name": st.one_of(any_floats, st.text(max_size=5), blank, st.none()),
    "qty": st.one_of(whole_floats, any_floats, st.integers(-(10**39), 10**39), st.booleans()),
    "price": st.one_of(any_floats, st.integers(-(10**37), 10**37), st.none()),
    "active": st.one_of(st.booleans(), st.sampled_from([0.0, 1.0, 2.0, "yes", "x"])),
    "joined": st.one_of(
        st.dates(),
        st.datetimes().map(lambda moment: moment.replace(hour=0, minute=0, second=0, microsecond=0)),
        st.datetimes(),
        st.datetimes(timezones=st.just(UTC)).map(lambda moment: moment.replace(hour=0, minute=0, second=0)),
    ),
    "seenAt": st.one_of(
        st.datetimes(),
        st.dates(),
        st.datetimes(timezones=st.just(UTC)),
        st.sampled_from(["2024-05-01T13:00:00Z"]),
    ),
}


@st.composite
def typed_batches(draw: st.DrawFn) -> list[list[Any]]:
    """Rows of a workbook: each typed column drawn from one of its strategies' branches or from all."""
    count = draw(st.integers(1, 25))
    codes = draw(st.lists(st.from_regex(r"K[0-9]{1,6}", fullmatch=True), min_size=count, max_size=count))
    columns: dict[str, list[Any]] = {}
    for name, strategy in TYPED_COLUMNS.items():
        branches = strategy.branches if hasattr(strategy, "branches") else [strategy]
        chosen = draw(st.sampled_from([strategy, *branches]))  # one class only, or a mix
        columns[name] = draw(st.lists(chosen, min_size=count, max_size=count))
    return [
        [codes[i], *(columns[name][i] for name in TYPED_COLUMNS), None, "A", 3.0, None, 2.5]
        for i in range(count)
    ]


@pytest.mark.parametrize("keying", ["string-key", "sharded", "append-only"])
@PROPERTY
@given(cells=typed_batches())
def test_a_workbooks_typed_columns_give_the_exact_paths_items(keying, cells):
    # Given a batch of a workbook's rows, its columns typed as calamine or openpyxl type them
    converter, layout = converters(keying)
    rows = [SourceRow(number, row, None) for number, row in enumerate(cells, start=2)]
    # When the fast path prepares the batch
    prepared = ColumnarConverter(converter, layout, JOB).prepare(rows)
    # Then every row it built is the exact path's item, and every row it left the exact path refuses
    # or the fast path has no builder for
    for row, fast in zip(rows, prepared, strict=True):
        if fast is not None:
            assert fast == exact(converter, layout, row), row
            assert as_boto3_serialises(fast[2]) == fast[2]


def test_a_workbooks_typical_typed_rows_all_take_the_fast_path():
    # Given 200 rows as calamine reads a workbook: text, whole and fractional floats, bools, dates
    converter, layout = converters("string-key")
    rows = [
        SourceRow(
            number,
            [
                f"K{number}",
                float(number),
                float(number % 1000),
                number / 100,
                number % 2 == 0,
                date(2024, 1 + number % 12, 1 + number % 28),
                datetime(2024, 5, 1, number % 24, 0, 0, 1000 * (number % 3)),
                None,
                "A",
                3.0,
                None,
                2.5,
            ],
            None,
        )
        for number in range(2, 202)
    ]
    # When the fast path prepares them
    prepared = ColumnarConverter(converter, layout, JOB).prepare(rows)
    # Then it built every one, each as the exact path would
    for row, fast in zip(rows, prepared, strict=True):
        assert fast is not None, row
        assert fast == exact(converter, layout, row)
    assert prepared[0] is not None and prepared[0][2]["name"] == {"S": "2"}
    assert prepared[0][2]["price"] == {"N": "0.02"} and prepared[0][2]["seenAt"] == {
        "S": "2024-05-01T02:00:00.002000Z"
    }


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf"), 1e125, 1e-130])
def test_a_float_column_with_one_value_dynamodb_cannot_store_leaves_that_row_to_the_exact_path(bad):
    # Given a decimal column of floats, one of which is not finite or is out of DynamoDB's range
    # (after the first row: min and max skip a nan that is not first)
    converter, layout = converters("string-key")
    good = ["K", "n", 1.0, 2.5, True, date(2024, 5, 1), None, None, "A", 3.0, None, 2.5]
    rows = [SourceRow(2, good, None), SourceRow(3, [*good[:3], bad, *good[4:]], None)]
    rows[1].cells[0] = "K2"
    # When the fast path prepares them
    prepared = ColumnarConverter(converter, layout, JOB).prepare(rows)
    # Then the good row is built as the exact path builds it, and the other gives the exact path's
    # answer: a row error, or (1e125 as 1E+125) the converter's own value
    assert prepared[0] == exact(converter, layout, rows[0])
    assert prepared[1] is None or prepared[1] == exact(converter, layout, rows[1])
    if prepared[1] is not None:
        assert prepared[1][2]["price"] != {"N": repr(bad)}
