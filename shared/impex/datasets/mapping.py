"""Match a file's headers to a dataset's fields, then turn each row into a typed record."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from impex.datasets.convert import CellError, Converter, converter_for, to_string
from impex.datasets.model import Dataset
from impex.formats.errors import FileProblem

_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def normalize_header(text: str) -> str:
    """Compare headers loosely: case, spaces, underscores, punctuation and accents do not matter."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NOT_ALNUM.sub("", plain.casefold())


@dataclass(frozen=True)
class ColumnMapping:
    """For each column of the file, the field it feeds (or None), plus what was left over."""

    fields: list[str | None]
    used: dict[str, str]
    unknown_columns: list[str]


def map_columns(header: list[str], dataset: Dataset, explicit: dict[str, str] | None = None) -> ColumnMapping:
    """Explicit mapping first, then names and aliases, compared loosely. Missing required fields fail."""
    explicit = explicit or {}
    _check_explicit(header, explicit)
    by_alias = _fields_by_alias(dataset)
    fields: list[str | None] = []
    # Explicitly mapped fields are claimed first, so a loosely matching header cannot take them.
    taken: set[str] = set()
    reserved = set(explicit.values())
    used: dict[str, str] = {}
    unknown: list[str] = []
    for position, column in enumerate(header):
        if column in explicit:
            target: str | None = explicit[column]
        else:
            target = by_alias.get(normalize_header(column))
            target = None if target in reserved else target
        if target is None or target in taken:
            fields.append(None)
            unknown.append(column or f"(column {position + 1} has no header)")
            continue
        taken.add(target)
        used[column] = target
        fields.append(target)
    if not used:
        raise FileProblem(
            f"none of the file's columns ({', '.join(header) or 'none'}) matches a field of dataset "
            f"'{dataset.name}' ({', '.join(dataset.field_names)}); rename the headers or give a mapping"
        )
    missing = [f.name for f in dataset.fields if f.required and f.name not in taken]
    if missing:
        raise FileProblem(
            f"the file has no column for required fields: {', '.join(missing)} "
            f"(its columns: {', '.join(header) or 'none'}); add them or give a mapping"
        )
    return ColumnMapping(fields=fields, used=used, unknown_columns=unknown)


def _check_explicit(header: list[str], explicit: dict[str, str]) -> None:
    missing_in_file = [column for column in explicit if column not in header]
    if missing_in_file:
        raise FileProblem(
            f"the mapping names columns the file does not have: {', '.join(missing_in_file)} "
            f"(the file's columns: {', '.join(header)})"
        )


def _fields_by_alias(dataset: Dataset) -> dict[str, str]:
    """Each field's name and aliases, normalised, to the field (the first field wins a shared alias)."""
    by_alias: dict[str, str] = {}
    for dataset_field in dataset.fields:
        for name in (dataset_field.name, *dataset_field.aliases):
            by_alias.setdefault(normalize_header(name), dataset_field.name)
    return by_alias


@dataclass(frozen=True)
class CellIssue:
    """Why one value of one row was refused."""

    column: str
    value: str
    message: str


@dataclass
class RowConverter:
    """Converts the cells of a row (in file column order) into a record of typed field values."""

    dataset: Dataset
    header: list[str]
    mapping: ColumnMapping
    day_first: bool | None = None
    max_cell_chars: int = 32_767
    _plan: list[tuple[int, str, Converter]] = field(init=False)
    _defaults: dict[str, Any] = field(init=False)
    _required: list[str] = field(init=False)
    _required_names: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        self._plan = []
        for position, name in enumerate(self.mapping.fields):
            if name is not None:
                dataset_field = self.dataset.field(name)
                assert dataset_field is not None
                self._plan.append((position, name, converter_for(dataset_field, day_first=self.day_first)))
        self._defaults = {
            f.name: converter_for(f)(f.default) for f in self.dataset.fields if f.default is not None
        }
        self._required = [f.name for f in self.dataset.fields if f.required]
        self._required_names = frozenset(self._required)
        self._column_of = {name: self.header[position] for position, name, _ in self._plan}

    @property
    def fields(self) -> list[tuple[int, str]]:
        """The mapped fields, in file column order: (column position, field name)."""
        return [(position, name) for position, name, _ in self._plan]

    @property
    def defaults(self) -> dict[str, Any]:
        """The fields' defaults, converted: what a record gets for a field left blank or unmapped."""
        return self._defaults

    def converter(self, name: str) -> Converter:
        """The converter (constraints included) of field ``name``."""
        return next(convert for _, field_name, convert in self._plan if field_name == name)

    def convert(self, cells: list[Any]) -> tuple[dict[str, Any], list[CellIssue]]:
        """The typed record and any issues; a row with issues must not be written."""
        issues: list[CellIssue] = []
        if len(cells) != len(self.header):
            issues.append(
                CellIssue(
                    "", "", f"the row has {len(cells)} values but the header has {len(self.header)} columns"
                )
            )
            return {}, issues
        record: dict[str, Any] = {}
        refused: set[str] | None = None  # made only for a row with a refused value (the hot path has none)
        for position, name, converter in self._plan:
            value = cells[position]
            if value is None or (value.__class__ is str and (not value or value.isspace())):
                continue
            try:
                if value.__class__ is str and len(value) > self.max_cell_chars:
                    raise CellError(f"is longer than {self.max_cell_chars} characters")
                record[name] = converter(value)
            except Exception as error:  # whatever goes wrong with one cell is that row's error
                issues.append(
                    CellIssue(self.header[position], _shown(value), f"{name} {cell_problem(error)}")
                )
                refused = refused or set()
                refused.add(name)
        for name, default in self._defaults.items():
            if name not in record:
                record[name] = default
        if not record.keys() >= self._required_names:
            issues += self._missing_required(record, refused or set())
        return record, issues

    def key_reader(self, keys: list[str]) -> Callable[[list[Any]], dict[str, Any] | None]:
        """A function giving a row's key field values exactly as ``convert`` makes them, converting
        nothing else; it returns None when ``convert`` would refuse the row for a key (a missing or
        unreadable value, a ragged row)."""
        wanted = set(keys)
        plan = [step for step in self._plan if step[1] in wanted]
        defaults = {name: self._defaults[name] for name in keys if name in self._defaults}
        width, longest = len(self.header), self.max_cell_chars

        def read(cells: list[Any]) -> dict[str, Any] | None:
            if len(cells) != width:
                return None
            values: dict[str, Any] = {}
            for position, name, converter in plan:
                value = cells[position]
                if value is None or (value.__class__ is str and (not value or value.isspace())):
                    continue
                if value.__class__ is str and len(value) > longest:
                    return None
                try:
                    values[name] = converter(value)
                except Exception:
                    return None
            for name in keys:
                if name not in values:
                    if name not in defaults:
                        return None
                    values[name] = defaults[name]
            return values

        return read

    def _missing_required(self, record: dict[str, Any], refused: set[str]) -> list[CellIssue]:
        """Required fields the row leaves empty (a refused value is its field's one error already)."""
        return [
            CellIssue(self._column_of[name], "", f"{name} is required")
            for name in self._required
            if name not in record and name in self._column_of and name not in refused
        ]


def cell_problem(error: Exception) -> str:
    """What is wrong with a value, for a person: the converter's own words, or what Python refused."""
    if isinstance(error, CellError):
        return str(error)
    if isinstance(error, RecursionError):
        return "is nested too deeply to read"
    if isinstance(error, OverflowError):
        return "is out of range"
    return f"could not be read ({type(error).__name__}: {str(error)[:100]})"


def _shown(value: Any) -> str:
    """The start of a value, for a row error (never the whole of a huge cell)."""
    try:
        return to_string(value)[:200]
    except Exception:  # e.g. an integer too long to print
        return f"({type(value).__name__})"
