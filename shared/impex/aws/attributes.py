"""DynamoDB's low-level attribute values (its JSON shape) to and from plain Python, and item sizes.

Record traffic goes through the low-level client (and the lean HTTP client), so records are built
as attribute values here, without boto3's serializer.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

MAX_ITEM_BYTES = 400 * 1024


def to_attribute(value: Any) -> dict[str, Any]:
    """A Python value as a DynamoDB attribute value (datetimes as ISO 8601 UTC text with a Z)."""
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | Decimal):
        return {"N": str(value)}
    if isinstance(value, float):
        return {"N": repr(value)}
    if isinstance(value, datetime):
        return {"S": iso_datetime(value)}
    if isinstance(value, date):
        return {"S": value.isoformat()}
    if isinstance(value, dict):
        return {"M": {str(k): to_attribute(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_attribute(v) for v in value]}
    if value is None:
        return {"NULL": True}
    raise TypeError(f"cannot store {type(value).__name__}")


def from_attribute(attribute: dict[str, Any]) -> Any:
    """A low-level DynamoDB attribute value as plain Python (numbers as Decimal)."""
    ((kind, value),) = attribute.items()
    if kind == "S":
        return value
    if kind == "N":
        return Decimal(value)
    if kind == "BOOL":
        return value
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: from_attribute(v) for k, v in value.items()}
    if kind == "L":
        return [from_attribute(v) for v in value]
    if kind in ("SS", "BS"):
        return sorted(value)
    if kind == "NS":
        return sorted(Decimal(v) for v in value)
    return value


def iso_datetime(moment: datetime) -> str:
    """Datetimes are stored as ISO 8601 UTC text with a Z, which sorts and filters as text."""
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def item_size(item: dict[str, Any]) -> int:
    """An upper estimate of an item's stored size (names plus values), to refuse items over 400 KB."""
    total = 0
    for name, value in item.items():
        total += len(name) + _value_size(value)
    return total


def _value_size(attribute: dict[str, Any]) -> int:
    ((kind, value),) = attribute.items()
    if kind in ("S", "N"):
        return len(value.encode()) if kind == "S" else len(value)
    if kind == "M":
        return 3 + sum(len(k) + _value_size(v) for k, v in value.items())
    if kind == "L":
        return 3 + sum(_value_size(v) for v in value)
    return 1
