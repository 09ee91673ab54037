"""Where a dataset's records live and what their DynamoDB items look like."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from typing import Any

from impex.aws.attributes import from_attribute, iso_datetime, to_attribute
from impex.datasets.model import Dataset, FieldType
from impex.errors import InvalidInput
from impex.settings import ExternalTable

# Attributes impex adds to items in its own RecordsTable (field names cannot start with "_").
JOB_ATTRIBUTE = "_job"
ROW_ATTRIBUTE = "_row"
METADATA = frozenset({"pk", "sk", JOB_ATTRIBUTE, ROW_ATTRIBUTE})


def key_text(value: Any) -> str:
    """The canonical text of a key value (so 1, 1.0 and "1" of an integer key are the same key)."""
    if isinstance(value, Decimal):
        normalized = value.normalize()
        return format(normalized, "f") if normalized == normalized.to_integral_value() else str(normalized)
    if isinstance(value, datetime):
        return iso_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def escape_key_part(part: str) -> str:
    """A key value's text as part of an identity: backslashes and # escaped (# joins the parts)."""
    return part.replace("\\", "\\\\").replace("#", "\\#")


@dataclass(frozen=True)
class RecordLayout:
    """How a dataset's records map to items: the RecordsTable (pk/sk) or an allow-listed table."""

    dataset: Dataset
    table_name: str
    external: ExternalTable | None

    @classmethod
    def for_dataset(
        cls, dataset: Dataset, *, records_table: str, external_tables: dict[str, ExternalTable]
    ) -> RecordLayout:
        """The layout of a dataset in this deployment; a target outside the allow-list is refused."""
        if dataset.target is None:
            return cls(dataset, records_table, None)
        table = external_tables.get(dataset.target.table)
        if table is None:
            raise InvalidInput(f"table '{dataset.target.table}' is no longer in this deployment's allow-list")
        return cls(dataset, table.name, table)

    @cached_property
    def _serializers(self) -> dict[str, Any]:
        return {f.name: _SERIALIZERS.get(f.type, to_attribute) for f in self.dataset.fields}

    @cached_property
    def partitions(self) -> list[str]:
        """The RecordsTable partition keys holding this dataset, shard by shard. One shard keeps the
        layout of datasets made before sharding (``{tenant}#{dataset}``); more append ``#{shard}``."""
        base = f"{self.dataset.tenant}#{self.dataset.name}"
        count = self.dataset.shard_count
        return [base] if count == 1 else [f"{base}#{shard}" for shard in range(count)]

    def partition_of(self, identity: str) -> str:
        """The partition key of the record with this identity: a stable hash of it, modulo the shards."""
        partitions = self.partitions
        if len(partitions) == 1:
            return partitions[0]
        return partitions[zlib.crc32(identity.encode("utf-8", "surrogatepass")) % len(partitions)]

    @property
    def key_names(self) -> list[str]:
        """The item's key attribute names."""
        return self.external.key_names if self.external else ["pk", "sk"]

    @property
    def tracks_rows(self) -> bool:
        """Whether items carry the job and row that wrote them (only in impex's own table)."""
        return self.external is None

    def identity(self, record: dict[str, Any], job_id: str, row: int) -> str:
        """The record's identity: its key values, or job and row for an append-only dataset."""
        if not self.dataset.keys:
            return f"{job_id}#{row:010d}"
        return "#".join(escape_key_part(key_text(record[name])) for name in self.dataset.keys)

    def key(self, identity: str, record: dict[str, Any]) -> dict[str, Any]:
        """The item key for a record whose identity is ``identity``."""
        if self.external is None:
            return {"pk": {"S": self.partition_of(identity)}, "sk": {"S": identity}}
        return {name: self._external_key_value(name, record[name]) for name in self.external.key_names}

    def item(self, record: dict[str, Any], key: dict[str, Any], job_id: str, row: int) -> dict[str, Any]:
        """The full item to put (per-row hot path: one serializer per field, chosen by its type)."""
        serializers = self._serializers
        item = {
            name: serializers.get(name, to_attribute)(value)
            for name, value in record.items()
            if value is not None
        }
        item.update(key)
        if self.tracks_rows:
            item[JOB_ATTRIBUTE] = {"S": job_id}
            item[ROW_ATTRIBUTE] = {"N": str(row)}
        return item

    def serializer(self, name: str) -> Callable[[Any], dict[str, Any]]:
        """The function turning a value of field ``name`` into its attribute value."""
        return self._serializers.get(name, to_attribute)  # type: ignore[no-any-return]

    def record_of(self, item: dict[str, Any]) -> dict[str, Any]:
        """The dataset fields of a stored item, as plain Python."""
        return {name: from_attribute(value) for name, value in item.items() if name not in METADATA}

    def _external_key_value(self, name: str, value: Any) -> dict[str, Any]:
        dataset_field = self.dataset.field(name)
        assert dataset_field is not None
        if dataset_field.type in (FieldType.INTEGER, FieldType.DECIMAL):
            return {"N": key_text(value)}
        return {"S": key_text(value)}


_SERIALIZERS: dict[FieldType, Any] = {
    FieldType.STRING: lambda value: {"S": value},
    FieldType.INTEGER: lambda value: {"N": str(value)},
    FieldType.DECIMAL: lambda value: {"N": str(value)},
    FieldType.BOOLEAN: lambda value: {"BOOL": value},
    FieldType.DATE: lambda value: {"S": value.isoformat()},
    FieldType.DATETIME: lambda value: {"S": iso_datetime(value)},
}
