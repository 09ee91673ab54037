"""Stored items back to typed rows (and straight to CSV text): the export's per-cell hot path.

`typed_value` is the exact rule for one attribute. `row_decoder` compiles a dataset's fields into
one decoder per field that handles the shape impex itself stores for that field type (an "S" for
text and dates, an "N" for numbers, a "BOOL") in a line or two, and hands anything else (an item
written by another app, a number with a fraction in an integer field) to `typed_value`. The two
give identical values on every input: tests/unit/test_export_fast_path.py compares them on
generated attributes of every kind for every field type.

`csv_text_decoder` goes one step further for CSV, whose cells are text anyway: an attribute in the
canonical form impex writes (a plain number, an ISO date, a UTC datetime with a Z) already is its
cell's text, so it is used as it is, without the typed value in between; anything else goes through
`row_decoder`'s field decoder and the CSV encoder. `json_object_decoder` does the same for JSON
Lines and JSON objects. The same tests compare both with decoding then encoding.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any, TypeVar

from impex.aws.attributes import from_attribute
from impex.datasets.model import DatasetField, FieldType
from impex.formats.columns import ColumnKind
from impex.formats.values import FORMULA_STARTS, csv_cell_encoder, json_value_encoder

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


# The canonical forms impex stores, whose CSV text is the stored text itself ([0-9], not \d: ASCII;
# fixed patterns without nested repetition, linear in Python's re).
_SIX_DIGITS_NOT_ALL_ZERO = (
    r"(?:[1-9][0-9]{5}|0[1-9][0-9]{4}|00[1-9][0-9]{3}|000[1-9][0-9]{2}|0000[1-9][0-9]|00000[1-9])"
)
_ISO_DAY = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_CANONICAL: dict[FieldType, tuple[str, re.Pattern[str]]] = {
    FieldType.INTEGER: ("N", re.compile(r"0|-?[1-9][0-9]*")),
    FieldType.DECIMAL: ("N", re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")),
    FieldType.DATE: ("S", re.compile(_ISO_DAY)),
    # A datetime prints its fraction as six digits, and none when it is zero.
    FieldType.DATETIME: (
        "S",
        re.compile(_ISO_DAY + r"T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\." + _SIX_DIGITS_NOT_ALL_ZERO + ")?Z"),
    ),
}


Text = TypeVar("Text", str, str | None)


def _boolean_text(exact: Callable[[Attribute | None], Text]) -> Callable[[Attribute | None], Text]:
    """true / false, in CSV as in JSON, for a stored BOOL; the exact way for anything else."""

    def flag(attribute: Attribute | None) -> Text:
        if attribute is not None and len(attribute) == 1:
            value = attribute.get("BOOL")
            if value is True:
                return "true"
            if value is False:
                return "false"
        return exact(attribute)

    return flag


def _csv_text(field_type: FieldType, neutralize_formulas: bool) -> Callable[[Attribute | None], str]:
    decode = field_decoder(field_type)
    encode = csv_cell_encoder(ColumnKind(field_type.value), neutralize_formulas)

    def exact(attribute: Attribute | None) -> str:
        value = decode(attribute)
        return "" if value is None else encode(value)

    if field_type is FieldType.STRING:

        def text(attribute: Attribute | None) -> str:
            if attribute is not None and len(attribute) == 1:
                value: str | None = attribute.get("S")
                if value is not None:
                    if neutralize_formulas and value.startswith(FORMULA_STARTS):
                        return "'" + value
                    return value
            return exact(attribute)

        return text
    if field_type is FieldType.BOOLEAN:
        return _boolean_text(exact)
    canonical = _CANONICAL.get(field_type)
    if canonical is None:
        return exact
    kind, pattern = canonical

    def stored_text(attribute: Attribute | None) -> str:
        if attribute is not None and len(attribute) == 1:
            value: str | None = attribute.get(kind)
            if value is not None and pattern.fullmatch(value):
                return value
        return exact(attribute)

    return stored_text


def csv_text_decoder(
    fields: Sequence[DatasetField], neutralize_formulas: bool
) -> Callable[[dict[str, Attribute]], list[str]]:
    """Decode a stored item straight into its CSV cells' text, in field order."""
    plan = [(f.name, _csv_text(f.type, neutralize_formulas)) for f in fields]

    def decode(item: dict[str, Attribute]) -> list[str]:
        get = item.get
        return [cell(get(name)) for name, cell in plan]

    return decode


# A decimal whose str() is its JSON text as json_text writes it: no exponent (str() uses one below
# 1e-6), no trailing zero after the point, not -0 (checked apart).
_JSON_DECIMAL = re.compile(r"-?(?:[1-9][0-9]*(?:\.[0-9]*[1-9])?|0(?:\.(?!0{6})[0-9]*[1-9])?)")


def _json_text(field_type: FieldType) -> Callable[[Attribute | None], str | None]:
    decode = field_decoder(field_type)
    encode = json_value_encoder(ColumnKind(field_type.value))

    def exact(attribute: Attribute | None) -> str | None:
        value = decode(attribute)
        return None if value is None else encode(value)

    if field_type is FieldType.STRING:

        def text(attribute: Attribute | None) -> str | None:
            if attribute is not None and len(attribute) == 1:
                value: str | None = attribute.get("S")
                if value is not None:
                    return encode_basestring(value)
            return exact(attribute)

        return text
    if field_type is FieldType.BOOLEAN:
        return _boolean_text(exact)
    if field_type not in _CANONICAL:
        return exact
    kind, pattern = _CANONICAL[field_type]
    if field_type is FieldType.DECIMAL:
        pattern = _JSON_DECIMAL
    quoted = kind == "S"  # dates and datetimes are JSON strings

    def stored_text(attribute: Attribute | None) -> str | None:
        if attribute is not None and len(attribute) == 1:
            value: str | None = attribute.get(kind)
            if value is not None and value != "-0" and pattern.fullmatch(value):
                return '"' + value + '"' if quoted else value
        return exact(attribute)

    return stored_text


def json_object_decoder(fields: Sequence[DatasetField]) -> Callable[[dict[str, Attribute]], str]:
    """Decode a stored item straight into its JSON object's text (nulls left out), in field order."""
    plan = [(f.name, encode_basestring(f.name) + ":", _json_text(f.type)) for f in fields]

    def decode(item: dict[str, Attribute]) -> str:
        get = item.get
        pairs = [(key, value(get(name))) for name, key, value in plan]
        return "{" + ",".join([key + text for key, text in pairs if text is not None]) + "}"

    return decode
