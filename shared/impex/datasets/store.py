"""The datasets table: one item per (tenant, dataset name)."""

from __future__ import annotations

from typing import Any

from impex.aws.tables import DocumentTable, Expression
from impex.clock import iso, utc_now
from impex.datasets.model import Dataset, DatasetDefinition
from impex.errors import DatasetConflict, DatasetNotFound, InvalidInput
from impex.settings import ExternalTable

_EXISTS = Expression("attribute_exists(tenant)", {}, {})


class DatasetStore:
    """Creates, replaces, reads, lists and deletes a tenant's dataset definitions."""

    def __init__(
        self, table: DocumentTable, *, external_tables: dict[str, ExternalTable], default_shards: int = 1
    ) -> None:
        self._table = table
        self._external = external_tables
        self._default_shards = default_shards

    def get(self, tenant: str, name: str) -> Dataset:
        """The tenant's dataset, or DatasetNotFound."""
        item = self._table.get({"tenant": tenant, "name": name})
        if not item:
            raise DatasetNotFound(f"dataset '{name}' was not found")
        return Dataset.model_validate(item)

    def list(self, tenant: str) -> list[Dataset]:
        """All of the tenant's datasets, by name."""
        datasets: list[Dataset] = []
        key = Expression("tenant = :tenant", {}, {":tenant": tenant})
        start_key: dict[str, Any] | None = None
        while True:
            page = self._table.query(key, start_key=start_key)
            datasets.extend(Dataset.model_validate(item) for item in page.items)
            start_key = page.last_key
            if not start_key:
                return datasets

    def put(self, tenant: str, name: str, definition: DatasetDefinition) -> tuple[Dataset, bool]:
        """Create or replace a dataset. Returns it and whether it was created.

        A replacement may change fields, but not the keys, the shards or the target table: records
        already stored under the old identity or partition would become unreachable. A new dataset
        without ``shards`` gets the deployment's default (an allow-listed table always has one).
        """
        self._check_target(definition)
        now = iso(utc_now())
        try:
            existing: Dataset | None = self.get(tenant, name)
        except DatasetNotFound:
            existing = None
        if existing is not None:
            if existing.keys != definition.keys:
                raise DatasetConflict(
                    f"dataset '{name}' has keys {existing.keys}; keys cannot change once records may exist",
                    details={"keys": existing.keys},
                )
            if existing.target != definition.target:
                raise DatasetConflict(f"dataset '{name}' cannot move to another table")
            if definition.shards is not None and definition.shards != existing.shard_count:
                raise DatasetConflict(
                    f"dataset '{name}' has {existing.shard_count} shards; shards cannot change once "
                    "records may exist (create a new dataset and import into it)",
                    details={"shards": existing.shard_count},
                )
            shards = existing.shards
        else:
            shards = definition.shards or (1 if definition.target is not None else self._default_shards)
        dataset = Dataset(
            **{**definition.model_dump(), "shards": shards},
            tenant=tenant,
            name=name,
            created_at=existing.created_at if existing else now,
            updated_at=now,
        )
        item = dataset.model_dump(by_alias=True, mode="json", exclude_none=True)
        # Optimistic concurrency: the write only lands on the version we just read.
        condition = (
            Expression("updatedAt = :read", {}, {":read": existing.updated_at})
            if existing
            else Expression("attribute_not_exists(tenant)", {}, {})
        )
        if not self._table.put(item, condition=condition):
            raise DatasetConflict(f"dataset '{name}' was changed concurrently; try again")
        return dataset, existing is None

    def delete(self, tenant: str, name: str) -> None:
        """Delete a dataset definition (its records are kept), or raise DatasetNotFound."""
        if not self._table.delete({"tenant": tenant, "name": name}, condition=_EXISTS):
            raise DatasetNotFound(f"dataset '{name}' was not found")

    def _check_target(self, definition: DatasetDefinition) -> None:
        if definition.target is None:
            return
        table = self._external.get(definition.target.table)
        if table is None:
            raise InvalidInput(
                f"table '{definition.target.table}' is not in this deployment's allow-list",
                details={"allowed": sorted(self._external)},
            )
        if definition.keys != table.key_names:
            raise InvalidInput(
                f"table '{table.name}' is keyed by {table.key_names}; the dataset's keys must be those",
                details={"keys": table.key_names},
            )
