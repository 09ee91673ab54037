"""How typed values become text in exported files: formula neutralisation, plain text and JSON.

Values arrive typed (str, int, Decimal, bool, date, datetime, dict/list, None). Text values that a
spreadsheet would evaluate are neutralised in CSV and XLSX (OWASP ASVS 1.2.10) unless the export
turns that off; real numbers stay numbers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from impex.formats.columns import Column, ColumnKind

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\0")

Encoder = Callable[[Any], str]


def neutralize(text: str) -> str:
    """Prefix a quote to text a spreadsheet would run as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def plain_text(value: Any) -> str:
    """A non-text value as the text a CSV cell holds."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        try:
            text = value.astimezone(UTC).isoformat()
        except OverflowError:  # in UTC it falls before year 1 or after 9999: kept with its own offset
            return value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json_text(value)
    return str(value)


def csv_cell(value: Any, neutralize_formulas: bool) -> str:
    """A typed value as the text of a CSV cell (the exact rule; `csv_row_encoder` is its fast path)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return neutralize(value) if neutralize_formulas else value
    text = plain_text(value)
    if neutralize_formulas and isinstance(value, dict | list):
        return neutralize(text)
    return text


def _csv_of_text(neutralize_formulas: bool) -> Encoder:
    if not neutralize_formulas:
        return lambda value: value if value.__class__ is str else csv_cell(value, False)

    def encode(value: Any) -> str:
        if value.__class__ is str:
            return "'" + value if value.startswith(FORMULA_STARTS) else value
        return csv_cell(value, True)

    return encode


def _csv_of_integer(neutralize_formulas: bool) -> Encoder:
    return lambda value: str(value) if value.__class__ is int else csv_cell(value, neutralize_formulas)


def _csv_of_decimal(neutralize_formulas: bool) -> Encoder:
    return lambda value: (
        format(value, "f") if value.__class__ is Decimal else csv_cell(value, neutralize_formulas)
    )


def _csv_of_boolean(neutralize_formulas: bool) -> Encoder:
    def encode(value: Any) -> str:
        if value is True:
            return "true"
        if value is False:
            return "false"
        return csv_cell(value, neutralize_formulas)

    return encode


def _csv_of_moment(neutralize_formulas: bool) -> Encoder:
    def encode(value: Any) -> str:
        if value.__class__ is datetime and value.tzinfo is UTC:
            return value.isoformat()[:-6] + "Z"  # the common case, without plain_text's checks
        if value.__class__ is date:
            return value.isoformat()
        return csv_cell(value, neutralize_formulas)

    return encode


_CSV_BY_KIND: dict[ColumnKind, Callable[[bool], Encoder]] = {
    ColumnKind.STRING: _csv_of_text,
    ColumnKind.INTEGER: _csv_of_integer,
    ColumnKind.DECIMAL: _csv_of_decimal,
    ColumnKind.BOOLEAN: _csv_of_boolean,
    ColumnKind.DATE: _csv_of_moment,
    ColumnKind.DATETIME: _csv_of_moment,
}


def csv_cell_encoder(kind: ColumnKind, neutralize_formulas: bool) -> Encoder:
    """The CSV text of one column kind's (non-null) values: fast for the type the kind expects,
    `csv_cell` for any other value."""
    fast = _CSV_BY_KIND.get(kind)
    if fast is not None:
        return fast(neutralize_formulas)
    return lambda value: csv_cell(value, neutralize_formulas)


def csv_row_encoder(
    columns: Sequence[Column], neutralize_formulas: bool
) -> Callable[[Sequence[Any]], list[str]]:
    """Encode a row (values in column order) as CSV cell texts: one encoder per column, for the value
    its kind expects, and `csv_cell` for any other value (the per-row hot path)."""

    encoders = [csv_cell_encoder(c.kind, neutralize_formulas) for c in columns]

    def encode(row: Sequence[Any]) -> list[str]:
        return ["" if value is None else encoder(value) for encoder, value in zip(encoders, row, strict=True)]

    return encode


def json_text(value: Any) -> str:
    """JSON text in which decimals keep every digit (json.dumps would round them through float)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return str(int(value)) if value == value.to_integral_value() else format(value.normalize(), "f")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        pairs = (json.dumps(str(k), ensure_ascii=False) + ":" + json_text(v) for k, v in value.items())
        return "{" + ",".join(pairs) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(json_text(v) for v in value) + "]"
    return json.dumps(plain_text(value), ensure_ascii=False)


_encode_text = json.encoder.encode_basestring


def _json_of_text(value: Any) -> str:
    return _encode_text(value) if isinstance(value, str) else json_text(value)


def _json_of_integer(value: Any) -> str:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else json_text(value)


def _json_of_boolean(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else json_text(value)


def _json_of_moment(value: Any) -> str:
    if value.__class__ is datetime and value.tzinfo is UTC:
        return '"' + value.isoformat()[:-6] + 'Z"'  # the common case, without plain_text's checks
    return '"' + plain_text(value) + '"' if isinstance(value, date) else json_text(value)


def _json_of_decimal(value: Any) -> str:
    if value.__class__ is Decimal:
        digits = str(value)
        # Already what json_text would make of it: no exponent, no trailing zeros after a point, not -0.
        if "E" not in digits and not ("." in digits and digits[-1] == "0") and digits != "-0":
            return digits
    return json_text(value)


_JSON_BY_KIND: dict[ColumnKind, Encoder] = {
    ColumnKind.STRING: _json_of_text,
    ColumnKind.INTEGER: _json_of_integer,
    ColumnKind.DECIMAL: _json_of_decimal,
    ColumnKind.BOOLEAN: _json_of_boolean,
    ColumnKind.DATE: _json_of_moment,
    ColumnKind.DATETIME: _json_of_moment,
}


def json_value_encoder(kind: ColumnKind) -> Encoder:
    """The JSON text of one column kind's (non-null) values: fast for the type the kind expects."""
    return _JSON_BY_KIND.get(kind, json_text)


def object_encoder(columns: Sequence[Column]) -> Callable[[Sequence[Any]], str]:
    """Encode a row (values in column order) as a JSON object, leaving out nulls: the per-row hot path."""
    plan = [(_encode_text(c.name) + ":", json_value_encoder(c.kind)) for c in columns]

    def encode(row: Sequence[Any]) -> str:
        pairs = [
            key + encoder(value) for (key, encoder), value in zip(plan, row, strict=True) if value is not None
        ]
        return "{" + ",".join(pairs) + "}"

    return encode
