"""The export pipeline on moto: every format read back with an independent reader, filters and
projection, multipart uploads, cancel, duplicates, continuation across invocations, empty results."""

from __future__ import annotations

import copy
import csv
import gzip
import io
import json
import threading
import time
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import boto3
import openpyxl
import pyarrow.parquet as pq
import pytest

from impex import wiring
from impex.aws import clients
from impex.aws.records import RecordTable
from impex.datasets.model import Dataset
from impex.datasets.records import RecordLayout
from impex.jobs.model import JobStatus
from impex.local.context import LocalLambdaContext
from impex.settings.workers import ExporterSettings
from tests.conftest import load_event
from tests.fakes import hooked_records
from tests.integration.conftest import job_store, load_function

FIELDS = [
    {"name": "sku", "type": "string", "required": True},
    {"name": "title", "type": "string"},
    {"name": "qty", "type": "integer"},
    {"name": "price", "type": "decimal"},
    {"name": "active", "type": "boolean"},
    {"name": "added", "type": "date"},
    {"name": "seenAt", "type": "datetime"},
    {"name": "meta", "type": "json"},
]


def record(i: int, long_text: int = 0) -> dict[str, Any]:
    from datetime import UTC

    return {
        "sku": f"S{i:06d}",
        "title": (f"=cmd {i}" if i % 50 == 0 else f'Title {i}, "q"\nline') + "x" * long_text,
        "qty": i % 7,
        "price": Decimal(f"{i}.{i % 100:02d}"),
        "active": i % 2 == 0,
        "added": date(2024, 1, 1 + i % 28),
        "seenAt": datetime(2024, 5, 1, i % 24, tzinfo=UTC),
        "meta": {"tags": ["a", "b"][: i % 3], "score": Decimal("1.5")},
    }


class Exporter:
    def __init__(self, api, stack, timeout_seconds: float = 60) -> None:
        self.api, self.stack, self.timeout = api, stack, timeout_seconds
        self.module = load_function("exporter")
        self.sqs = boto3.client("sqs")
        self.s3 = boto3.client("s3")
        self.invocations = 0

    def seed(self, records: list[dict[str, Any]], tenant: str = "acme") -> None:
        dataset = Dataset.model_validate(
            self.api.call("GET", "/datasets/items", tenant=tenant).json() | {"tenant": tenant}
        )
        layout = RecordLayout.for_dataset(
            dataset, records_table=self.stack.physical["RecordsTable"], external_tables={}
        )
        table = RecordTable(clients.dynamodb_fast(), layout.table_name)
        items = []
        for number, rec in enumerate(records, start=2):
            identity = layout.identity(rec, "SEED", number)
            items.append(layout.item(rec, layout.key(identity, rec), "SEED", number))
        table.put_many(items)
        table.close()

    def create(self, **body: Any) -> dict[str, Any]:
        response = self.api.call("POST", "/exports", body={"dataset": "items", **body})
        assert response.status == 201, response.text
        return response.json()["job"]  # type: ignore[no-any-return]

    def drain(self, limit: int = 500) -> None:
        queue = self.stack.physical["ExportQueue"]
        for _ in range(limit):
            messages = self.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1).get("Messages", [])
            if not messages:
                return
            self.sqs.delete_message(QueueUrl=queue, ReceiptHandle=messages[0]["ReceiptHandle"])
            self.deliver(messages[0]["Body"])
        raise AssertionError("the export queue never drained")

    def rewire(self, **adapters: Any) -> None:
        """Rebuild the handler's trigger through the composition root, with these adapters (fakes)."""
        settings = ExporterSettings.from_environment()
        self.module.trigger = wiring.export_trigger(
            settings, pipeline=wiring.export_pipeline(settings, **adapters)
        )

    def deliver(self, body: str) -> dict[str, Any]:
        event = copy.deepcopy(load_event("exporter_job_message.json"))
        event["Records"][0]["body"] = body
        self.invocations += 1
        return self.module.lambda_handler(
            event, LocalLambdaContext("impex-exporter", timeout_seconds=self.timeout)
        )

    def run(self, **body: Any) -> dict[str, Any]:
        job = self.create(**body)
        self.drain()
        return self.api.call("GET", f"/jobs/{job['id']}/status").json()  # type: ignore[no-any-return]

    def download(self, status: dict[str, Any]) -> bytes:
        job = job_store(self.stack, 1).get(status["id"])
        obj = self.s3.get_object(Bucket=job.file.bucket, Key=job.file.key)
        assert obj["ContentDisposition"].startswith("attachment;")
        return obj["Body"].read()  # type: ignore[no-any-return]


@pytest.fixture
def exporter(api, stack) -> Exporter:
    response = api.call("PUT", "/datasets/items", body={"fields": FIELDS, "keys": ["sku"]})
    assert response.status == 201
    return Exporter(api, stack)


def test_csv_exports_every_record_as_it_is(exporter):
    # Given 120 records of every type
    records = [record(i) for i in range(1, 121)]
    exporter.seed(records)
    # When they are exported as CSV
    status = exporter.run(format="csv")
    # Then the file holds each record as it is, formulas neutralised
    assert status["status"] == "COMPLETED" and status["processedRows"] == status["totalRows"] == 120
    assert status["fileUrl"] and status["fileName"].endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(exporter.download(status).decode("utf-8"))))
    assert [r["sku"] for r in rows] == [r["sku"] for r in records]
    by_sku = {r["sku"]: r for r in rows}
    for rec in records:
        row = by_sku[rec["sku"]]
        expected_title = ("'" + rec["title"]) if rec["title"].startswith("=") else rec["title"]
        assert row["title"] == expected_title
        assert Decimal(row["price"]) == rec["price"] and int(row["qty"]) == rec["qty"]
        assert (
            row["active"] == ("true" if rec["active"] else "false")
            and row["added"] == rec["added"].isoformat()
        )
        assert json.loads(row["meta"], parse_float=Decimal) == rec["meta"]


def test_xlsx_json_jsonl_and_parquet_read_back_equal(exporter):
    # Given 40 records, exported as XLSX, JSON, JSON Lines and Parquet
    records = [record(i) for i in range(1, 41)]
    exporter.seed(records)
    xlsx = exporter.download(exporter.run(format="xlsx", options={"neutralizeFormulas": False}))
    # Then each file, read back with its own reader, holds the same typed values
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == tuple(f["name"] for f in FIELDS)
    assert [(r[0], r[1], r[2], r[4], r[5].date()) for r in rows[1:]] == [
        (rec["sku"], rec["title"], rec["qty"], rec["active"], rec["added"]) for rec in records
    ]
    assert all(
        abs(Decimal(str(r[3])) - rec["price"]) < Decimal("0.001")
        for r, rec in zip(rows[1:], records, strict=False)
    )
    as_json = json.loads(exporter.download(exporter.run(format="json")), parse_float=Decimal)
    as_jsonl = [
        json.loads(line, parse_float=Decimal)
        for line in exporter.download(exporter.run(format="jsonl")).decode().splitlines()
    ]
    assert as_json == as_jsonl
    assert [(o["sku"], o["qty"], o["price"], o["active"], o["meta"]) for o in as_json] == [
        (r["sku"], r["qty"], r["price"], r["active"], r["meta"]) for r in records
    ]
    table = pq.read_table(io.BytesIO(exporter.download(exporter.run(format="parquet")))).to_pylist()
    assert [(t["sku"], t["qty"], t["price"], t["added"], t["seenAt"]) for t in table] == [
        (r["sku"], r["qty"], r["price"], r["added"], r["seenAt"]) for r in records
    ]


def test_filters_and_projection(exporter):
    # Given 100 records
    records = [record(i) for i in range(1, 101)]
    exporter.seed(records)
    # When three filters and two fields are exported
    status = exporter.run(
        format="jsonl",
        fields=["qty", "sku"],
        filters=[
            {"field": "qty", "op": "gte", "value": 5},
            {"field": "active", "op": "eq", "value": True},
            {"field": "sku", "op": "begins_with", "value": "S0000"},
        ],
    )
    # Then exactly the matching records come out, with those fields in that order
    lines = [json.loads(line) for line in exporter.download(status).decode().splitlines()]
    expected = [
        {"qty": r["qty"], "sku": r["sku"]}
        for r in records
        if r["qty"] >= 5 and r["active"] and r["sku"].startswith("S0000")
    ]
    assert lines == expected and list(lines[0]) == ["qty", "sku"]
    assert status["processedRows"] == len(expected)


def test_gzip_csv_with_a_bom_and_delimiter(exporter):
    exporter.seed([record(i) for i in range(1, 6)])
    status = exporter.run(format="csv", options={"gzip": True, "bom": True, "delimiter": ";"})
    assert status["fileName"].endswith(".csv.gz")
    text = gzip.decompress(exporter.download(status)).decode("utf-8")
    assert text.startswith("\ufeffsku;title;")


def test_an_empty_result_completes_with_a_valid_file(exporter):
    for kind in ("csv", "json", "jsonl", "xlsx", "parquet"):
        status = exporter.run(format=kind, filters=[{"field": "qty", "op": "gt", "value": 100}])
        assert status["status"] == "COMPLETED" and status["processedRows"] == 0
        data = exporter.download(status)
        if kind == "json":
            assert json.loads(data) == []
        elif kind == "jsonl":
            assert data == b""
        elif kind == "csv":
            assert data.decode().strip() == ",".join(f["name"] for f in FIELDS)
        elif kind == "parquet":
            assert pq.read_table(io.BytesIO(data)).num_rows == 0


def test_a_large_export_goes_up_in_several_multipart_parts(exporter, stack, monkeypatch):
    records = [record(i, long_text=4000) for i in range(1, 5_001)]
    exporter.seed(records)
    status = exporter.run(format="csv")
    data = exporter.download(status)
    assert status["fileSize"] == len(data) > 2 * 8 * 1024 * 1024
    head = boto3.client("s3").head_object(Bucket=stack.physical["FilesBucket"], Key=_key(exporter, status))
    assert int(head["ETag"].strip('"').rsplit("-", 1)[1]) >= 3  # a multipart ETag names its part count
    assert sum(1 for _ in csv.reader(io.StringIO(data.decode()))) == 5_001
    assert not boto3.client("s3").list_multipart_uploads(Bucket=stack.physical["FilesBucket"]).get("Uploads")


def test_a_cancel_mid_export_leaves_no_file_and_no_orphan_parts(exporter, stack, monkeypatch):
    # Given a large CSV export, and a cancel that lands while its eighth page is read
    exporter.seed([record(i, long_text=3000) for i in range(1, 4_001)])
    job = exporter.create(format="csv")
    pages = {"n": 0}

    def page_then_cancel(page):
        pages["n"] += 1
        if pages["n"] == 8:
            exporter.api.call("POST", f"/jobs/{job['id']}/cancel")
        return page()

    monkeypatch.setenv("PAGE_SIZE", "200")
    exporter.rewire(records=hooked_records(around_page=page_then_cancel))
    # When the exporter runs it
    exporter.drain()
    status = exporter.api.call("GET", f"/jobs/{job['id']}/status").json()
    # Then it ends CANCELLED part-way, with no file and no multipart upload left
    assert status["status"] == "CANCELLED"
    assert 0 < status["result"]["rows"] < 4_000
    bucket = stack.physical["FilesBucket"]
    assert not boto3.client("s3").list_multipart_uploads(Bucket=bucket).get("Uploads")
    assert (
        not boto3.client("s3")
        .list_objects_v2(Bucket=bucket, Prefix=f"exports/acme/{job['id']}/")
        .get("Contents")
    )


def test_a_duplicate_message_changes_nothing(exporter):
    exporter.seed([record(i) for i in range(1, 4)])
    job = exporter.create(format="csv")
    body = json.dumps({"jobId": job["id"], "tenant": "acme"})
    exporter.deliver(body)
    first = exporter.api.call("GET", f"/jobs/{job['id']}/status").json()
    exporter.deliver(body)
    second = exporter.api.call("GET", f"/jobs/{job['id']}/status").json()
    assert first["status"] == "COMPLETED" and first["completedAt"] == second["completedAt"]


@pytest.mark.parametrize(
    ("kind", "options"), [("csv", {}), ("csv", {"gzip": True}), ("jsonl", {}), ("json", {})]
)
def test_an_export_continues_across_invocations_into_one_valid_file(api, stack, monkeypatch, kind, options):
    # Given invocations too short for the whole export (of one shard: test_sharding continues a
    # sharded export; ten shards here would read each merged page from ten partitions on moto)
    api.call("PUT", "/datasets/items", body={"fields": FIELDS, "keys": ["sku"], "shards": 1})
    monkeypatch.setenv("PAGE_SIZE", "200")
    exporter = Exporter(api, stack, timeout_seconds=0.8)
    records = [record(i, long_text=3000) for i in range(1, 5_001)]
    exporter.seed(records)
    # When it runs, handing over to continuations
    status = exporter.run(format=kind, options=options)
    # Then it completes over several invocations into one valid file, every record in order
    assert status["status"] == "COMPLETED", status
    assert exporter.invocations >= 3
    data = exporter.download(status)
    if options.get("gzip"):
        data = gzip.decompress(data)  # several gzip members, one file
    if kind == "csv":
        skus = [row["sku"] for row in csv.DictReader(io.StringIO(data.decode()))]
    elif kind == "jsonl":
        skus = [json.loads(line)["sku"] for line in data.decode().splitlines()]
    else:
        skus = [item["sku"] for item in json.loads(data)]
    assert skus == [r["sku"] for r in records]
    assert (
        not boto3.client("s3")
        .list_objects_v2(Bucket=stack.physical["FilesBucket"], Prefix=f"exports/acme/{status['id']}/.pending")
        .get("Contents")
    )


def test_a_failed_export_that_had_continued_is_retried_into_one_valid_file(api, stack, monkeypatch):
    # Given an export whose invocations are too short for it, with one attempt, whose reads fail
    # for good once it has handed over to a continuation (its upload was then aborted)
    api.call("PUT", "/datasets/items", body={"fields": FIELDS, "keys": ["sku"], "shards": 1})
    monkeypatch.setenv("PAGE_SIZE", "200")
    exporter = Exporter(api, stack, timeout_seconds=0.8)
    records = [record(i, long_text=3000) for i in range(1, 2_501)]
    exporter.seed(records)
    outage = {"on": False}

    def page_unless_down(page):
        if outage["on"]:
            raise ConnectionError("DynamoDB is unreachable")
        return page()

    exporter.rewire(records=hooked_records(around_page=page_unless_down))
    job = exporter.create(format="csv", options={"maxAttempts": 1})
    queue = stack.physical["ExportQueue"]
    while not outage["on"]:  # run it until it has handed over to a continuation
        messages = exporter.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1)["Messages"]
        exporter.sqs.delete_message(QueueUrl=queue, ReceiptHandle=messages[0]["ReceiptHandle"])
        exporter.deliver(messages[0]["Body"])
        outage["on"] = job_store(stack, 1).get(job["id"]).checkpoint is not None
    exporter.drain()
    failed = api.call("GET", f"/jobs/{job['id']}/status").json()
    assert failed["status"] == "FAILED", failed
    assert exporter.invocations >= 2
    # When the reads work again and it is retried
    outage["on"] = False
    assert api.call("POST", f"/jobs/{job['id']}/retry").status == 200
    exporter.drain()
    # Then it completes into one valid file with every record once, in order
    status = api.call("GET", f"/jobs/{job['id']}/status").json()
    assert status["status"] == "COMPLETED", status
    data = exporter.download(status).decode()
    assert [row["sku"] for row in csv.DictReader(io.StringIO(data))] == [r["sku"] for r in records]
    assert status["result"]["rows"] == len(records)


def test_an_xlsx_that_cannot_finish_in_one_invocation_fails_saying_why(api, stack, monkeypatch):
    api.call("PUT", "/datasets/items", body={"fields": FIELDS, "keys": ["sku"]})
    monkeypatch.setenv("PAGE_SIZE", "200")
    exporter = Exporter(api, stack, timeout_seconds=0.4)
    exporter.seed([record(i) for i in range(1, 8_001)])
    status = exporter.run(format="xlsx")
    assert status["status"] == "FAILED"
    assert "must finish within one invocation" in status["errorMessage"]
    assert not boto3.client("s3").list_multipart_uploads(Bucket=stack.physical["FilesBucket"]).get("Uploads")


def _key(exporter: Exporter, status: dict[str, Any]) -> str:
    store = job_store(exporter.stack, 1)
    return store.get(status["id"]).file.key


def test_the_job_and_its_status_are_consistent(exporter, stack):
    exporter.seed([record(1)])
    status = exporter.run(format="parquet")
    job = job_store(stack, 1).get(status["id"])
    assert job.status is JobStatus.COMPLETED
    assert job.file.content_type == "application/vnd.apache.parquet" and job.file.size == status["fileSize"]
    assert job.result["rows"] == 1 and job.checkpoint is None


def test_concurrent_exports_through_one_pipeline_keep_their_own_counts(api, stack, monkeypatch):
    # One pipeline instance serves every invocation of a process; the local runtime runs several at once.
    api.call("PUT", "/datasets/items", body={"fields": FIELDS, "keys": ["sku"]})
    exporter = Exporter(api, stack)
    # Given a small and a large export, whose pages are slow enough to interleave
    exporter.seed([record(i) for i in range(1, 3001)])
    small = exporter.create(format="csv", filters=[{"field": "sku", "op": "begins_with", "value": "S00000"}])
    large = exporter.create(format="csv")

    def slow_page(page):  # interleave the two runs page by page
        time.sleep(0.01)
        return page()

    monkeypatch.setenv("PAGE_SIZE", "100")
    store = job_store(stack, 1)
    pipeline = wiring.export_pipeline(
        ExporterSettings.from_environment(), records=hooked_records(around_page=slow_page)
    )
    # When one pipeline runs both at once
    threads = [
        threading.Thread(target=pipeline.run, args=(store.claim(job["id"]),)) for job in (small, large)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then each counts its own rows
    assert store.get(small["id"]).result["rows"] == 9  # S000001 … S000009
    assert store.get(large["id"]).result["rows"] == 3000


@pytest.mark.parametrize(
    "condition",
    [
        {"op": "gte", "value": "a$"},
        {"op": "lt", "value": "a$"},
        {"op": "between", "value": ["a", "a]"]},
        {"op": "begins_with", "value": "a#"},
        {"op": "begins_with", "value": "a\\"},
        {"op": "eq", "value": "a\\#b"},
    ],
    ids=["gte", "lt", "between", "prefix-hash", "prefix-backslash", "eq"],
)
def test_key_filters_are_exact_for_keys_holding_escaped_characters(exporter, condition):
    # Given keys holding the characters the stored sort key escapes ("#" and "\")
    keys = ["a", "a!", "a#", "a#b", "a$", "a\\", "a\\#b", "a\\\\", "a]", "a~", "b#"]
    exporter.seed([{"sku": key, "qty": 1} for key in keys])
    # When the export filters on the key
    status = exporter.run(format="jsonl", fields=["sku"], filters=[{"field": "sku", **condition}])
    # Then exactly the keys that match by their own text come out
    op, value = condition["op"], condition["value"]
    matches = {
        "gte": lambda k: k >= value,
        "lt": lambda k: k < value,
        "between": lambda k: value[0] <= k <= value[1],
        "begins_with": lambda k: k.startswith(value),
        "eq": lambda k: k == value,
    }[op]
    exported = {json.loads(line)["sku"] for line in exporter.download(status).decode().splitlines()}
    assert exported == {k for k in keys if matches(k)}
