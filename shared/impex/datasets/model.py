"""Dataset definitions: a tenant's named, typed collection of records and where its records live."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from impex.datasets.patterns import compile_pattern

DATASET_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
# Attribute names impex itself uses on records in the RecordsTable.
RESERVED_FIELD_NAMES = frozenset({"pk", "sk"})
MAX_FIELDS = 500
# Record partitions a dataset may spread over: 1,000 writes/s each, so 100 is 100k writes/s, past
# the on-demand table default of 40k.
MAX_SHARDS = 100


class FieldType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    JSON = "json"


NUMERIC_TYPES = frozenset({FieldType.INTEGER, FieldType.DECIMAL})
ORDERED_TYPES = NUMERIC_TYPES | {FieldType.DATE, FieldType.DATETIME}
KEY_TYPES = frozenset({FieldType.STRING, FieldType.INTEGER, FieldType.DECIMAL, FieldType.DATE})


class _Strict(BaseModel):
    # No infinities or NaN (JSON bodies may carry 1e999, NaN or Infinity): DynamoDB cannot store them,
    # and a bound or an enum value of one would only fail later, at the write.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", allow_inf_nan=False, defer_build=True
    )


class Constraints(_Strict):
    """Optional rules a value must follow besides its type."""

    enum: list[str | int | float | bool] | None = Field(default=None, min_length=1, max_length=1000)
    min: str | int | float | None = None
    max: str | int | float | None = None
    pattern: str | None = Field(default=None, max_length=1000)
    max_length: int | None = Field(default=None, ge=1, le=400_000)


class DatasetField(_Strict):
    """One typed field of a dataset."""

    name: str
    type: FieldType
    required: bool = False
    aliases: list[str] = Field(default_factory=list, max_length=50)
    constraints: Constraints | None = None
    default: Any = None

    @field_validator("name")
    @classmethod
    def _name_is_usable(cls, name: str) -> str:
        if not FIELD_NAME.fullmatch(name):
            raise ValueError("a field name starts with a letter and has only letters, digits and _ (≤ 64)")
        if name in RESERVED_FIELD_NAMES:
            raise ValueError(f"'{name}' is reserved by impex")
        return name

    @model_validator(mode="after")
    def _constraints_fit_type(self) -> DatasetField:
        if self.default is not None and self.type is not FieldType.JSON:
            _check_literal(self.type, self.default, "default")
        if self.constraints is not None:
            _check_constraints(self.type, self.constraints)
        return self


def _check_constraints(field_type: FieldType, rules: Constraints) -> None:
    """Constraints must fit the field's type, and their values must be values of that type."""
    if (rules.min is not None or rules.max is not None) and field_type not in ORDERED_TYPES:
        raise ValueError(f"min/max apply to integer, decimal, date and datetime fields, not {field_type}")
    if (rules.pattern is not None or rules.max_length is not None) and field_type is not FieldType.STRING:
        raise ValueError(f"pattern and maxLength apply to string fields, not {field_type}")
    if rules.pattern is not None:
        _check_pattern(rules.pattern)
    _check_bounds(field_type, rules)
    for value in rules.enum or []:
        _check_literal(field_type, value, "enum")


class DatasetTarget(_Strict):
    """An existing DynamoDB table (named in the deployment's allow-list) that holds the records."""

    table: str = Field(min_length=3, max_length=255)


class DatasetDefinition(_Strict):
    """What a client sends to create or replace a dataset."""

    fields: list[DatasetField] = Field(min_length=1, max_length=MAX_FIELDS)
    keys: list[str] = Field(default_factory=list, max_length=2)
    target: DatasetTarget | None = None
    description: str | None = Field(default=None, max_length=1000)
    # Record partitions of impex's own table (write sharding); None: the deployment's default.
    shards: int | None = Field(default=None, ge=1, le=MAX_SHARDS)

    @model_validator(mode="after")
    def _fields_and_keys_agree(self) -> DatasetDefinition:
        seen: set[str] = set()
        for dataset_field in self.fields:
            if dataset_field.name in seen:
                raise ValueError(f"field '{dataset_field.name}' is declared twice")
            seen.add(dataset_field.name)
        by_name = {f.name: f for f in self.fields}
        if len(set(self.keys)) != len(self.keys):
            raise ValueError("a key field is listed twice")
        for key in self.keys:
            key_field = by_name.get(key)
            if key_field is None:
                raise ValueError(f"key '{key}' is not one of the fields")
            if key_field.type not in KEY_TYPES:
                raise ValueError(
                    f"key '{key}' is {key_field.type}; keys are string, integer, decimal or date"
                )
            if not key_field.required:
                raise ValueError(f"key '{key}' must be required")
        if self.target is not None and (self.shards or 1) > 1:
            raise ValueError("an allow-listed table keeps its own key design: it cannot be sharded")
        return self


class Dataset(DatasetDefinition):
    """A stored dataset: its definition plus its owner, name and timestamps."""

    tenant: str
    name: str
    created_at: str
    updated_at: str

    @property
    def shard_count(self) -> int:
        """How many record partitions it has (a dataset stored before sharding has one)."""
        return self.shards or 1

    def field(self, name: str) -> DatasetField | None:
        """The field with this name, or None."""
        return next((f for f in self.fields if f.name == name), None)

    @property
    def field_names(self) -> list[str]:
        """Field names in schema order."""
        return [f.name for f in self.fields]


def _check_bounds(field_type: FieldType, rules: Constraints) -> None:
    for bound in (rules.min, rules.max):
        if bound is not None:
            _check_literal(field_type, bound, "min/max")
    if rules.min is not None and rules.max is not None:
        low, high = (_comparable(field_type, v) for v in (rules.min, rules.max))
        if low > high:
            raise ValueError("min is greater than max")


def _check_pattern(pattern: str) -> None:
    compile_pattern(pattern)  # raises ValueError saying why RE2 cannot run it


def _check_literal(field_type: FieldType, value: Any, what: str) -> None:
    try:
        parse_literal(field_type, value)
    except (ValueError, TypeError, InvalidOperation):
        raise ValueError(f"{what} value {value!r} is not a valid {field_type}") from None


def _comparable(field_type: FieldType, value: Any) -> Any:
    return parse_literal(field_type, value)


def parse_literal(field_type: FieldType, value: Any) -> Any:
    """Parse a JSON literal (a constraint bound, a filter value) as a value of ``field_type``."""
    if field_type is FieldType.INTEGER:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(value)
        return int(value)
    if field_type is FieldType.DECIMAL:
        if isinstance(value, bool):
            raise ValueError(value)
        return Decimal(str(value))
    if field_type is FieldType.DATE:
        return date.fromisoformat(str(value))
    if field_type is FieldType.DATETIME:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if field_type is FieldType.BOOLEAN:
        if not isinstance(value, bool):
            raise ValueError(value)
        return value
    if field_type is FieldType.STRING:
        if not isinstance(value, str):
            raise ValueError(value)
        return value
    return value
