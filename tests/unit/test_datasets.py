"""Dataset definitions: what is accepted and what is refused, with a reason."""

import pytest
from pydantic import ValidationError

from impex.datasets.filters import check_filters
from impex.datasets.model import Dataset, DatasetDefinition
from impex.errors import InvalidInput
from impex.jobs.options import ExportFilter


def definition(**changes):
    body = {
        "fields": [
            {"name": "sku", "type": "string", "required": True},
            {"name": "qty", "type": "integer", "constraints": {"min": 0, "max": 1000}},
            {"name": "price", "type": "decimal"},
            {"name": "tags", "type": "json"},
            {"name": "active", "type": "boolean"},
            {"name": "madeOn", "type": "date"},
            {"name": "colour", "type": "string", "constraints": {"enum": ["red", "blue"], "maxLength": 10}},
        ],
        "keys": ["sku"],
    }
    body.update(changes)
    return body


def test_a_good_definition_is_accepted():
    parsed = DatasetDefinition.model_validate(definition())
    assert [f.name for f in parsed.fields][:2] == ["sku", "qty"]
    assert parsed.keys == ["sku"]


def test_a_dataset_may_have_no_keys_for_append_only_data():
    assert DatasetDefinition.model_validate(definition(keys=[])).keys == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"keys": ["missing"]}, "not one of the fields"),
        ({"keys": ["qty"]}, "must be required"),
        ({"keys": ["sku", "sku"]}, "listed twice"),
        (
            {"fields": [{"name": "a", "type": "string"}, {"name": "a", "type": "integer"}], "keys": []},
            "twice",
        ),
        ({"fields": [{"name": "pk", "type": "string"}], "keys": []}, "reserved"),
        ({"fields": [{"name": "9lives", "type": "string"}], "keys": []}, "starts with a letter"),
        ({"fields": [{"name": "a", "type": "uuid"}], "keys": []}, "Input should be"),
        ({"fields": [{"name": "a", "type": "string", "constraints": {"min": 1}}], "keys": []}, "min/max"),
        (
            {"fields": [{"name": "a", "type": "integer", "constraints": {"pattern": "x"}}], "keys": []},
            "pattern",
        ),
        (
            {"fields": [{"name": "a", "type": "string", "constraints": {"pattern": "("}}], "keys": []},
            "regular",
        ),
        (
            {"fields": [{"name": "a", "type": "integer", "constraints": {"min": 5, "max": 1}}], "keys": []},
            "greater",
        ),
        (
            {"fields": [{"name": "a", "type": "integer", "constraints": {"enum": ["x"]}}], "keys": []},
            "not a valid",
        ),
        (
            {"fields": [{"name": "a", "type": "date", "constraints": {"min": "2020-13-01"}}], "keys": []},
            "valid",
        ),
        ({"fields": [], "keys": []}, "at least 1"),
        ({"fields": [{"name": "t", "type": "json", "required": True}], "keys": ["t"]}, "keys are"),
        ({"unknown": 1}, "Extra inputs"),
        (
            {"fields": [{"name": "a", "type": "decimal", "constraints": {"min": 1e999}}], "keys": []},
            "finite number",
        ),
        (
            {"fields": [{"name": "a", "type": "decimal", "constraints": {"max": float("nan")}}], "keys": []},
            "finite number",
        ),
        (
            {"fields": [{"name": "a", "type": "decimal", "constraints": {"enum": [1, -1e999]}}], "keys": []},
            "finite number",
        ),
    ],
)
def test_a_bad_definition_is_refused_with_a_reason(change, reason):
    with pytest.raises(ValidationError) as raised:
        DatasetDefinition.model_validate(definition(**change))
    assert reason in str(raised.value)


def test_datetime_bounds_mixing_zones_compare_instead_of_crashing():
    body = definition(
        fields=[
            {
                "name": "at",
                "type": "datetime",
                "constraints": {"min": "2020-01-01T00:00:00", "max": "2021-01-01T00:00:00Z"},
            }
        ],
        keys=[],
    )
    assert DatasetDefinition.model_validate(body).fields[0].name == "at"


def stored(**changes) -> Dataset:
    return Dataset.model_validate(
        {**definition(**changes), "tenant": "acme", "name": "items", "createdAt": "x", "updatedAt": "x"}
    )


@pytest.mark.parametrize(
    "filters",
    [
        [{"field": "qty", "op": "gt", "value": 3}],
        [{"field": "qty", "op": "between", "value": [1, 5]}],
        [{"field": "sku", "op": "begins_with", "value": "A-"}],
        [{"field": "colour", "op": "in", "value": ["red", "blue"]}],
        [{"field": "tags", "op": "exists"}],
        [{"field": "madeOn", "op": "gte", "value": "2024-01-01"}],
        [{"field": "price", "op": "lt", "value": "9.99"}],
        [{"field": "active", "op": "eq", "value": True}],
    ],
)
def test_filters_that_fit_the_dataset_pass(filters):
    check_filters(stored(), [ExportFilter.model_validate(f) for f in filters])


@pytest.mark.parametrize(
    ("filters", "reason"),
    [
        ([{"field": "nope", "op": "eq", "value": 1}], "unknown field"),
        ([{"field": "qty", "op": "eq", "value": "many"}], "not a valid integer"),
        ([{"field": "qty", "op": "between", "value": [1]}], "two values"),
        ([{"field": "qty", "op": "in", "value": []}], "1 to 100"),
        ([{"field": "qty", "op": "begins_with", "value": "1"}], "string field"),
        ([{"field": "tags", "op": "eq", "value": "x"}], "json field"),
        ([{"field": "active", "op": "gt", "value": True}], "no order"),
        ([{"field": "sku", "op": "exists", "value": 1}], "takes no value"),
        ([{"field": "madeOn", "op": "eq", "value": "yesterday"}], "not a valid date"),
        ([{"field": "sku) OR (1=1", "op": "eq", "value": "x"}], "unknown field"),
        ([{"field": "price", "op": "gt", "value": float("nan")}], "is not a finite number"),
        ([{"field": "price", "op": "lt", "value": float("inf")}], "is not a finite number"),
        ([{"field": "price", "op": "lt", "value": "Infinity"}], "is not a finite number"),
        ([{"field": "price", "op": "eq", "value": "1e999999"}], "outside the range DynamoDB can store"),
        ([{"field": "price", "op": "eq", "value": "1e-999999"}], "outside the range DynamoDB can store"),
        ([{"field": "price", "op": "between", "value": [0, "1" * 39]}], "outside the range"),
        ([{"field": "qty", "op": "gt", "value": float("inf")}], "is not a finite number"),
        ([{"field": "sku", "op": "eq", "value": float("inf")}], "is not a finite number"),
        ([{"field": "sku", "op": "in", "value": ["a", float("nan")]}], "is not a finite number"),
        ([{"field": "qty", "op": "in", "value": [1, 10**39]}], "more than 38 digits"),
        ([{"field": "sku", "op": "begins_with", "value": ""}], "needs a non-empty string"),
        ([{"field": "sku", "op": "contains", "value": ""}], "needs a non-empty string"),
    ],
)
def test_filters_that_do_not_fit_are_refused(filters, reason):
    with pytest.raises(InvalidInput) as raised:
        check_filters(stored(), [ExportFilter.model_validate(f) for f in filters])
    assert reason in raised.value.message
