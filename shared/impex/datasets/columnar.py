"""The import's fast path: a batch of rows converted column by column into DynamoDB items.

The exact path (RowConverter.convert, then RecordLayout.identity/key/item) costs ~12 µs a row of
ten fields in Python calls and dict building. Most cells of a real file are already in the one form
the exact path would write back (``42``, ``19.99``, ``2024-05-01``, ``2024-05-01T13:00:00Z``,
``true``): for those the stored text *is* the cell, so a column is checked with one regex over its
joined text and its attribute values are built in one comprehension. A cell outside that form is
converted by the field's own converter; a row with any cell the converter refuses (or a blank
required cell, a ragged row, a key in another form) is left to the exact path, which gives its row
errors word for word. A row the fast path builds is the item the exact path would build (property
tests compare the two on generated values, edge values included).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from impex.datasets.convert import FALSE_WORDS, TRUE_WORDS, to_boolean
from impex.datasets.mapping import RowConverter
from impex.datasets.model import FieldType
from impex.datasets.records import JOB_ATTRIBUTE, ROW_ATTRIBUTE, RecordLayout, escape_key_part
from impex.formats.columns import SourceRow
from impex.formats.jsonlines import bad_line_reason

# One converted row: its identity, its item key and its item.
Prepared = tuple[str, dict[str, Any], dict[str, Any]]

# The texts the exact path stores unchanged, field type by field type (ASCII digits only: \d would
# take other scripts' digits, which the exact path reads as numbers and writes back as ASCII).
_CANONICAL = {
    # No sign but a minus, no leading zeros, no "-0", at most 37 digits (DynamoDB takes 38).
    FieldType.INTEGER: r"(?:0|-?[1-9][0-9]{0,36})",
    # Decimal's str() gives back the same text: no exponent, no leading zeros, and a number below 1
    # with at most five zeros after the point before its first digit (or str() turns to 1E-7).
    FieldType.DECIMAL: r"-?(?:[1-9][0-9]*(?:\.[0-9]+)?|0(?:\.(?:0{0,5}[1-9][0-9]*|0{1,6}))?)",
    FieldType.DATE: r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])",
    FieldType.DATETIME: (
        r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z"
    ),
}
_ONE = {kind: re.compile(pattern) for kind, pattern in _CANONICAL.items()}
# A whole column at once: values separated by newlines (a value holding one fails the count check).
_ALL = {kind: re.compile(f"(?:{pattern}\n)*{pattern}") for kind, pattern in _CANONICAL.items()}
_ATTRIBUTE_KIND = {
    FieldType.STRING: "S",
    FieldType.INTEGER: "N",
    FieldType.DECIMAL: "N",
    FieldType.DATE: "S",
    FieldType.DATETIME: "S",
}
# The longest canonical text of each kind: a column with a longer cell is checked cell by cell (so a
# hostile column of long cells is never joined into one more copy), and numbers longer than 38
# characters go through the converter (it checks DynamoDB's 38 digits).
_MAX_NUMBER_CHARS = 38
_LONGEST = {
    FieldType.INTEGER: _MAX_NUMBER_CHARS,
    FieldType.DECIMAL: _MAX_NUMBER_CHARS,
    FieldType.DATE: len("2024-05-01"),
    FieldType.DATETIME: len("2024-05-01T13:00:00Z"),
}
# Key fields whose key text is the cell's own text when the cell is in canonical form.
_TEXT_KEYS = frozenset({FieldType.STRING, FieldType.INTEGER, FieldType.DATE, FieldType.DATETIME})


def _boolean_texts() -> dict[str, bool]:
    """Every spelling of a boolean word the fast path looks up (checked through to_boolean itself)."""
    spellings = {
        variant for word in TRUE_WORDS | FALSE_WORDS for variant in (word, word.upper(), word.title())
    }
    return {text: to_boolean(text) for text in spellings}


_BOOLEANS = _boolean_texts()
_TEXT_ONLY = {str}  # a column every cell of which is text (a reader's, not a workbook's typed cells)
_OMIT: Any = object()  # a blank cell of a field with no default: the item has no such attribute


class _Column:
    """One mapped field's column: its position in the row, how it is checked and converted."""

    def __init__(self, position: int, name: str, converter: RowConverter, layout: RecordLayout) -> None:
        dataset_field = layout.dataset.field(name)
        assert dataset_field is not None
        self.position = position
        self.name = name
        self.type = dataset_field.type
        # A constrained field's values are always checked by its converter.
        self.canonical = dataset_field.constraints is None
        self.required = dataset_field.required
        self.convert = converter.converter(name)
        self.serialize = layout.serializer(name)
        self.default = converter.defaults.get(name)


@dataclass
class _Batch:
    """A batch's columns, converted: attribute values by column, key texts by key field, and the
    rows (positions in the batch) the exact path takes or whose items lack an attribute."""

    attributes: list[list[Any]] = field(default_factory=list)
    key_texts: list[list[str]] = field(default_factory=list)
    refused: set[int] = field(default_factory=set)
    omitted: set[int] = field(default_factory=set)


class ColumnarConverter:
    """Converts batches of rows column by column; rows it cannot build are left to the exact path."""

    def __init__(self, converter: RowConverter, layout: RecordLayout, job_id: str) -> None:
        self.converter = converter
        self._layout = layout
        self._job_id = job_id
        self._width = len(converter.header)
        self._max_chars = converter.max_cell_chars
        self._columns = [_Column(position, name, converter, layout) for position, name in converter.fields]
        mapped = {column.name for column in self._columns}
        # Fields with a default that no column feeds: every record gets the default.
        self._constant = [(name, value) for name, value in converter.defaults.items() if name not in mapped]
        self._key_names = list(layout.dataset.keys)

    @staticmethod
    def supports(layout: RecordLayout) -> bool:
        """Whether the fast path applies: items in impex's own RecordsTable (an allow-listed table's
        key attributes are typed as that table has them: those go the exact path)."""
        return layout.tracks_rows

    def prepare(self, rows: Sequence[SourceRow]) -> list[Prepared | None]:
        """Each row's identity, key and item, or None where the exact path must convert it."""
        prepared: list[Prepared | None] = [None] * len(rows)
        chosen = _readable_rows(rows, self._width)
        if not chosen:
            return prepared
        batch = self._convert_columns(list(zip(*[rows[index].cells for index in chosen], strict=True)))
        numbers = [rows[index].number for index in chosen]
        identities = self._identities(batch, numbers)
        # The constant and metadata attributes are columns too: each item is then one dict(zip(...)).
        names, columns = self._metadata_columns(batch, numbers, identities)
        refused, omitted = batch.refused, batch.omitted
        for local, values in enumerate(zip(*batch.attributes, *columns, strict=True)):
            if local in refused:
                continue
            item = dict(zip(names, values, strict=True))
            if local in omitted:
                item = {name: value for name, value in item.items() if value is not _OMIT}
            prepared[chosen[local]] = (identities[local], {"pk": item["pk"], "sk": item["sk"]}, item)
        return prepared

    def _identities(self, batch: _Batch, numbers: list[int]) -> list[str]:
        """Each row's identity: its key texts joined, or the job's id and its row number."""
        keys, refused = batch.key_texts, batch.refused
        if not keys:
            return [f"{self._job_id}#{number:010d}" for number in numbers]
        if len(keys) == 1 and not refused:
            return keys[0]
        # A refused row's key cells may not be text: it gets no identity here.
        return [
            "" if local in refused else "#".join([texts[local] for texts in keys])
            for local in range(len(numbers))
        ]

    def _metadata_columns(
        self, batch: _Batch, numbers: list[int], identities: list[str]
    ) -> tuple[list[str], list[list[Any]]]:
        """Every attribute's name (the columns', then the rest), and the columns of the attributes
        no cell feeds: fields' defaults, the partition and sort keys, the job and the row number."""
        layout, job_id, refused = self._layout, self._job_id, batch.refused
        partitions = layout.partitions
        if len(partitions) == 1:
            partition_keys = [{"S": partitions[0]} for _ in numbers]
        else:
            partition_keys = [
                {"S": "" if local in refused else layout.partition_of(identity)}
                for local, identity in enumerate(identities)
            ]
        names = [
            *(column.name for column in self._columns),
            *(name for name, _ in self._constant),
            "pk",
            "sk",
            JOB_ATTRIBUTE,
            ROW_ATTRIBUTE,
        ]
        columns = [
            *([layout.serializer(name)(value) for _ in numbers] for name, value in self._constant),
            partition_keys,
            [{"S": identity} for identity in identities],
            [{"S": job_id} for _ in numbers],
            [{"N": str(number)} for number in numbers],
        ]
        return names, columns

    def _convert_columns(self, cells: list[tuple[Any, ...]]) -> _Batch:
        """Every mapped column's attribute values, the key fields' texts, and which rows are left to
        the exact path or lack an attribute."""
        batch = _Batch()
        texts: dict[str, list[str]] = {}
        for column in self._columns:
            values = cells[column.position]
            built = self._canonical(column, values)
            if column.name in self._key_names:
                texts[column.name] = self._key_texts(column, values, built, batch.refused)
            self._convert_the_rest(column, values, built, batch.refused, batch.omitted)
            batch.attributes.append(built)
        batch.key_texts = [texts[name] for name in self._key_names]
        return batch

    def _canonical(self, column: _Column, values: tuple[Any, ...]) -> list[Any]:
        """Attribute values of the cells already in canonical form (text a reader gives, or a
        workbook's typed cells); None for every other cell."""
        if not column.canonical:
            return [None] * len(values)
        kinds = set(map(type, values))
        if kinds == _TEXT_ONLY:
            build = _CANONICAL_BUILDERS.get(column.type)
            return [None] * len(values) if build is None else build(column.type, values, self._max_chars)
        typed = _TYPED_BUILDERS.get(column.type)
        if typed is None or not kinds & _TYPED_CELLS:
            return [None] * len(values)
        return typed(values, kinds, self._max_chars)  # kinds: the cells' exact classes

    def _convert_the_rest(
        self, column: _Column, values: tuple[Any, ...], built: list[Any], refused: set[int], omitted: set[int]
    ) -> None:
        """Convert, one by one, the cells the canonical check did not take, as the exact path does;
        a refused cell (or a blank required one) leaves its row to the exact path, for its row error."""
        if None not in built:  # every cell was canonical (the common case): nothing left to convert
            return
        for local, attribute in enumerate(built):
            if attribute is not None:
                continue
            value = values[local]
            if value is None or (value.__class__ is str and (not value or value.isspace())):
                if column.default is not None:
                    built[local] = column.serialize(column.default)
                elif column.required:
                    refused.add(local)
                else:
                    built[local] = _OMIT
                    omitted.add(local)
                continue
            if value.__class__ is str and len(value) > self._max_chars:
                refused.add(local)
                continue
            try:
                converted = column.convert(value)
            except Exception:  # whatever the converter refuses, the exact path words
                refused.add(local)
                continue
            if converted is None:  # JSON null: the record has no such value
                built[local] = _OMIT
                omitted.add(local)
            else:
                built[local] = column.serialize(converted)

    @staticmethod
    def _key_texts(
        column: _Column, values: tuple[Any, ...], canonical: list[Any], refused: set[int]
    ) -> list[str]:
        """Each row's escaped key text for this key field. A key cell outside canonical form leaves
        its row to the exact path (its key text is the converted value's, not the cell's)."""
        if column.type not in _TEXT_KEYS:
            refused.update(range(len(values)))
            return []
        for local, attribute in enumerate(canonical):
            # A typed key cell (a workbook's number or date) has the converted value's key text.
            if attribute is None or values[local].__class__ is not str:
                refused.add(local)
        texts: list[str] = list(values)
        joined = "".join(text for text in texts if text.__class__ is str)  # the refused rows' aside
        if "#" in joined or "\\" in joined:
            texts = [escape_key_part(text) if text.__class__ is str else text for text in texts]
        return texts


def _readable_rows(rows: Sequence[SourceRow], width: int) -> list[int]:
    """The rows with a cell for every column and nothing a reader refused (the others' errors are
    the exact path's to word)."""
    return [
        index
        for index, row in enumerate(rows)
        if len(row.cells) == width and bad_line_reason(row.cells) is None
    ]


def _booleans(kind: FieldType, values: tuple[str, ...], max_chars: int) -> list[Any]:
    return [None if (word := _BOOLEANS.get(value)) is None else {"BOOL": word} for value in values]


def _strings(kind: FieldType, values: tuple[str, ...], max_chars: int) -> list[Any]:
    built: list[Any] = [{"S": value} for value in values]
    if "" in values or any(map(str.isspace, values)) or max(map(len, values)) > max_chars:
        for local, value in enumerate(values):
            if not value or value.isspace() or len(value) > max_chars:
                built[local] = None  # blank, or too long: converted (or refused) one by one
    return built


def _patterned(kind: FieldType, values: tuple[str, ...], max_chars: int) -> list[Any]:
    """Numbers, dates and datetimes: one regex over the joined column, cell by cell only if it fails."""
    one, count = _ONE[kind], len(values)
    longest = _LONGEST[kind]
    if max(map(len, values)) > longest:
        ok = [len(value) <= longest and one.fullmatch(value) is not None for value in values]
    else:
        joined = "\n".join(values)
        if joined.count("\n") == count - 1 and _ALL[kind].fullmatch(joined):
            ok = [True] * count
        else:
            ok = [one.fullmatch(value) is not None for value in values]
    if kind is FieldType.DATE:
        _drop_impossible(values, ok, date.fromisoformat)
    elif kind is FieldType.DATETIME:
        _drop_impossible(values, ok, datetime.fromisoformat)
    attribute = _ATTRIBUTE_KIND[kind]
    return [{attribute: value} if good else None for value, good in zip(values, ok, strict=True)]


_CANONICAL_BUILDERS: dict[FieldType, Callable[[FieldType, tuple[str, ...], int], list[Any]]] = {
    FieldType.STRING: _strings,
    FieldType.BOOLEAN: _booleans,
    FieldType.INTEGER: _patterned,
    FieldType.DECIMAL: _patterned,
    FieldType.DATE: _patterned,
    FieldType.DATETIME: _patterned,
}


# ---- a workbook's typed cells ----------------------------------------------------------------------
# calamine and openpyxl give numbers as floats, dates as date or datetime, booleans as bool. Each
# builder below takes the cells of those types whose attribute value it can give exactly as the
# field's converter and serializer would (convert.py), and leaves every other cell (None) to them.
# Classes are compared exactly: bool is an int, datetime is a date.

_TYPED_CELLS = frozenset({float, int, bool, date, datetime})
_INTEGER_LIMIT = 10**38  # DynamoDB's 38 digits, as convert._storable_integer checks them


def _typed_strings(values: tuple[Any, ...], kinds: set[type], max_chars: int) -> list[Any]:
    """Text cells as _strings takes them; a float as to_string writes it (3, not 3.0)."""
    built: list[Any] = []
    for value in values:
        kind = value.__class__
        if kind is str:
            good = value and not value.isspace() and len(value) <= max_chars
            built.append({"S": value} if good else None)
        elif kind is float:
            built.append({"S": str(int(value)) if value.is_integer() else repr(value)})
        else:
            built.append(None)
    return built


def _typed_integers(values: tuple[Any, ...], kinds: set[type], max_chars: int) -> list[Any]:
    """Whole floats and ints within DynamoDB's 38 digits, as str(int(value))."""
    if kinds == {float} and all(map(float.is_integer, values)) and max(map(abs, values)) < _INTEGER_LIMIT:
        # A whole float below 1e38 in magnitude is an int of at most 38 digits.
        return [{"N": text} for text in map(str, map(int, values))]
    built: list[Any] = []
    for value in values:
        kind = value.__class__
        if kind is float and value.is_integer() and -_INTEGER_LIMIT < value < _INTEGER_LIMIT:
            number = int(value)
            built.append({"N": str(number)} if -_INTEGER_LIMIT < number < _INTEGER_LIMIT else None)
        elif kind is int and -_INTEGER_LIMIT < value < _INTEGER_LIMIT:
            built.append({"N": str(value)})
        else:
            built.append(None)
    return built


def _typed_decimals(values: tuple[Any, ...], kinds: set[type], max_chars: int) -> list[Any]:
    """Floats in DynamoDB's range whose repr has no exponent: Decimal(repr(value)) prints as that repr."""
    if kinds == {float}:
        texts = list(map(repr, values))
        # isfinite first: min and max skip a nan that is not the first value (it compares false).
        magnitudes = [magnitude for magnitude in map(abs, values) if magnitude]
        in_range = all(map(math.isfinite, values)) and (
            not magnitudes or (min(magnitudes) > 1e-129 and max(magnitudes) < 1e125)
        )
        if in_range and "e" not in "".join(texts):
            return [{"N": text} for text in texts]
    built: list[Any] = []
    for value in values:
        if value.__class__ is float and (value == 0 or 1e-129 < abs(value) < 1e125):
            text = repr(value)  # finite here: inf and nan fail both comparisons
            built.append(None if "e" in text else {"N": text})
        else:
            built.append(None)
    return built


def _typed_booleans(values: tuple[Any, ...], kinds: set[type], max_chars: int) -> list[Any]:
    """bool cells, and the spellings _booleans looks up."""
    if kinds == {bool}:
        return [{"BOOL": value} for value in values]
    built: list[Any] = []
    for value in values:
        kind = value.__class__
        if kind is bool:
            built.append({"BOOL": value})
        elif kind is str and (word := _BOOLEANS.get(value)) is not None:
            built.append({"BOOL": word})
        else:
            built.append(None)
    return built


def _typed_dates(values: tuple[Any, ...], kinds: set[type], max_chars: int) -> list[Any]:
    """date cells, and datetime cells at midnight (naive or not: to_date keeps the date)."""
    if kinds == {date}:
        return [{"S": text} for text in map(date.isoformat, values)]
    built: list[Any] = []
    for value in values:
        kind = value.__class__
        if kind is date:
            built.append({"S": value.isoformat()})
        elif kind is datetime and not (value.hour or value.minute or value.second or value.microsecond):
            built.append({"S": value.date().isoformat()})
        else:
            built.append(None)
    return built


def _typed_datetimes(values: tuple[Any, ...], kinds: set[type], max_chars: int) -> list[Any]:
    """Naive datetime cells (a workbook's are: UTC, as to_datetime reads them) and date cells at midnight."""
    built: list[Any] = []
    for value in values:
        kind = value.__class__
        if kind is datetime and value.tzinfo is None:
            built.append({"S": value.isoformat() + "Z"})
        elif kind is date:
            built.append({"S": value.isoformat() + "T00:00:00Z"})
        else:
            built.append(None)
    return built


_TYPED_BUILDERS: dict[FieldType, Callable[[tuple[Any, ...], set[type], int], list[Any]]] = {
    FieldType.STRING: _typed_strings,
    FieldType.INTEGER: _typed_integers,
    FieldType.DECIMAL: _typed_decimals,
    FieldType.BOOLEAN: _typed_booleans,
    FieldType.DATE: _typed_dates,
    FieldType.DATETIME: _typed_datetimes,
}


def _drop_impossible(values: tuple[str, ...], ok: list[bool], parse: Callable[[str], Any]) -> None:
    """Unmark the dates of the right shape that do not exist (2024-02-30)."""
    for local, value in enumerate(values):
        if ok[local]:
            try:
                parse(value)
            except ValueError:
                ok[local] = False
