"""Export filters (`field op value`, ANDed) checked against a dataset before a job is accepted."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import InvalidOperation
from typing import Any, Protocol

from impex.datasets.convert import CellError, converter_for
from impex.datasets.model import Dataset, FieldType, parse_literal
from impex.errors import InvalidInput

ORDER_OPS = frozenset({"lt", "lte", "gt", "gte", "between"})
TEXT_OPS = frozenset({"begins_with", "contains"})
PRESENCE_OPS = frozenset({"exists", "not_exists"})
MAX_IN_VALUES = 100


class Filter(Protocol):
    """One `field op value` condition of an export (the job's options hold them)."""

    @property
    def field(self) -> str: ...
    @property
    def op(self) -> str: ...
    @property
    def value(self) -> Any: ...


def check_filters(dataset: Dataset, filters: Sequence[Filter]) -> None:
    """Raise InvalidInput naming the first filter whose field, operator or value does not fit the dataset."""
    for position, condition in enumerate(filters):
        _check_filter(dataset, condition, f"filters[{position}]")


def _check_filter(dataset: Dataset, condition: Filter, where: str) -> None:
    name, op, value = condition.field, condition.op, condition.value
    dataset_field = dataset.field(name)
    if dataset_field is None:
        raise InvalidInput(f"{where}: unknown field '{name}'", details={"fields": dataset.field_names})
    field_type = dataset_field.type
    if op in PRESENCE_OPS:
        if value is not None:
            raise InvalidInput(f"{where}: '{op}' takes no value")
        return
    if field_type is FieldType.JSON:
        raise InvalidInput(f"{where}: json field '{name}' can only be filtered with exists/not_exists")
    if op in ORDER_OPS and field_type is FieldType.BOOLEAN:
        raise InvalidInput(f"{where}: boolean field '{name}' has no order")
    if op in TEXT_OPS:
        if field_type is not FieldType.STRING or not isinstance(value, str):
            raise InvalidInput(f"{where}: '{op}' needs a string field and a string value")
        if not value:
            # DynamoDB refuses an empty operand; and every string begins with, and contains, "".
            raise InvalidInput(
                f"{where}: '{op}' needs a non-empty string (leave the filter out to match all)"
            )
        return
    # The value is converted exactly as the query will convert it: NaN, Infinity, 1e999999 or a
    # 39-digit number would otherwise be accepted now and fail the job at DynamoDB later.
    convert = converter_for(dataset_field.model_copy(update={"constraints": None}))
    for item in _operands(op, value, where):
        _check_operand(item, name, field_type, convert, where)


def _check_operand(item: Any, name: str, field_type: FieldType, convert: Any, where: str) -> None:
    """Raise InvalidInput unless the operand converts as a stored value of the field would."""
    if isinstance(item, float) and not math.isfinite(item):
        # A text field would take it as the text "inf"; the job stores its filters, and DynamoDB
        # stores no such number.
        raise InvalidInput(f"{where}: {item!r} for '{name}' is not a finite number")
    try:
        parse_literal(field_type, item)
        convert(item)
    except CellError as unstorable:
        raise InvalidInput(f"{where}: {item!r} for '{name}' {unstorable}") from None
    except (ValueError, TypeError, InvalidOperation, OverflowError):
        raise InvalidInput(f"{where}: {item!r} is not a valid {field_type} for '{name}'") from None


def _operands(op: str, value: Any, where: str) -> list[Any]:
    """The values an operator compares with: two for between, 1 to 100 for in, else one."""
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise InvalidInput(f"{where}: 'between' takes a list of two values [low, high]")
        return value
    if op == "in":
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_IN_VALUES:
            raise InvalidInput(f"{where}: 'in' takes a list of 1 to {MAX_IN_VALUES} values")
        return value
    return [value]
