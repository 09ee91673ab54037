"""Helpers to run imports through the real handlers on moto."""

from __future__ import annotations

import copy
import csv
import io
import json
from typing import Any
from urllib.parse import unquote, urlparse

import boto3

from impex import wiring
from impex.local.context import LocalLambdaContext
from impex.settings.workers import ImporterSettings
from tests.conftest import load_event
from tests.integration.conftest import ApiClient, load_function


def s3_event(bucket: str, key: str, *, sequencer: str = "0055AED6DCD90281E5") -> dict[str, Any]:
    """events/importer_s3_upload.json for this bucket and key (URL-encoded as S3 sends it)."""
    from urllib.parse import quote_plus

    event = copy.deepcopy(load_event("importer_s3_upload.json"))
    notification = json.loads(event["Records"][0]["body"])
    notification["Records"][0]["s3"]["bucket"]["name"] = bucket
    notification["Records"][0]["s3"]["object"]["key"] = quote_plus(key, safe="/")
    notification["Records"][0]["s3"]["object"]["sequencer"] = sequencer
    event["Records"][0]["body"] = json.dumps(notification)
    return event


def sqs_event(body: str, message_id: str = "m-1") -> dict[str, Any]:
    event = copy.deepcopy(load_event("importer_s3_upload.json"))
    event["Records"][0]["body"] = body
    event["Records"][0]["messageId"] = message_id
    return event


# One import, or one and a second in another mode: what comparisons of two ways to import run through.
WRITE_MODE_STEPS: list[list[dict[str, Any]]] = [
    [{}],
    [{}, {"mode": "upsert"}],
    [{}, {"mode": "insert"}],
    [{"dryRun": True}],
    [{}, {"mode": "merge"}],
    [{}, {"mode": "skip_unchanged"}],
]
WRITE_MODE_IDS = ["insert", "upsert-again", "insert-again", "dry-run", "merge-again", "skip-unchanged-again"]


class Importer:
    """Uploads files for import jobs and delivers the events the importer would get."""

    def __init__(self, api: ApiClient, stack: Any, timeout_seconds: float = 60) -> None:
        self.api = api
        self.stack = stack
        self.module = load_function("importer")
        self.timeout_seconds = timeout_seconds
        self.s3 = boto3.client("s3")
        self.sqs = boto3.client("sqs")
        self.invocations = 0

    def rewire(self, **adapters: Any) -> None:
        """Rebuild the handler's trigger through the composition root, with these adapters (fakes)."""
        settings = ImporterSettings.from_environment()
        pipeline = wiring.import_pipeline(settings, **adapters)
        self.module.trigger = wiring.import_trigger(settings, pipeline=pipeline)

    @property
    def bucket(self) -> str:
        return self.stack.physical["FilesBucket"]

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        self.invocations += 1
        context = LocalLambdaContext("impex-importer", timeout_seconds=self.timeout_seconds)
        return self.module.lambda_handler(event, context)  # type: ignore[no-any-return]

    def create(self, file_name: str = "data.csv", tenant: str = "acme", **body: Any) -> dict[str, Any]:
        response = self.api.call(
            "POST", "/imports", tenant=tenant, body={"dataset": "customers", "fileName": file_name, **body}
        )
        assert response.status == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def run(
        self, content: bytes, file_name: str = "data.csv", tenant: str = "acme", **body: Any
    ) -> dict[str, Any]:
        """Create the job, upload the file, deliver the upload event, follow continuations; the status."""
        created = self.create(file_name, tenant, **body)
        key = created["upload"]["key"]
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=content)
        self.invoke(s3_event(self.bucket, key))
        self.drain()
        return self.status(created["job"]["id"], tenant)

    def drain(self, limit: int = 200) -> int:
        """Deliver every message waiting on the import queue (continuations, commits) until none is left."""
        delivered = 0
        queue = self.stack.physical["ImportQueue"]
        while delivered < limit:
            messages = self.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1).get("Messages", [])
            if not messages:
                return delivered
            message = messages[0]
            self.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
            if '"Event": "s3:TestEvent"' in message["Body"] or "s3:TestEvent" in message["Body"]:
                continue
            self.invoke(sqs_event(message["Body"], message["MessageId"]))
            delivered += 1
        raise AssertionError("the import queue never drained")

    def status(self, job_id: str, tenant: str = "acme") -> dict[str, Any]:
        return self.api.call("GET", f"/jobs/{job_id}/status", tenant=tenant).json()  # type: ignore[no-any-return]

    def error_report(self, job_id: str, tenant: str = "acme") -> list[list[str]]:
        """The job's error report, downloaded through the API's redirect, as CSV rows."""
        response = self.api.call("GET", f"/jobs/{job_id}/download", query={"file": "errors"}, tenant=tenant)
        assert response.status == 302, response.text
        path = urlparse(response.headers["location"]).path.lstrip("/")
        key = unquote(path.removeprefix(self.bucket + "/"))
        report = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()
        return list(csv.reader(io.StringIO(report)))

    def partitions(self, tenant: str = "acme", dataset: str = "customers") -> list[str]:
        """The dataset's record partitions, as the API describes the dataset."""
        response = self.api.call("GET", f"/datasets/{dataset}", tenant=tenant)
        assert response.status == 200, response.text
        shards = response.json()["shards"]
        base = f"{tenant}#{dataset}"
        return [base] if shards == 1 else [f"{base}#{shard}" for shard in range(shards)]

    def records(self, tenant: str = "acme", dataset: str = "customers") -> dict[str, dict[str, Any]]:
        """The dataset's records in the RecordsTable, by sort key, as plain values."""
        from boto3.dynamodb.conditions import Key

        table = boto3.resource("dynamodb").Table(self.stack.physical["RecordsTable"])
        items: list[dict[str, Any]] = []
        for partition in self.partitions(tenant, dataset):
            kwargs: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq(partition)}
            while True:
                page = table.query(**kwargs)
                items += page["Items"]
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return {
            item["sk"]: {k: v for k, v in item.items() if k not in {"pk", "sk", "_job", "_row"}}
            for item in items
        }
