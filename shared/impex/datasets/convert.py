"""Typed conversion of cell values to a dataset's field types, with the fields' constraints checked.

This is the per-row hot path: each field gets one compiled converter up front, and a row is a list
comprehension over them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from impex.datasets.model import DatasetField, FieldType, parse_literal
from impex.datasets.patterns import compile_pattern

TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "on", "x", "✓"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "off"})
_INTEGER = re.compile(r"^[+-]?\d+$")
_GROUPED_INTEGER = re.compile(r"^[+-]?\d{1,3}(,\d{3})+$")
_DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%d.%m.%Y",
    "%d %b %Y",
    "%d %B %Y",
    "%b %d, %Y",
    "%B %d, %Y",
    "%Y%m%d",
)
_SLASHED = re.compile(r"^(\d{1,2})[/-](\d{1,2})[/-](\d{4})$")
_DATETIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
)
# DynamoDB numbers: up to 38 significant digits, magnitude 1E-130 to 9.99E+125.
_MAX_DIGITS = 38
_INTEGER_LIMIT = 10**_MAX_DIGITS
# Longer text is never a number DynamoDB stores (and parsing it would cost time for nothing).
_MAX_NUMBER_TEXT = 200
# DynamoDB nests maps and lists at most 32 levels deep.
MAX_NESTING = 32


class CellError(ValueError):
    """A value that does not fit its field; the message is shown to a person."""


Converter = Callable[[Any], Any]


def converter_for(field: DatasetField, *, day_first: bool | None = None) -> Converter:
    """A function turning one non-empty cell into the field's type, or raising CellError."""
    base = (
        _BASE[field.type](day_first)
        if field.type in (FieldType.DATE, FieldType.DATETIME)
        else _BASE[field.type]
    )
    checks = _constraint_checks(field)
    if not checks:
        return base  # type: ignore[no-any-return]

    def convert(value: Any) -> Any:
        converted = base(value)
        for check in checks:
            check(converted)
        return converted

    return convert


def to_string(value: Any) -> str:
    """Text as a person would type it: 3, not 3.0; ISO dates; JSON for objects."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def to_integer(value: Any) -> int:
    if isinstance(value, bool):
        raise CellError("is a boolean, not an integer")
    if isinstance(value, int):
        return _storable_integer(value)
    if isinstance(value, float):
        if value.is_integer():
            return _storable_integer(int(value))
        raise CellError("is not a whole number")
    if isinstance(value, Decimal):
        if value.is_finite() and value == value.to_integral_value():
            return _storable_integer(int(value))
        raise CellError("is not a whole number")
    text = str(value).strip()
    if len(text) > _MAX_NUMBER_TEXT:
        raise CellError(f"has more than {_MAX_DIGITS} digits, more than DynamoDB can store")
    if _INTEGER.match(text):
        return _storable_integer(int(text))
    if _GROUPED_INTEGER.match(text):
        return _storable_integer(int(text.replace(",", "")))
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise CellError("is not an integer") from None
    if number.is_finite() and number == number.to_integral_value():
        return _storable_integer(int(_storable(number)))
    raise CellError("is not a whole number")


def _storable_integer(number: int) -> int:
    """The integer, if DynamoDB can store it (at most 38 digits)."""
    if -_INTEGER_LIMIT < number < _INTEGER_LIMIT:
        return number
    raise CellError(f"has more than {_MAX_DIGITS} digits, more than DynamoDB can store")


def to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise CellError("is a boolean, not a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CellError("is not a finite number")
        if value == 0 or 1e-129 < abs(value) < 1e125:
            return Decimal(repr(value))  # ≤ 17 significant digits, in range: nothing more to check
        number = Decimal(repr(value))
    elif isinstance(value, int | Decimal):
        number = Decimal(value)
    else:
        text = str(value).strip()
        if len(text) > _MAX_NUMBER_TEXT:
            raise CellError(f"has more than {_MAX_DIGITS} digits, more than DynamoDB can store")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise CellError("is not a number") from None
        if len(text) <= _MAX_DIGITS and number.is_finite() and "e" not in text and "E" not in text:
            return number  # ≤ 38 characters without an exponent: always within DynamoDB's range
    return _storable(number)


def _storable(number: Decimal) -> Decimal:
    """The number, if DynamoDB can store it: finite, ≤ 38 significant digits, magnitude 1E-130 to 1E+125."""
    if not number.is_finite():
        raise CellError("is not a finite number")
    significant = "".join(map(str, number.as_tuple().digits)).strip("0")
    if len(significant) > _MAX_DIGITS or (number and not -130 <= number.adjusted() <= 125):
        raise CellError("is outside the range DynamoDB can store (38 digits, 1E-130 to 1E+125)")
    return number


def to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise CellError("is not a boolean (use true/false, yes/no or 1/0)")


def _date_parser(day_first: bool | None) -> Converter:
    def to_date(value: Any) -> date:
        if isinstance(value, datetime):
            if value.time() != time(0):
                raise CellError("has a time of day; the field is a date")
            return value.date()
        if isinstance(value, date):
            return value
        text = str(value).strip()
        if len(text) == 10 and text[4] == "-":
            try:
                return date.fromisoformat(text)  # the common case, without strptime
            except ValueError:
                pass
        match = _SLASHED.match(text)
        if match:
            return _slashed_date(match, day_first)
        for pattern in _DATE_FORMATS:
            try:
                return datetime.strptime(text, pattern).date()
            except ValueError:
                continue
        raise CellError("is not a date (use YYYY-MM-DD)")

    return to_date


def _slashed_date(match: re.Match[str], day_first: bool | None) -> date:
    """03/04/2024: day or month first as the option says; ambiguous without it unless one part is > 12."""
    first, second, year = (int(part) for part in match.groups())
    if day_first is None and first <= 12 and second <= 12 and first != second:
        raise CellError("is an ambiguous date (day/month or month/day?); use YYYY-MM-DD or set dayFirst")
    day, month = (first, second) if day_first or (day_first is None and first > 12) else (second, first)
    try:
        return date(year, month, day)
    except ValueError:
        raise CellError("is not a valid date") from None


def _datetime_parser(day_first: bool | None) -> Converter:
    date_parser = _date_parser(day_first)

    def to_datetime(value: Any) -> datetime:
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, date):
            moment = datetime.combine(value, time(0))
        else:
            text = str(value).strip()
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError:
                for pattern in _DATETIME_FORMATS:
                    try:
                        moment = datetime.strptime(text, pattern)
                        break
                    except ValueError:
                        continue
                else:
                    try:
                        moment = datetime.combine(date_parser(text), time(0))
                    except CellError:
                        raise CellError(
                            "is not a date and time (use ISO 8601, e.g. 2024-05-01T13:00:00Z)"
                        ) from None
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        try:
            return moment.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
            raise CellError("is outside the range of dates (years 1 to 9999 in UTC)") from None

    return to_datetime


def to_json(value: Any) -> Any:
    if isinstance(value, dict | list | bool | int | float) or value is None:
        return _json_value(value, 0)
    try:
        parsed = json.loads(str(value))
    except RecursionError:
        raise CellError(f"is nested more than {MAX_NESTING} levels deep, more than DynamoDB allows") from None
    except ValueError:  # not JSON, or an integer longer than Python converts
        raise CellError("is not valid JSON") from None
    return _json_value(parsed, 0)


def _json_value(value: Any, depth: int) -> Any:
    """A JSON value as DynamoDB stores it: numbers exact as Decimals (DynamoDB has no floats) and in
    its range, maps and lists at most 32 levels deep."""
    if isinstance(value, dict | list):
        if depth >= MAX_NESTING:
            raise CellError(f"is nested more than {MAX_NESTING} levels deep, more than DynamoDB allows")
        if isinstance(value, dict):
            return {str(k): _json_value(v, depth + 1) for k, v in value.items()}
        return [_json_value(v, depth + 1) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CellError("holds a number JSON cannot represent")
        return _storable(Decimal(repr(value)))
    if isinstance(value, int):
        return _storable_integer(value)
    return value


_BASE: dict[FieldType, Any] = {
    FieldType.STRING: to_string,
    FieldType.INTEGER: to_integer,
    FieldType.DECIMAL: to_decimal,
    FieldType.BOOLEAN: to_boolean,
    FieldType.DATE: _date_parser,
    FieldType.DATETIME: _datetime_parser,
    FieldType.JSON: to_json,
}


def _constraint_checks(field: DatasetField) -> list[Callable[[Any], None]]:
    rules = field.constraints
    if rules is None:
        return []
    checks: list[Callable[[Any], None]] = []
    if rules.max_length is not None:
        limit = rules.max_length

        def max_length(value: Any) -> None:
            if len(value) > limit:
                raise CellError(f"is longer than {limit} characters")

        checks.append(max_length)
    if rules.pattern is not None:
        compiled = compile_pattern(rules.pattern)

        def pattern(value: Any) -> None:
            if not compiled.fullmatch(value):
                raise CellError(f"does not match the pattern {compiled.pattern}")

        checks.append(pattern)
    comparable = _comparable_value(field.type)
    if rules.min is not None:
        low = comparable(parse_literal(field.type, rules.min))

        def minimum(value: Any) -> None:
            if comparable(value) < low:
                raise CellError(f"is below the minimum {rules.min}")

        checks.append(minimum)
    if rules.max is not None:
        high = comparable(parse_literal(field.type, rules.max))

        def maximum(value: Any) -> None:
            if comparable(value) > high:
                raise CellError(f"is above the maximum {rules.max}")

        checks.append(maximum)
    if rules.enum is not None:
        allowed = {parse_literal(field.type, item) for item in rules.enum}
        shown = ", ".join(str(item) for item in rules.enum[:10])

        def one_of(value: Any) -> None:
            if value not in allowed:
                raise CellError(f"is not one of: {shown}")

        checks.append(one_of)
    return checks


def _comparable_value(field_type: FieldType) -> Callable[[Any], Any]:
    if field_type is FieldType.DECIMAL:
        return lambda value: Decimal(value)
    return lambda value: value
