"""Export filters compiled to DynamoDB expressions: key conditions where the key allows, filter
expressions otherwise; always with expression attribute names and values, never string-built."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from impex.aws.attributes import to_attribute
from impex.datasets.convert import converter_for
from impex.datasets.filters import Filter
from impex.datasets.model import FieldType
from impex.datasets.records import RecordLayout, escape_key_part, key_text

KEY_OPS = frozenset({"eq", "lt", "lte", "gt", "gte", "between", "begins_with"})
_COMPARE = {"eq": "=", "ne": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


@dataclass
class CompiledQuery:
    """The parameters of a Query (or Scan) for one export: for a sharded dataset, one Query per
    record partition, the same but for the partition key's value."""

    key_condition: str | None = None
    filter_expression: str | None = None
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    projection: str | None = None
    # The RecordsTable partitions to read (empty for an allow-listed table) and the placeholder of
    # the partition key's value in the key condition.
    partitions: list[str] = field(default_factory=list)
    partition_value: str | None = None

    def request(self, partition: str | None = None) -> dict[str, Any]:
        """Keyword arguments for the low-level client's query/scan (of ``partition``, if sharded)."""
        request: dict[str, Any] = {}
        if self.key_condition:
            request["KeyConditionExpression"] = self.key_condition
        if self.filter_expression:
            request["FilterExpression"] = self.filter_expression
        if self.projection:
            request["ProjectionExpression"] = self.projection
        if self.names:
            request["ExpressionAttributeNames"] = self.names
        if self.values:
            request["ExpressionAttributeValues"] = self.values
        if partition is not None and self.partition_value is not None:
            request["ExpressionAttributeValues"] = {**self.values, self.partition_value: {"S": partition}}
        return request

    @property
    def uses_query(self) -> bool:
        return self.key_condition is not None


class _Names:
    def __init__(self, query: CompiledQuery) -> None:
        self._query = query

    def name(self, attribute: str) -> str:
        for placeholder, existing in self._query.names.items():
            if existing == attribute:
                return placeholder
        placeholder = f"#n{len(self._query.names)}"
        self._query.names[placeholder] = attribute
        return placeholder

    def value(self, attribute_value: dict[str, Any]) -> str:
        placeholder = f":v{len(self._query.values)}"
        self._query.values[placeholder] = attribute_value
        return placeholder


def compile_query(layout: RecordLayout, filters: Sequence[Filter], fields: list[str]) -> CompiledQuery:
    """Compile validated filters (see datasets.filters) and the projected fields for ``layout``."""
    query = CompiledQuery()
    names = _Names(query)
    remaining = list(filters)
    keys: list[str] = []
    if layout.external is None:
        keys = _records_key_conditions(query, names, layout, remaining)
    else:
        partition = next(
            (f for f in remaining if f.field == layout.external.partition_key and f.op == "eq"), None
        )
        if partition is not None:
            remaining.remove(partition)
            keys.append(_condition(names, partition.field, partition, None, layout, True))
            sort_key = layout.external.sort_key
            sort_filter = next((f for f in remaining if f.field == sort_key and f.op in KEY_OPS), None)
            if sort_filter is not None:
                remaining.remove(sort_filter)
                keys.append(_condition(names, sort_filter.field, sort_filter, None, layout, True))
    if keys:
        query.key_condition = " AND ".join(keys)
    conditions = [_condition(names, f.field, f, None, layout, False) for f in remaining]
    if conditions:
        query.filter_expression = " AND ".join(conditions)
    # Several partitions are merged by their sort key, so it is read too.
    projected = [*fields, "sk"] if len(query.partitions) > 1 else fields
    query.projection = ", ".join(names.name(name) for name in projected)
    return query


def _records_key_conditions(
    query: CompiledQuery, names: _Names, layout: RecordLayout, remaining: list[Filter]
) -> list[str]:
    """The key condition in impex's RecordsTable: the partition (each shard's in turn), and the sort
    key where a filter allows it (taken out of ``remaining``)."""
    query.partitions = list(layout.partitions)
    query.partition_value = names.value({"S": query.partitions[0]})
    keys = [f"{names.name('pk')} = {query.partition_value}"]
    sort_filter = _sort_key_filter(layout, remaining)
    if sort_filter is not None:
        remaining.remove(sort_filter)
        keys.append(
            _condition(names, "sk", sort_filter, lambda v: {"S": escape_key_part(key_text(v))}, layout, True)
        )
        if sort_filter.op == "eq":
            # One key lives in one shard: read only that partition.
            identity = escape_key_part(key_text(_typed(layout, sort_filter)))
            query.partitions = [layout.partition_of(identity)]
            query.values[query.partition_value] = {"S": query.partitions[0]}
    return keys


# What the stored sort key answers exactly. It is the key's text with "\\" and "#" escaped: the
# escape is injective and prefix-free, so equality and prefixes carry over, but it does not keep
# order ("a#" < "a$", yet "a\\#" > "a$"), so ranges are matched on the key's own attribute instead.
_ESCAPED_KEY_OPS = frozenset({"eq", "begins_with"})


def _sort_key_filter(layout: RecordLayout, filters: Sequence[Filter]) -> Filter | None:
    # The sort key is the key's text: only a single text-like key can be conditioned on it.
    keys = layout.dataset.keys
    if len(keys) != 1:
        return None
    key_field = layout.dataset.field(keys[0])
    if key_field is None or key_field.type not in (FieldType.STRING, FieldType.DATE):
        return None
    return next((f for f in filters if f.field == keys[0] and f.op in _ESCAPED_KEY_OPS), None)


def _typed(layout: RecordLayout, condition: Filter) -> Any:
    """A filter's value as the field's type (as stored)."""
    dataset_field = layout.dataset.field(condition.field)
    assert dataset_field is not None
    return converter_for(dataset_field.model_copy(update={"constraints": None}))(condition.value)


def _condition(
    names: _Names, attribute: str, condition: Filter, as_key: Any, layout: RecordLayout, key: bool
) -> str:
    op = condition.op
    value: Any = condition.value
    dataset_field = layout.dataset.field(condition.field)
    assert dataset_field is not None
    convert = converter_for(dataset_field.model_copy(update={"constraints": None}))

    def stored(raw: Any) -> dict[str, Any]:
        typed = convert(raw)
        if as_key is not None:
            return as_key(typed)  # type: ignore[no-any-return]
        if key and layout.external is not None:
            return layout._external_key_value(condition.field, typed)
        return to_attribute(typed)

    name = names.name(attribute)
    if op in _COMPARE:
        return f"{name} {_COMPARE[op]} {names.value(stored(value))}"
    if op == "between":
        return f"{name} BETWEEN {names.value(stored(value[0]))} AND {names.value(stored(value[1]))}"
    if op == "in":
        return f"{name} IN ({', '.join(names.value(stored(item)) for item in value)})"
    if op == "begins_with":
        text = {"S": escape_key_part(value)} if as_key is not None else {"S": value}
        return f"begins_with({name}, {names.value(text)})"
    if op == "contains":
        return f"contains({name}, {names.value({'S': value})})"
    if op == "exists":
        return f"attribute_exists({name})"
    if op == "not_exists":
        return f"attribute_not_exists({name})"
    raise ValueError(f"unknown operator {op}")
