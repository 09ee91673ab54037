"""Filter compilation: key conditions where the key allows, filter expressions otherwise, never strings."""

from __future__ import annotations

import pytest

from impex.datasets.model import Dataset
from impex.datasets.query import CompiledQuery, compile_query
from impex.datasets.records import RecordLayout
from impex.jobs.options import ExportFilter
from impex.settings import ExternalTable


def compiled(layout: RecordLayout, filters: list[dict], fields: list[str]) -> CompiledQuery:
    """compile_query over filters as an export job stores them."""
    return compile_query(layout, [ExportFilter.model_validate(f) for f in filters], fields)


def dataset(keys=("sku",), **extra) -> Dataset:
    return Dataset.model_validate(
        {
            "tenant": "acme",
            "name": "items",
            "createdAt": "x",
            "updatedAt": "x",
            "keys": list(keys),
            "fields": [
                {"name": "sku", "type": "string", "required": True},
                {"name": "qty", "type": "integer"},
                {"name": "price", "type": "decimal"},
                {"name": "day", "type": "date"},
                {"name": "ok", "type": "boolean"},
                {"name": "note", "type": "string"},
            ],
            **extra,
        }
    )


def layout(**kwargs) -> RecordLayout:
    return RecordLayout.for_dataset(dataset(**kwargs), records_table="records", external_tables={})


def test_the_partition_is_always_a_key_condition():
    query = compiled(layout(), [], ["sku", "qty"])
    assert query.uses_query
    assert query.key_condition == "#n0 = :v0"
    assert query.names == {"#n0": "pk", "#n1": "sku", "#n2": "qty"}
    assert query.values == {":v0": {"S": "acme#items"}}
    assert query.projection == "#n1, #n2"
    assert query.filter_expression is None


def test_a_filter_on_the_single_text_key_becomes_a_sort_key_condition():
    query = compiled(layout(), [{"field": "sku", "op": "begins_with", "value": "A#1"}], ["sku"])
    assert query.key_condition == "#n0 = :v0 AND begins_with(#n1, :v1)"
    assert query.names["#n1"] == "sk"
    assert query.values[":v1"] == {"S": "A\\#1"}  # escaped exactly as keys are stored


@pytest.mark.parametrize("op", ["lt", "lte", "gt", "gte", "between"])
def test_a_range_on_the_key_is_matched_on_its_attribute_not_the_escaped_sort_key(op):
    # The stored sort key escapes "#" and "\\", which does not keep order: a range on it would miss keys
    value = ["A#1", "B"] if op == "between" else "A#1"
    query = compiled(layout(), [{"field": "sku", "op": op, "value": value}], ["sku"])
    assert query.key_condition == "#n0 = :v0"
    assert "#n1" in query.filter_expression and query.names["#n1"] == "sku"
    assert {"S": "A#1"} in query.values.values()  # the raw value, compared with the raw key


def test_other_filters_become_a_typed_filter_expression():
    filters = [
        {"field": "qty", "op": "between", "value": [1, 5]},
        {"field": "price", "op": "lt", "value": "9.5"},
        {"field": "day", "op": "gte", "value": "2024-01-01"},
        {"field": "ok", "op": "eq", "value": True},
        {"field": "note", "op": "contains", "value": "x"},
        {"field": "note", "op": "not_exists"},
        {"field": "qty", "op": "in", "value": [1, 2]},
        {"field": "qty", "op": "ne", "value": 3},
    ]
    query = compiled(layout(), filters, ["sku"])
    assert query.filter_expression == (
        "#n1 BETWEEN :v1 AND :v2 AND #n2 < :v3 AND #n3 >= :v4 AND #n4 = :v5 AND contains(#n5, :v6) "
        "AND attribute_not_exists(#n5) AND #n1 IN (:v7, :v8) AND #n1 <> :v9"
    )
    assert query.values[":v1"] == {"N": "1"} and query.values[":v3"] == {"N": "9.5"}
    assert query.values[":v4"] == {"S": "2024-01-01"} and query.values[":v5"] == {"BOOL": True}


@pytest.mark.parametrize("evil", ["x) OR (1=1", "#n0", ":v0", "a, pk", "sk = :v0 OR attribute_exists(pk)"])
def test_injection_attempts_in_values_stay_values(evil):
    query = compiled(layout(), [{"field": "note", "op": "eq", "value": evil}], ["note"])
    assert evil not in query.filter_expression
    assert {"S": evil} in query.values.values()


def test_expressions_hold_only_placeholders_never_names_or_values():
    filters = [{"field": "note", "op": "eq", "value": "size"}, {"field": "qty", "op": "gt", "value": 1}]
    query = compiled(layout(), filters, ["note", "qty"])
    for expression in (query.key_condition, query.filter_expression, query.projection):
        words = expression.replace("(", " ").replace(")", " ").replace(",", " ").split()
        assert all(w.startswith(("#", ":")) or w in {"=", ">", "AND"} for w in words), expression


def test_a_numeric_key_is_filtered_not_key_conditioned():
    numeric = Dataset.model_validate(
        {
            "tenant": "acme",
            "name": "n",
            "createdAt": "x",
            "updatedAt": "x",
            "keys": ["id"],
            "fields": [{"name": "id", "type": "integer", "required": True}],
        }
    )
    query = compiled(
        RecordLayout(numeric, "records", None), [{"field": "id", "op": "gt", "value": 10}], ["id"]
    )
    assert query.key_condition == "#n0 = :v0"
    assert query.filter_expression == "#n1 > :v1"


def test_an_allow_listed_table_queries_by_its_partition_key_or_scans():
    external = ExternalTable("orders", "sku", None)
    table_layout = RecordLayout.for_dataset(
        dataset(target={"table": "orders"}), records_table="records", external_tables={"orders": external}
    )
    by_key = compiled(table_layout, [{"field": "sku", "op": "eq", "value": "A1"}], ["sku"])
    assert by_key.key_condition == "#n0 = :v0" and by_key.values[":v0"] == {"S": "A1"}
    scan = compiled(table_layout, [{"field": "qty", "op": "gt", "value": 1}], ["sku"])
    assert not scan.uses_query and scan.filter_expression == "#n0 > :v0"
