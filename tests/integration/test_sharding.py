"""Write sharding on moto: a dataset's records spread over its partitions, and every read path stays
exact. The same file imported into a one-shard and an eight-shard dataset gives the same counts, row
errors, error report, records and export file."""

from __future__ import annotations

import copy
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key

from impex.aws.tables import DocumentTable
from impex.datasets.store import DatasetStore
from tests.integration.conftest import CUSTOMERS
from tests.integration.importing import Importer

HEADER = "email,name,age,balance,active,signedUp\n"


def people_with_trouble(count: int) -> bytes:
    """People, with a duplicate key of an earlier row every 50 rows and a bad age every 40."""
    lines = [HEADER]
    for i in range(count):
        email = f"p{i - 25}@x.io" if i % 50 == 49 else f"p{i}@x.io"
        age = "old" if i % 40 == 39 else str(i % 90)
        lines.append(f"{email},P {i},{age},{i}.5,yes,2024-02-{1 + i % 28:02d}\n")
    return "".join(lines).encode()


@pytest.fixture
def importer(api, put_dataset, stack) -> Importer:
    put_dataset("single", shards=1, **CUSTOMERS)
    put_dataset("sharded", shards=8, **CUSTOMERS)
    return Importer(api, stack)


def partition_sizes(stack, partitions: list[str]) -> dict[str, int]:
    table = boto3.resource("dynamodb").Table(stack.physical["RecordsTable"])
    return {
        p: table.query(KeyConditionExpression=Key("pk").eq(p), Select="COUNT")["Count"] for p in partitions
    }


def outcome(importer: Importer, dataset: str, content: bytes, **options: Any) -> dict[str, Any]:
    status = importer.run(content, dataset=dataset, options=options)
    assert status["status"] == "COMPLETED", status
    return {
        "result": {k: v for k, v in status["result"].items() if k != "firstErrors"},
        "firstErrors": status["result"]["firstErrors"],
        "report": importer.error_report(status["id"]),
        "records": importer.records(dataset=dataset),
    }


def test_a_sharded_dataset_spreads_its_records_over_its_partitions(importer, stack, api):
    # Given an eight-shard dataset
    assert api.call("GET", "/datasets/sharded").json()["shards"] == 8
    # When 400 rows are imported
    outcome(importer, "sharded", people_with_trouble(400))
    # Then each of its eight partitions holds some of them, and the legacy partition none
    sizes = partition_sizes(stack, importer.partitions(dataset="sharded"))
    assert len(sizes) == 8 and all(size > 10 for size in sizes.values()), sizes
    assert sum(sizes.values()) == len(importer.records(dataset="sharded"))
    assert partition_sizes(stack, ["acme#sharded"]) == {"acme#sharded": 0}


@pytest.mark.parametrize(
    "steps",
    [
        [{}],  # insert
        [{}, {"mode": "upsert"}],  # the second import finds every record, in whichever shard
        [{}, {"mode": "insert"}],  # existing keys skipped
        [{"dryRun": True}],  # a dry run counts as the import would
        [{}, {"mode": "merge"}],
        [{}, {"mode": "skip_unchanged"}],
    ],
    ids=["insert", "upsert-again", "insert-again", "dry-run", "merge-again", "skip-unchanged-again"],
)
def test_one_shard_and_eight_shards_give_the_same_outcome(importer, steps):
    # Given the same file, duplicates and bad rows included
    content = people_with_trouble(300)
    # When the same steps import it into the one-shard and the eight-shard dataset
    single = [outcome(importer, "single", content, **options) for options in steps]
    sharded = [outcome(importer, "sharded", content, **options) for options in steps]
    # Then every count, row error, error report and record is the same
    assert sharded == single
    assert single[-1]["result"]["failed"] > 0 and single[0]["result"]["created"] > 0


def test_an_export_of_a_sharded_dataset_is_the_one_shard_file_byte_for_byte(importer, api, stack):
    # Given the same records in both datasets
    content = people_with_trouble(500)
    for dataset in ("single", "sharded"):
        outcome(importer, dataset, content)
    # When each is exported as CSV, and with a key filter
    files = {}
    for dataset in ("single", "sharded"):
        for filters in ([], [{"field": "email", "op": "eq", "value": "p7@x.io"}]):
            status = _export(api, stack, dataset, filters)
            files[(dataset, len(filters))] = _file_of(stack, status)
    # Then the files are identical: the shards are merged back into key order
    assert files[("sharded", 0)] == files[("single", 0)]
    assert files[("sharded", 1)] == files[("single", 1)]
    lines = files[("single", 0)].decode().splitlines()
    assert len(lines) == 1 + len(importer.records(dataset="single"))
    assert files[("single", 1)].decode().splitlines()[1].startswith("p7@x.io,")


def test_a_sharded_export_continues_across_invocations_exactly(importer, api, stack, monkeypatch):
    # Given 600 records in the sharded dataset, and exporter invocations too short for all of them
    outcome(importer, "sharded", people_with_trouble(600))
    outcome(importer, "single", people_with_trouble(600))
    monkeypatch.setenv("PAGE_SIZE", "50")
    # When both datasets are exported
    whole = _file_of(stack, _export(api, stack, "single", []))
    status = _export(api, stack, "sharded", [], timeout_seconds=0.3)
    # Then the sharded export took several invocations and wrote the same file
    assert status["invocations"] > 1
    assert _file_of(stack, status) == whole


def test_shards_cannot_change_and_a_replacement_keeps_them(api):
    api.call("PUT", "/datasets/fixed", body={**CUSTOMERS, "shards": 4})
    changed = api.call("PUT", "/datasets/fixed", body={**CUSTOMERS, "shards": 5})
    assert changed.status == 409 and changed.json()["error"]["details"] == {"shards": 4}
    kept = api.call("PUT", "/datasets/fixed", body={**CUSTOMERS, "description": "new words"})
    assert kept.status == 200 and kept.json()["shards"] == 4


def test_a_new_dataset_gets_the_deployments_default_shards(api):
    created = api.call("PUT", "/datasets/defaulted", body=CUSTOMERS).json()
    assert created["shards"] == 10  # the template's DefaultRecordShards


def test_a_dataset_stored_before_sharding_keeps_its_layout(api, stack, put_dataset):
    # Given a dataset item as stored before shards existed (no shards attribute)
    put_dataset("legacy", shards=1, **CUSTOMERS)
    table = boto3.resource("dynamodb").Table(stack.physical["DatasetsTable"])
    item = table.get_item(Key={"tenant": "acme", "name": "legacy"})["Item"]
    del item["shards"]
    table.put_item(Item=item)
    importer = Importer(api, stack)
    # When it is read and imported into
    assert api.call("GET", "/datasets/legacy").json()["shards"] == 1
    status = importer.run(people_with_trouble(60), dataset="legacy")
    # Then its records are in the one partition it always had
    assert status["status"] == "COMPLETED"
    sizes = partition_sizes(stack, ["acme#legacy", "acme#legacy#0"])
    assert sizes == {"acme#legacy": status["result"]["written"], "acme#legacy#0": 0}


def test_an_allow_listed_table_cannot_be_sharded():
    from impex.datasets.model import DatasetDefinition

    with pytest.raises(ValueError, match="cannot be sharded"):
        DatasetDefinition.model_validate(
            {**copy.deepcopy(CUSTOMERS), "keys": ["email"], "target": {"table": "their-table"}, "shards": 2}
        )


def test_a_new_dataset_without_shards_gets_the_stores_default_and_keeps_it(stack):
    store = DatasetStore(
        DocumentTable(boto3.client("dynamodb"), stack.physical["DatasetsTable"]),
        external_tables={},
        default_shards=7,
    )
    from impex.datasets.model import DatasetDefinition

    created, _ = store.put("acme", "seven", DatasetDefinition.model_validate(CUSTOMERS))
    assert created.shard_count == 7
    replaced, _ = store.put("acme", "seven", DatasetDefinition.model_validate(CUSTOMERS))
    assert replaced.shard_count == 7


# ---- helpers -----------------------------------------------------------------------------------


def _export(api, stack, dataset: str, filters: list[dict], timeout_seconds: float = 60) -> dict[str, Any]:
    from tests.integration.test_export_pipeline import Exporter

    exporter = Exporter(api, stack, timeout_seconds=timeout_seconds)
    job = api.call("POST", "/exports", body={"dataset": dataset, "format": "csv", "filters": filters}).json()
    exporter.drain()
    status = api.call("GET", f"/jobs/{job['job']['id']}/status").json()
    assert status["status"] == "COMPLETED", status
    return {**status, "invocations": exporter.invocations}


def _file_of(stack, status: dict[str, Any]) -> bytes:
    from tests.integration.conftest import job_store

    job = job_store(stack, 1).get(status["id"])
    return boto3.client("s3").get_object(Bucket=job.file.bucket, Key=job.file.key)["Body"].read()  # type: ignore[no-any-return]
