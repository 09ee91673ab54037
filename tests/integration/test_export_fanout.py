"""One export, many workers, on moto: a large export of a sharded dataset is split between chunk
jobs, each reading its share of the partitions, and the last to end assembles one file from their
objects with S3-copied multipart parts. The file holds exactly the rows one worker writes."""

from __future__ import annotations

import gzip
import io
import json
from typing import Any

import boto3
import pytest

from impex import wiring
from impex.aws.files import FilesBucket
from impex.aws.multipart import MIN_PART, PART_SIZE
from impex.jobs.model import JobStatus, chunk_job_id
from impex.settings.workers import SweeperSettings
from tests.integration.conftest import CUSTOMERS, job_store
from tests.integration.importing import Importer
from tests.integration.test_export_pipeline import Exporter
from tests.integration.test_fanout import retry_dying_while_resuming
from tests.integration.test_sharding import people_with_trouble

WORKERS = 3


@pytest.fixture
def exporter(api, put_dataset, stack, monkeypatch) -> Exporter:
    put_dataset("sharded", shards=8, **CUSTOMERS)
    status = Importer(api, stack).run(people_with_trouble(900), dataset="sharded")
    assert status["status"] == "COMPLETED", status
    monkeypatch.setenv("EXPORT_FANOUT_WORKERS", str(WORKERS))
    monkeypatch.setenv("EXPORT_FANOUT_ROWS_PER_SHARD", "50")  # each shard holds about 100
    monkeypatch.setenv("RETRY_BASE_SECONDS", "0")
    return Exporter(api, stack)


def export(exporter: Exporter, **body: Any) -> dict[str, Any]:
    return exporter.run(dataset="sharded", **body)


def lines_of(exporter: Exporter, status: dict[str, Any], *, gzipped: bool = False) -> list[str]:
    data = exporter.download(status)
    if gzipped:
        data = gzip.decompress(data)  # one gzip member a chunk: a valid multi-member stream
    return data.decode().splitlines()


def split(exporter: Exporter, stack) -> None:
    """Deliver the export's own message only: it fans out, and its chunk jobs wait on the queue."""
    queue = stack.physical["ExportQueue"]
    first = exporter.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1)["Messages"][0]
    exporter.sqs.delete_message(QueueUrl=queue, ReceiptHandle=first["ReceiptHandle"])
    exporter.deliver(first["Body"])


def failed_after_one_share(exporter: Exporter, stack) -> tuple[dict[str, Any], str, str]:
    """A fanned-out CSV export that failed: one chunk wrote its share, the next was dead-lettered, and
    the last was stopped by that failure. The job, the completed chunk's id and the failed one's."""
    job = exporter.create(dataset="sharded", format="csv")
    split(exporter, stack)
    queue = stack.physical["ExportQueue"]
    first = exporter.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1)["Messages"][0]
    exporter.sqs.delete_message(QueueUrl=queue, ReceiptHandle=first["ReceiptHandle"])
    exporter.deliver(first["Body"])
    done = json.loads(first["Body"])["jobId"]
    lost = next(c.id for c in chunks_of(stack, job["id"]) if c.status is JobStatus.PENDING)
    body = json.dumps({"jobId": lost, "tenant": "acme"})
    exporter.sqs.send_message(QueueUrl=stack.physical["ExportDeadLetterQueue"], MessageBody=body)
    wiring.sweeper(SweeperSettings.from_environment()).sweep()
    exporter.drain()
    return job, done, lost


def key_of(line: str, file_format: str) -> str:
    return str(json.loads(line)["email"]) if file_format == "jsonl" else line.split(",")[0]


def chunks_of(stack, job_id: str, count: int = WORKERS) -> list[Any]:
    store = job_store(stack)
    return [store.get(chunk_job_id(job_id, index)) for index in range(count)]


@pytest.mark.parametrize("file_format", ["csv", "jsonl"])
def test_a_fanned_out_export_holds_exactly_the_rows_one_worker_writes(exporter, stack, file_format):
    # Given the file one worker writes, in key order
    ordered = export(exporter, format=file_format, options={"order": "key"})
    assert not chunks_of(stack, ordered["id"])[0]  # "key" order is one worker's
    # When the same export is left free to fan out
    fanned = export(exporter, format=file_format)
    # Then three chunk jobs each wrote a share, and the file has the same rows, the header once
    assert fanned["status"] == "COMPLETED", fanned
    chunks = chunks_of(stack, fanned["id"])
    assert all(c is not None and c.status is JobStatus.COMPLETED and c.processed_rows > 0 for c in chunks)
    one, many = lines_of(exporter, ordered), lines_of(exporter, fanned)
    if file_format == "csv":
        assert many[0] == one[0] and one[0].startswith("email,")
        one, many = one[1:], many[1:]
    assert sorted(many) == sorted(one) and len(many) > 800
    assert fanned["processedRows"] == fanned["result"]["rows"] == len(many)
    # And each chunk's share is in key order, the shares one after the other
    start = 0
    for chunk in chunks:
        share = [key_of(line, file_format) for line in many[start : start + chunk.processed_rows]]
        assert share == sorted(share)
        start += chunk.processed_rows
    assert start == len(many)
    # And the chunks' own objects are gone
    listed = boto3.client("s3").list_objects_v2(
        Bucket=stack.physical["FilesBucket"], Prefix=f"exports/acme/{fanned['id']}/parts/"
    )
    assert listed.get("KeyCount", 0) == 0


def test_a_gzip_csv_fans_out_into_one_valid_gzip_file(exporter):
    ordered = export(exporter, format="csv", options={"order": "key", "gzip": True})
    fanned = export(exporter, format="csv", options={"gzip": True})
    one = lines_of(exporter, ordered, gzipped=True)
    many = lines_of(exporter, fanned, gzipped=True)
    assert many[0] == one[0] and sorted(many[1:]) == sorted(one[1:])


def test_a_cancel_stops_every_chunk_and_leaves_no_file(exporter, stack, api):
    # Given a fanned-out export whose chunk jobs are queued
    job = exporter.create(dataset="sharded", format="csv")
    split(exporter, stack)
    assert all(c is not None for c in chunks_of(stack, job["id"]))
    # When it is cancelled and the queue drained
    assert api.call("POST", f"/jobs/{job['id']}/cancel").status == 202
    exporter.drain()
    # Then it is CANCELLED, every chunk ended, and nothing was assembled
    status = api.call("GET", f"/jobs/{job['id']}/status").json()
    assert status["status"] == "CANCELLED", status
    assert all(c.status.is_terminal for c in chunks_of(stack, job["id"]))
    assert status.get("fileUrl") is None


def test_a_dead_lettered_chunk_fails_the_export(exporter, stack, api):
    # Given a fanned-out export whose chunks are queued
    job = exporter.create(dataset="sharded", format="jsonl")
    split(exporter, stack)
    # When one chunk's message is dead-lettered and the sweeper drains it
    body = json.dumps({"jobId": chunk_job_id(job["id"], 1), "tenant": "acme"})
    exporter.sqs.send_message(QueueUrl=stack.physical["ExportDeadLetterQueue"], MessageBody=body)
    assert wiring.sweeper(SweeperSettings.from_environment()).sweep().actions["dead_lettered"] == 1
    exporter.drain()
    # Then the export failed naming the part, and no chunk is left running
    status = api.call("GET", f"/jobs/{job['id']}/status").json()
    assert status["status"] == "FAILED", status
    assert "part 2 of 3 failed" in status["errorMessage"]
    assert all(c.status.is_terminal for c in chunks_of(stack, job["id"]))


def test_a_failed_fanned_out_export_is_retried_keeping_the_shares_already_written(exporter, stack, api):
    # Given the rows one worker exports
    ordered = export(exporter, format="csv", options={"order": "key"})
    # And a fanned-out export of them that failed: one chunk wrote its share, the next was
    # dead-lettered, and the last was stopped by that failure
    job, done, lost = failed_after_one_share(exporter, stack)
    assert api.call("GET", f"/jobs/{job['id']}/status").json()["status"] == "FAILED"
    statuses = {c.id: c.status for c in chunks_of(stack, job["id"])}
    assert statuses[done] is JobStatus.COMPLETED and statuses[lost] is JobStatus.FAILED
    assert JobStatus.CANCELLED in statuses.values()
    kept = job_store(stack).get(done)
    # When it is retried
    assert api.call("POST", f"/jobs/{job['id']}/retry").status == 200
    exporter.drain()
    # Then it completed with exactly the rows one worker writes, the share written before kept as it was
    status = api.call("GET", f"/jobs/{job['id']}/status").json()
    assert status["status"] == "COMPLETED", status
    assert job_store(stack).get(done).completed_at == kept.completed_at
    one, many = lines_of(exporter, ordered), lines_of(exporter, status)
    assert many[0] == one[0] and sorted(many[1:]) == sorted(one[1:])
    assert status["processedRows"] == status["result"]["rows"] == len(one) - 1


@pytest.mark.parametrize("marked", [True, False], ids=["resume-marked", "unmarked-as-before"])
def test_a_worker_killed_while_resuming_a_retried_export_never_completes_it_short(
    exporter, stack, api, monkeypatch, marked
):
    # Given the rows one worker exports
    ordered = export(exporter, format="csv", options={"order": "key"})
    # And a fanned-out export of them that failed: one chunk wrote its share, the next was
    # dead-lettered, and the last was stopped by that failure
    job, _, _ = failed_after_one_share(exporter, stack)
    assert api.call("GET", f"/jobs/{job['id']}/status").json()["status"] == "FAILED"
    # When it is retried and the worker resuming it dies once it has put one chunk back on its way
    retry_dying_while_resuming(exporter, stack, api, monkeypatch, job["id"])
    statuses = sorted(c.status.value for c in chunks_of(stack, job["id"]))
    assert statuses == ["CANCELLED", "COMPLETED", "PENDING"], statuses
    if not marked:  # as a retry made before resumes were marked left it
        boto3.client("dynamodb").update_item(
            TableName=stack.physical["JobsTable"],
            Key={"id": {"S": job["id"]}},
            UpdateExpression="REMOVE resumePending",
        )
    # And the sweeper looks once the job has been quiet too long, and the chunks run
    wiring.sweeper(SweeperSettings.from_environment()).sweep(now="2099-01-01T00:00:00Z")
    exporter.drain()
    status = api.call("GET", f"/jobs/{job['id']}/status").json()
    if marked:
        # Then the sweeper finished the resume: the file holds exactly the rows one worker writes
        assert status["status"] == "COMPLETED", status
        one, many = lines_of(exporter, ordered), lines_of(exporter, status)
        assert many[0] == one[0] and sorted(many[1:]) == sorted(one[1:])
    else:
        # Then the stopped chunk failed the export, saying so: never a file without its share
        assert status["status"] == "FAILED", status
        assert "stopped before it ended; retry the job" in status["errorMessage"], status
        assert status.get("downloadUrl") is None


def test_composed_objects_are_their_concatenation_with_every_part_but_the_last_of_5_mb(stack):
    # Given objects of awkward sizes: large, small between large ones, empty, a small last one
    s3 = boto3.client("s3")
    bucket = stack.physical["FilesBucket"]
    files = FilesBucket(s3, bucket)
    mb = 1024 * 1024
    sizes = [6 * mb + 3, 1 * mb, 0, 13 * mb, 4 * mb, 2 * mb + 7, 5 * mb, 100]
    sources, whole = [], io.BytesIO()
    for number, size in enumerate(sizes):
        data = bytes([number + 1]) * size
        key = f"exports/acme/composed/parts/{number:03d}"
        s3.put_object(Bucket=bucket, Key=key, Body=data)
        sources.append(key)
        whole.write(data)
    parts: list[tuple[str, int]] = []

    def copied(params: dict[str, Any], **_: Any) -> None:
        first, last = params["CopySourceRange"].removeprefix("bytes=").split("-")
        parts.append(("copied", int(last) - int(first) + 1))

    s3.meta.events.register("before-parameter-build.s3.UploadPartCopy", copied)
    s3.meta.events.register(
        "before-parameter-build.s3.UploadPart",
        lambda params, **_: parts.append(("read", len(params["Body"]))),
    )
    # When they are composed into one object
    size = files.compose("exports/acme/composed/file.bin", sources, content_type="x/y", file_name="f.bin")
    # Then it is their concatenation
    got = s3.get_object(Bucket=bucket, Key="exports/acme/composed/file.bin")["Body"].read()
    assert size == len(got) == sum(sizes) and got == whole.getvalue()
    # And every part but the last is at least 5 MB, and S3 copied every large object but at most
    # one part's worth of it (read to fill a part after a small object)
    assert all(length >= MIN_PART for _, length in parts[:-1]), parts
    copied = sum(length for kind, length in parts if kind == "copied")
    assert copied >= sum(max(0, size - PART_SIZE) for size in sizes if size >= MIN_PART) > 0, parts
