"""The datasets table: one item per (tenant, dataset name)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from impex.clock import iso, utc_now
from impex.datasets.model import Dataset, DatasetDefinition
from impex.errors import DatasetConflict, DatasetNotFound, InvalidInput
from impex.jobs.store import to_dynamo, to_plain

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table


@dataclass(frozen=True)
class ExternalTable:
    """An existing table the deployment allows datasets to target, with its key attribute names."""

    name: str
    partition_key: str
    sort_key: str | None

    @property
    def key_names(self) -> list[str]:
        """Key attribute names, partition key first."""
        return [self.partition_key] + ([self.sort_key] if self.sort_key else [])


class DatasetStore:
    """Creates, replaces, reads, lists and deletes a tenant's dataset definitions."""

    def __init__(self, table: Table, *, external_tables: dict[str, ExternalTable]) -> None:
        self._table = table
        self._external = external_tables

    def get(self, tenant: str, name: str) -> Dataset:
        """The tenant's dataset, or DatasetNotFound."""
        item = self._table.get_item(Key={"tenant": tenant, "name": name}, ConsistentRead=True).get("Item")
        if not item:
            raise DatasetNotFound(f"dataset '{name}' was not found")
        return Dataset.model_validate(to_plain(item))

    def list(self, tenant: str) -> list[Dataset]:
        """All of the tenant's datasets, by name."""
        datasets: list[Dataset] = []
        kwargs: dict[str, Any] = {"KeyConditionExpression": Key("tenant").eq(tenant)}
        while True:
            page = self._table.query(**kwargs)
            datasets.extend(Dataset.model_validate(to_plain(item)) for item in page.get("Items", []))
            if not page.get("LastEvaluatedKey"):
                return datasets
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def put(self, tenant: str, name: str, definition: DatasetDefinition) -> tuple[Dataset, bool]:
        """Create or replace a dataset. Returns it and whether it was created.

        A replacement may change fields, but not the keys or the target table: records already
        stored under the old identity would become unreachable.
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
        dataset = Dataset(
            **definition.model_dump(),
            tenant=tenant,
            name=name,
            created_at=existing.created_at if existing else now,
            updated_at=now,
        )
        item = to_dynamo(dataset.model_dump(by_alias=True, mode="json", exclude_none=True))
        # Optimistic concurrency: the write only lands on the version we just read.
        condition = Attr("updatedAt").eq(existing.updated_at) if existing else Attr("tenant").not_exists()
        try:
            self._table.put_item(Item=item, ConditionExpression=condition)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise DatasetConflict(f"dataset '{name}' was changed concurrently; try again") from None
            raise
        return dataset, existing is None

    def delete(self, tenant: str, name: str) -> None:
        """Delete a dataset definition (its records are kept), or raise DatasetNotFound."""
        try:
            self._table.delete_item(
                Key={"tenant": tenant, "name": name}, ConditionExpression=Attr("tenant").exists()
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise DatasetNotFound(f"dataset '{name}' was not found") from None
            raise

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
