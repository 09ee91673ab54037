"""A dataset on an allow-listed existing table: imported into with its own keys, exported by Query
when a filter fixes the partition key, and by a parallel Scan otherwise."""

from __future__ import annotations

import copy
import csv
import io

import boto3
import pytest

from impex.local.context import LocalLambdaContext
from tests.conftest import load_event
from tests.integration.conftest import ApiClient, job_store, load_function
from tests.integration.importing import Importer

ORDERS = {
    "fields": [
        {"name": "region", "type": "string", "required": True},
        {"name": "orderId", "type": "integer", "required": True},
        {"name": "total", "type": "decimal"},
        {"name": "paid", "type": "boolean"},
    ],
    "keys": ["region", "orderId"],
    "target": {"table": "orders"},
}


@pytest.fixture
def orders(stack, monkeypatch) -> ApiClient:
    boto3.client("dynamodb").create_table(
        TableName="orders",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": "region", "KeyType": "HASH"},
            {"AttributeName": "orderId", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "region", "AttributeType": "S"},
            {"AttributeName": "orderId", "AttributeType": "N"},
        ],
    )
    monkeypatch.setenv("EXTERNAL_TABLE_ARNS", "arn:aws:dynamodb:us-east-1:123456789012:table/orders")
    monkeypatch.setenv("EXTERNAL_TABLE_KEYS", "region/orderId")
    api = ApiClient(load_function("api"))
    assert api.call("PUT", "/datasets/orders", body=ORDERS).status == 201
    return api


def export(api: ApiClient, stack, **body) -> list[dict]:
    """Create an export, deliver its queue message to the exporter, and read the file back."""
    exporter = load_function("exporter")
    job = api.call("POST", "/exports", body={"dataset": "orders", "format": "csv", **body}).json()["job"]
    sqs = boto3.client("sqs")
    queue = stack.physical["ExportQueue"]
    for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        event = copy.deepcopy(load_event("exporter_job_message.json"))
        event["Records"][0]["body"] = message["Body"]
        exporter.lambda_handler(event, LocalLambdaContext("impex-exporter", timeout_seconds=60))
    stored = job_store(stack, 1).get(job["id"])
    assert stored.status.value == "COMPLETED", stored
    body_bytes = boto3.client("s3").get_object(Bucket=stored.file.bucket, Key=stored.file.key)["Body"].read()
    return list(csv.DictReader(io.StringIO(body_bytes.decode())))


def test_import_into_and_export_from_an_allow_listed_table(orders, stack):
    importer = Importer(orders, stack)
    importer.module = load_function("importer")
    # Given 40 orders and one repeated key, for a dataset on an allow-listed table
    lines = ["region,orderId,total,paid"] + [
        f"{'north' if i % 2 else 'south'},{i},{i}.50,{'yes' if i % 3 else 'no'}" for i in range(1, 41)
    ]
    # When they are imported
    status = importer.run(("\n".join(lines) + "\nnorth,1,99,yes\n").encode(), dataset="orders")
    # Then the table holds them in its own shape, the repeat a row error
    assert status["status"] == "COMPLETED" and status["result"]["created"] == 40
    assert status["result"]["failed"] == 1  # the repeated key (north, 1)
    items = boto3.resource("dynamodb").Table("orders").scan()["Items"]
    assert len(items) == 40
    assert set(items[0]) == {"region", "orderId", "total", "paid"}  # the app's own shape, no extras
    # When they are exported by key and by another field, then Query and Scan find exactly them
    north = export(
        orders,
        stack,
        filters=[
            {"field": "region", "op": "eq", "value": "north"},
            {"field": "orderId", "op": "lte", "value": 9},
        ],
    )
    assert [int(r["orderId"]) for r in north] == [1, 3, 5, 7, 9]  # Query on the key, sorted by orderId
    everything = export(orders, stack, filters=[{"field": "paid", "op": "eq", "value": True}])
    expected = sorted(i for i in range(1, 41) if i % 3)
    assert sorted(int(r["orderId"]) for r in everything) == expected  # parallel Scan segments, all found
