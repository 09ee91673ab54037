"""Stored items back to typed rows: the export's per-cell hot path.

`typed_value` is the exact rule for one attribute. `row_decoder` compiles a dataset's fields into
one decoder per field that handles the shape impex itself stores for that field type (an "S" for
text and dates, an "N" for numbers, a "BOOL") in a line or two, and hands anything else (an item
written by another app, a number with a fraction in an integer field) to `typed_value`. The two
give identical values on every input: tests/unit/test_export_fast_path.py compares them on
generated attributes of every kind for every field type.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from impex.aws.attributes import from_attribute
from impex.datasets.model import DatasetField, FieldType

Attribute = dict[str, Any]
Decoder = Callable[[Attribute | None], Any]


def typed_value(attribute: Attribute | None, field_type: FieldType) -> Any:
    """A stored attribute back as its field's type (dates and datetimes are stored as ISO text)."""
    if attribute is None:
        return None
    value = from_attribute(attribute)
    try:
        if field_type is FieldType.INTEGER and isinstance(value, Decimal):
            return int(value)
        if field_type is FieldType.DATE and isinstance(value, str):
            return date.fromisoformat(value)
        if field_type is FieldType.DATETIME and isinstance(value, str):
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value  # an item written by another app: keep what is there
    return value


class _NotOwnShape(Exception):
    """The value is not in the shape impex stores for the field: decode it the exact way."""


def _integer_of(digits: str) -> int:
    # Plain ASCII digits (with a minus) mean the same to int() as to Decimal(); anything else (a
    # fraction, an exponent, a plus, spaces, underscores) goes the exact way.
    if digits.isascii() and (digits.isdigit() or (digits[:1] == "-" and digits[1:].isdigit())):
        return int(digits)
    raise _NotOwnShape


def _date_of(text: str) -> date | str:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return text  # as the exact rule keeps it


def _datetime_of(text: str) -> datetime | str:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text


# For each field type: the attribute kind impex stores it as, and how that value becomes the type.
_OWN_SHAPES: dict[FieldType, tuple[str, Callable[[Any], Any] | None]] = {
    FieldType.STRING: ("S", None),
    FieldType.INTEGER: ("N", _integer_of),
    FieldType.DECIMAL: ("N", Decimal),
    FieldType.BOOLEAN: ("BOOL", None),
    FieldType.DATE: ("S", _date_of),
    FieldType.DATETIME: ("S", _datetime_of),
}


def field_decoder(field_type: FieldType) -> Decoder:
    """The decoder of one field type's attributes: fast for impex's own shape, exact for the rest."""
    shape = _OWN_SHAPES.get(field_type)
    if shape is None:
        return lambda attribute: typed_value(attribute, field_type)
    kind, convert = shape

    def decode(attribute: Attribute | None) -> Any:
        if attribute is not None and len(attribute) == 1:
            value = attribute.get(kind)
            if value is not None:
                if convert is None:
                    return value
                try:
                    return convert(value)
                except _NotOwnShape:
                    pass
        return typed_value(attribute, field_type)

    return decode


def row_decoder(fields: Sequence[DatasetField]) -> Callable[[dict[str, Attribute]], list[Any]]:
    """Decode a stored item into its fields' typed values, in field order."""
    plan = [(f.name, field_decoder(f.type)) for f in fields]

    def decode(item: dict[str, Attribute]) -> list[Any]:
        get = item.get
        return [decoder(get(name)) for name, decoder in plan]

    return decode
