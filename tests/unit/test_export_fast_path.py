"""The export's fast paths give exactly what the exact paths give (issue #14), and pages are read
ahead of the writer.

Decoding: `row_decoder` (one compiled decoder per field) against `typed_value` (the exact rule), on
generated attributes of every DynamoDB kind for every field type, the odd numbers included.
CSV cells: `csv_row_encoder` (one encoder per column) against `csv_cell`, on generated values of
every Python type in columns of every kind, with and without formula neutralisation.
"""

from __future__ import annotations

import string
import threading
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from impex.aws.records import RecordTable
from impex.datasets.decode import csv_text_decoder, json_object_decoder, row_decoder, typed_value
from impex.datasets.model import DatasetField, FieldType
from impex.formats.columns import Column, ColumnKind
from impex.formats.values import csv_cell, csv_row_encoder, object_encoder
from impex.pipelines.exporter import _merged_pages, _read_ahead

DIFFERENTIAL = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

odd_numbers = st.sampled_from(
    [
        "007",
        "-0",
        "-0.0",
        "0.10",
        "+5",
        " 5",
        "5_000",
        "1E+3",
        "1e-2",
        "12.50",
        "-12.5",
        "0.000",
        "99999999999999999999999",
        "٣",
        "0.0000001",
        "0.000001",
        "-0.5",
        "1.10",
    ]
)
numbers = st.one_of(
    st.integers(min_value=-(10**38), max_value=10**38).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str),
    odd_numbers,
)
iso_texts = st.one_of(
    st.dates().map(date.isoformat),
    st.datetimes(timezones=st.just(UTC)).map(lambda moment: moment.isoformat().replace("+00:00", "Z")),
    st.datetimes().map(datetime.isoformat),
    st.sampled_from(["2024-02-30", "2024-13-01T00:00:00Z", "20240501", "2024-05-01T24:00:00Z", ""]),
    st.sampled_from(
        [
            "2024-05-01T03:00:00.000000Z",
            "2024-05-01T03:00:00.000100Z",
            "2024-05-01T03:00:00.5Z",
            "2024-05-01T03:00:00+00:00",
            "0000-01-01",
            "2024-05-01T03:00:60Z",
        ]
    ),
)
scalars = st.one_of(
    st.builds(lambda text: {"S": text}, st.one_of(st.text(max_size=12), iso_texts, numbers)),
    st.builds(lambda digits: {"N": digits}, numbers),
    st.builds(lambda flag: {"BOOL": flag}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(
        lambda texts: {"SS": texts}, st.lists(st.text(max_size=4), min_size=1, max_size=3, unique=True)
    ),
    st.builds(
        lambda digits: {"NS": digits}, st.lists(st.integers().map(str), min_size=1, max_size=3, unique=True)
    ),
)
attributes = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.builds(lambda values: {"L": values}, st.lists(inner, max_size=3)),
        st.builds(
            lambda values: {"M": values},
            st.dictionaries(st.text(string.ascii_letters, max_size=3), inner, max_size=3),
        ),
    ),
    max_leaves=6,
)
FIELDS = [DatasetField(name=f"f_{kind.value}", type=kind) for kind in FieldType]
# Each field's own shape (as impex stores it, odd forms included) most of the time, any other now
# and then, or missing.
OWN_SHAPES = {
    FieldType.STRING: st.builds(
        lambda text: {"S": text}, st.one_of(st.text(max_size=8), st.sampled_from(["=1", "@x"]))
    ),
    FieldType.INTEGER: st.builds(lambda digits: {"N": digits}, numbers),
    FieldType.DECIMAL: st.builds(lambda digits: {"N": digits}, numbers),
    FieldType.BOOLEAN: st.builds(lambda flag: {"BOOL": flag}, st.booleans()),
    FieldType.DATE: st.builds(lambda text: {"S": text}, iso_texts),
    FieldType.DATETIME: st.builds(lambda text: {"S": text}, iso_texts),
    FieldType.JSON: attributes,
}
items = st.fixed_dictionaries(
    {},
    optional={
        f.name: st.one_of(OWN_SHAPES[f.type], OWN_SHAPES[f.type], OWN_SHAPES[f.type], attributes)
        for f in FIELDS
    },
)


def _outcome(call: Any) -> str:
    """A value's repr with its type, or the exception it raised: Decimal('NaN') != itself."""
    try:
        value = call()
    except Exception as error:  # the kind of failure is what is compared
        return f"raised {type(error).__name__}"
    return f"{type(value).__name__}:{value!r}"


@DIFFERENTIAL
@given(item=items)
def test_the_compiled_row_decoder_gives_what_the_exact_rule_gives(item):
    # Given a stored item: impex's own shapes, another app's, missing fields
    decode = row_decoder(FIELDS)
    # When it is decoded both ways, one field at a time
    fast = [_outcome(lambda i=index: decode(item)[i]) for index in range(len(FIELDS))]
    exact = [_outcome(lambda f=field: typed_value(item.get(f.name), f.type)) for field in FIELDS]
    # Then every field's value (its type too) is the same
    assert fast == exact


@DIFFERENTIAL
@given(item=items, neutralize=st.booleans())
def test_csv_text_straight_from_items_is_what_decoding_then_encoding_gives(item, neutralize):
    # Given a stored item of any shapes
    columns = [Column(f.name, ColumnKind(f.type.value)) for f in FIELDS]
    # When its CSV cells are made straight from the attributes, and by decoding then encoding
    straight = _outcome(lambda: csv_text_decoder(FIELDS, neutralize)(item))
    two_steps = _outcome(lambda: csv_row_encoder(columns, neutralize)(row_decoder(FIELDS)(item)))
    # Then the texts are the same
    assert straight == two_steps


@DIFFERENTIAL
@given(item=items)
def test_json_objects_straight_from_items_are_what_decoding_then_encoding_gives(item):
    # Given a stored item of any shapes
    columns = [Column(f.name, ColumnKind(f.type.value)) for f in FIELDS]
    # When its JSON object is made straight from the attributes, and by decoding then encoding
    straight = _outcome(lambda: json_object_decoder(FIELDS)(item))
    two_steps = _outcome(lambda: object_encoder(columns)(row_decoder(FIELDS)(item)))
    # Then the texts are the same
    assert straight == two_steps


def test_impex_own_shapes_decode_to_their_field_types():
    # Given an item as impex stores it
    item = {
        "f_string": {"S": "=1+1"},
        "f_integer": {"N": "-42"},
        "f_decimal": {"N": "12.50"},
        "f_boolean": {"BOOL": False},
        "f_date": {"S": "2024-02-29"},
        "f_datetime": {"S": "2024-05-01T03:04:05Z"},
        "f_json": {"M": {"a": {"L": [{"N": "1"}]}}},
    }
    # When it is decoded
    row = row_decoder(FIELDS)(item)
    # Then each value is its field's Python type
    assert row == [
        "=1+1",
        -42,
        Decimal("12.50"),
        False,
        date(2024, 2, 29),
        datetime(2024, 5, 1, 3, 4, 5, tzinfo=UTC),
        {"a": [Decimal(1)]},
    ]


typed_values = st.one_of(
    st.none(),
    st.text(max_size=8),
    st.sampled_from(["=SUM(A1)", "+1", "-1", "@x", "\tx", "\rx", "\0x", "'x"]),
    st.integers(),
    st.booleans(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.floats(allow_nan=False),
    st.dates(),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))])),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.lists(st.text(max_size=3), max_size=2),
)
COLUMNS = [Column(f"c_{kind.value}", kind) for kind in ColumnKind]


@DIFFERENTIAL
@given(row=st.lists(typed_values, min_size=len(COLUMNS), max_size=len(COLUMNS)), neutralize=st.booleans())
def test_the_compiled_csv_row_encoder_gives_what_the_exact_rule_gives(row, neutralize):
    # Given a row of any values, in columns of every kind
    encode = csv_row_encoder(COLUMNS, neutralize)
    # When it is encoded both ways
    # Then every cell's text is the same
    assert encode(row) == [csv_cell(value, neutralize) for value in row]


class _PagedClient:
    """A low-level client whose Query serves numbered pages; each call can wait on a test's gate."""

    def __init__(self, pages_per_partition: int, gate: Any = None) -> None:
        self.pages = pages_per_partition
        self.gate = gate
        self.asked: list[tuple[str, int]] = []
        self.changed = threading.Condition()

    def query(self, **call: Any) -> dict[str, Any]:
        partition = call["ExpressionAttributeValues"][":pk"]["S"]
        number = int(call.get("ExclusiveStartKey", {}).get("sk", {}).get("S", "p-1").split("p")[-1]) + 1
        with self.changed:
            self.asked.append((partition, number))
            self.changed.notify_all()
        if self.gate is not None:
            self.gate(partition, number)
        items = [{"pk": {"S": partition}, "sk": {"S": f"{partition}/{number:03d}/{i}"}} for i in range(3)]
        response: dict[str, Any] = {"Items": items}
        if number + 1 < self.pages:
            response["LastEvaluatedKey"] = {"pk": {"S": partition}, "sk": {"S": f"p{number}"}}
        return response


def _request(partition: str) -> dict[str, Any]:
    return {
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": partition}},
    }


def test_the_next_page_is_being_read_while_the_caller_writes_this_one():
    # Given a partition of five pages
    client = _PagedClient(5)
    table = RecordTable(client, "records", max_workers=4)
    try:
        # When its pages are read ahead, and the caller holds each page until the next is asked for
        seen = []
        for items, _ in _read_ahead(table, _request("t#d"), None, None):
            seen.append(items[0]["sk"]["S"])
            number = len(seen)
            if number < 5:
                with client.changed:
                    # Then page n+1 is already on its way while page n is being written
                    assert client.changed.wait_for(lambda n=number: len(client.asked) > n, timeout=10)
        assert seen == [f"t#d/{n:03d}/0" for n in range(5)]
        assert [number for _, number in client.asked] == [0, 1, 2, 3, 4]
    finally:
        table.close()


def test_every_partition_s_first_page_is_asked_for_before_the_merge_waits_on_any():
    # Given a dataset of four shards whose first pages only come back once all four are asked for
    everyone_asked = threading.Barrier(4, timeout=10)

    def gate(partition: str, number: int) -> None:
        if number == 0:
            everyone_asked.wait()  # a merge that asks one partition at a time breaks the barrier

    client = _PagedClient(2, gate)
    table = RecordTable(client, "records", max_workers=8)

    class Query:
        partitions = [f"t#d#{n}" for n in range(4)]

        @staticmethod
        def request(partition: str) -> dict[str, Any]:
            return _request(partition)

    try:
        # When the sharded export merges them
        pages = list(_merged_pages(table, Query(), {}, page_size=100))  # type: ignore[arg-type]
    finally:
        table.close()
    # Then it read every page of every shard, merged in sort-key order
    keys = [item["sk"]["S"] for page, _ in pages for item in page]
    assert keys == sorted(keys) and len(keys) == 4 * 2 * 3
    assert pages[-1][1]["done"] is True


@pytest.mark.parametrize("neutralize", [True, False])
def test_formula_text_is_neutralised_only_when_asked(neutralize):
    # Given a text cell a spreadsheet would run
    encode = csv_row_encoder([Column("name", ColumnKind.STRING)], neutralize)
    # When it is encoded
    # Then it carries the quote prefix only with neutralisation on
    assert encode(["=HYPERLINK(1)"]) == (["'=HYPERLINK(1)"] if neutralize else ["=HYPERLINK(1)"])


def test_a_moment_that_falls_before_year_one_in_utc_keeps_its_own_offset():
    # Given the first minute of year 1 at +05:30 (in UTC, still year 0, which no datetime holds)
    moment = datetime(1, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    # When it is written as a CSV cell, by the exact rule and by the row encoder
    # Then both give it with its own offset instead of failing the export
    assert csv_cell(moment, True) == "0001-01-01T00:00:00+05:30"
    assert csv_row_encoder([Column("at", ColumnKind.DATETIME)], True)([moment]) == [
        "0001-01-01T00:00:00+05:30"
    ]
