"""Imports that outlive one invocation, get cancelled, arrive as dropped files, or hit transient errors."""

from __future__ import annotations

import gzip
import random

import boto3
import pytest

from impex import wiring
from impex.jobs.model import JobStatus
from impex.pipelines.common import RunOutcome
from impex.settings.workers import ImporterSettings
from tests.fakes import HookedJobStore, hooked_records
from tests.integration.conftest import job_store
from tests.integration.importing import Importer, s3_event, sqs_event

HEADER = "email,name,age,balance,active,signedUp\n"


def people(count: int, seed: int = 7) -> tuple[bytes, dict[str, dict]]:
    """A CSV of ``count`` people (some names with quoted newlines) and the records it should produce."""
    rng = random.Random(seed)
    lines, expected = [HEADER], {}
    for i in range(count):
        name = f"Person {i}" if i % 97 else f"Person {i}\nsecond line"
        age = rng.randint(0, 120)
        lines.append(f'p{i}@x.io,"{name}",{age},{i}.25,{"yes" if i % 2 else "no"},2024-01-{1 + i % 28:02d}\n')
        expected[f"p{i}@x.io"] = {
            "email": f"p{i}@x.io",
            "name": name,
            "age": age,
            "active": bool(i % 2),
            "signedUp": f"2024-01-{1 + i % 28:02d}",
        }
    return "".join(lines).encode(), expected


def assert_table_matches(importer: Importer, expected: dict[str, dict]) -> None:
    records = importer.records()
    assert len(records) == len(expected)
    for key, record in expected.items():
        stored = records[key]
        assert {k: stored[k] for k in record} == record, key


@pytest.fixture
def importer(api, put_dataset, stack) -> Importer:
    put_dataset()
    return Importer(api, stack)


def test_a_20k_row_file_continues_across_invocations_exactly(api, put_dataset, stack, monkeypatch):
    # Given an importer whose invocations time out after 0.8 s (a quarter is kept in reserve)
    put_dataset()
    importer = Importer(api, stack, timeout_seconds=0.8)
    content, expected = people(20_000)
    # When the file is imported
    status = importer.run(content)
    # Then it took several invocations, and the table equals the file: no row twice, none skipped
    assert status["status"] == "COMPLETED", status
    assert importer.invocations >= 3
    assert status["result"]["created"] == 20_000 and status["result"]["failed"] == 0
    assert status["processedRows"] == 20_000
    assert_table_matches(importer, expected)


def test_a_gzip_file_continues_by_skipping_what_was_done(api, put_dataset, stack):
    put_dataset()
    importer = Importer(api, stack, timeout_seconds=0.6)
    content, expected = people(8_000, seed=3)
    status = importer.run(gzip.compress(content), file_name="people.csv.gz")
    assert status["status"] == "COMPLETED"
    assert importer.invocations >= 2
    assert_table_matches(importer, expected)


@pytest.mark.parametrize("split", [False, True], ids=["one-worker", "split-for-fan-out"])
def test_a_gzip_file_no_invocation_can_get_back_into_fails_instead_of_continuing_for_ever(
    api, put_dataset, stack, monkeypatch, split
):
    # Given a gzip file of millions of blank lines before its one row (a few kilobytes upload), and
    # invocations of 0.6 s: each continuation reads a gzip file again from its start, so the second
    # spends all its time getting back to where the first stopped, and so would every one after it
    put_dataset()
    importer = Importer(api, stack, timeout_seconds=0.6)
    if split:  # the splitting pass of a fanned-out import reads the file the same way
        monkeypatch.setenv("FANOUT_THRESHOLD_BYTES", "1")
        importer.rewire()
    content = gzip.compress(
        b"email,name,age,balance,active,signedUp\n" + b"\n" * 20_000_000 + b"z@x.io,Z,1,1,1,\n"
    )
    assert len(content) < 100_000
    # When it is imported
    status = importer.run(content, file_name="blank.csv.gz")
    # Then it failed after the continuation that could not get back, saying why and what to do (it
    # used to hand over to another continuation for ever, each re-reading the same lines)
    assert status["status"] == "FAILED", status
    assert importer.invocations <= 3
    message = status["errorMessage"]
    assert "again from its start" in message and "upload it uncompressed" in message, message


def test_row_errors_from_every_invocation_reach_the_report(api, put_dataset, stack):
    put_dataset()
    importer = Importer(api, stack, timeout_seconds=0.6)
    content, _ = people(6_000, seed=5)
    content += b"".join(f"bad{i}@x.io,B,old,1,1,\n".encode() for i in range(3))
    status = importer.run(content)
    assert status["status"] == "COMPLETED" and status["result"]["failed"] == 3
    location = api.call("GET", f"/jobs/{status['id']}/download", query={"file": "errors"}).headers["location"]
    assert "errors.csv" in location
    job = job_store(stack, 1).get(status["id"])
    report = boto3.client("s3").get_object(Bucket=job.error_report.bucket, Key=job.error_report.key)
    lines = report["Body"].read().decode().splitlines()
    assert len(lines) == 4 and lines[0].startswith("row,error,")


def uploaded_job(importer: Importer, stack, rows: int, **settings: object):
    """An uploaded import of ``rows`` people, its job store, and the settings of a pipeline to run it."""
    created = importer.create()
    content, expected = people(rows)
    boto3.client("s3").put_object(Bucket=importer.bucket, Key=created["upload"]["key"], Body=content)
    return created, expected, job_store(stack, 1), ImporterSettings.from_environment(**settings)


@pytest.mark.parametrize("in_flight", [1, 3])
def test_a_cancel_stops_the_import_within_the_batches_in_flight(importer, stack, in_flight):
    # Given a pipeline that writes 10 rows per batch, with 1 or 3 batches in flight, and a cancel
    # that lands during the first batch's writes
    created, _, store, settings = uploaded_job(
        importer, stack, rows=100, batch_rows=10, batches_in_flight=in_flight
    )

    def put_then_cancel(put_many, items):
        put_many(items)
        if store.get(created["job"]["id"]).status is JobStatus.PROCESSING:
            importer.api.call("POST", f"/jobs/{created['job']['id']}/cancel")

    pipeline = wiring.import_pipeline(settings, records=hooked_records(around_put=put_then_cancel))
    job = store.claim(created["job"]["id"])
    # When it runs
    outcome = pipeline.run(job)
    # Then it stopped before sending a batch after the ones in flight: CANCELLED, with exactly what
    # was written in its result (with one in flight: that first batch alone)
    status = importer.status(created["job"]["id"])
    assert outcome is RunOutcome.STOPPED and status["status"] == "CANCELLED"
    assert status["result"]["written"] == len(importer.records())
    assert 10 <= status["result"]["written"] <= 10 * in_flight
    if in_flight == 1:
        assert status["result"]["written"] == 10
    # and the result carries the mapping in use, as a completed job's does
    assert status["result"]["mapping"]["email"] == "email" and len(status["result"]["mapping"]) > 1


def test_a_cancelled_import_ends_with_exact_counts_and_every_row_error_so_far(importer, stack):
    # Given 100 rows, every fifth one bad, written 10 a batch, and a cancel during the third batch
    lines = [HEADER] + [
        f"p{i}@x.io,P{i},{'old' if i % 5 == 0 else 30},1,yes,2024-01-01\n" for i in range(100)
    ]
    created = importer.create()
    boto3.client("s3").put_object(
        Bucket=importer.bucket, Key=created["upload"]["key"], Body="".join(lines).encode()
    )
    store, puts = job_store(stack, 1), []

    def put_then_cancel(put_many, items):
        put_many(items)
        puts.append(len(items))
        if len(puts) == 3:
            importer.api.call("POST", f"/jobs/{created['job']['id']}/cancel")

    settings = ImporterSettings.from_environment(batch_rows=10)
    pipeline = wiring.import_pipeline(settings, records=hooked_records(around_put=put_then_cancel))
    # When it runs
    assert pipeline.run(store.claim(created["job"]["id"])) is RunOutcome.STOPPED
    # Then the job is CANCELLED by its worker in one write, with counts that match the table and the
    # error report, and its mapping
    status = importer.status(created["job"]["id"])
    result = status["result"]
    assert status["status"] == "CANCELLED" and status["updatedAt"] == status["completedAt"]
    assert result["written"] == sum(puts) == len(importer.records())
    assert status["processedRows"] == result["written"] + result["failed"] == 10 * len(puts)
    assert result["failed"] == len(puts) * 2 and result["mapping"]["age"] == "age"
    report = store.get(created["job"]["id"]).error_report
    body = boto3.client("s3").get_object(Bucket=report.bucket, Key=report.key)["Body"].read().decode()
    assert len(body.splitlines()) == 1 + result["failed"]


def test_progress_is_written_between_batches_never_per_row(importer, stack):
    # Given a pipeline that writes 50 rows a batch and may record progress after any batch
    created, expected, store, settings = uploaded_job(
        importer, stack, rows=500, batch_rows=50, progress_every_seconds=0
    )
    updates: list[dict] = []
    recording = HookedJobStore(stack.physical["JobsTable"], on_progress=updates.append)
    pipeline = wiring.import_pipeline(settings, jobs=recording)
    job = store.claim(created["job"]["id"])
    # When it runs
    assert pipeline.run(job) is RunOutcome.COMPLETED
    # Then progress was recorded once per batch (10 times for 500 rows), each time covering whole
    # batches whose writes had finished, with an estimate of the total
    assert [update["processed_rows"] for update in updates] == list(range(50, 501, 50))
    assert all(update["checkpoint"]["written"] == update["processed_rows"] for update in updates)
    assert all(update["total_rows"] >= update["processed_rows"] for update in updates)
    assert importer.status(created["job"]["id"])["status"] == "COMPLETED"
    assert_table_matches(importer, expected)


def test_a_file_over_the_row_limit_fails_saying_what_was_already_written(importer, stack):
    # Given a limit of 250 rows, 100-row batches, and a file of 500 rows
    created, _, store, settings = uploaded_job(importer, stack, rows=500, batch_rows=100, max_rows=250)
    job = store.claim(created["job"]["id"])
    # When it runs
    assert wiring.import_pipeline(settings).run(job) is RunOutcome.FAILED
    # Then it fails at the third batch, and says how many rows the first two had written
    status = importer.status(created["job"]["id"])
    assert status["status"] == "FAILED"
    assert status["errorMessage"] == (
        "the file has more than 250 rows, the limit; 200 rows had been written before it stopped"
    )
    assert status["result"]["written"] == len(importer.records()) == 200


def deliver_twice(importer: Importer, stack) -> None:
    """Deliver the notification S3 (moto) actually sent, and then the same message again."""
    sqs = boto3.client("sqs")
    queue = stack.physical["ImportQueue"]
    bodies = [
        m["Body"]
        for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if "ObjectCreated" in m["Body"]
    ]
    assert bodies, "S3 sent no notification to the import queue"
    for body in bodies * 2:
        importer.invoke(sqs_event(body))


def test_a_dropped_file_becomes_an_import_job(importer, stack, api):
    # Given a file dropped under incoming/ with an impex-mode metadata option
    key = "incoming/acme/customers/2026/november.csv"
    boto3.client("s3").put_object(
        Bucket=importer.bucket,
        Key=key,
        Body=(HEADER + "d@x.io,Drop,5,1,1,\n").encode(),
        Metadata={"impex-mode": "insert"},
    )
    # When its notification arrives twice
    deliver_twice(importer, stack)
    # Then it became one import job, which ran with that option
    jobs = api.call("GET", "/jobs").json()["jobs"]
    assert len(jobs) == 1
    assert jobs[0]["status"] == "COMPLETED" and jobs[0]["fileName"] == "november.csv"
    assert jobs[0]["result"]["mode"] == "insert"
    assert importer.records()["d@x.io"]["name"] == "Drop"


def test_a_dropped_file_for_an_unknown_dataset_fails_saying_so(importer, api, stack):
    key = "incoming/acme/nothing/file.csv"
    boto3.client("s3").put_object(Bucket=importer.bucket, Key=key, Body=b"a\n1\n")
    deliver_twice(importer, stack)
    [job] = api.call("GET", "/jobs").json()["jobs"]
    assert job["status"] == "FAILED"
    assert "dataset 'nothing' does not exist" in job["errorMessage"]


def test_dropped_file_metadata_that_is_invalid_fails_the_job(importer, api, stack):
    key = "incoming/acme/customers/x.csv"
    boto3.client("s3").put_object(
        Bucket=importer.bucket, Key=key, Body=b"email\na@x.io\n", Metadata={"impex-mode": "replace-all"}
    )
    deliver_twice(importer, stack)
    [job] = api.call("GET", "/jobs").json()["jobs"]
    assert job["status"] == "FAILED" and "impex-* metadata is invalid" in job["errorMessage"]


def test_an_object_impex_does_not_own_is_ignored(importer, api):
    result = importer.invoke(s3_event(importer.bucket, "uploads/acme/not-a-job/x.csv"))
    assert result == {"batchItemFailures": []}
    assert api.call("GET", "/jobs").json()["jobs"] == []


def test_a_transient_failure_is_retried_from_the_checkpoint(api, put_dataset, stack, monkeypatch):
    from botocore.exceptions import ClientError

    # Given an upload, and a DynamoDB whose first batch write fails with a 5xx
    put_dataset()
    monkeypatch.setenv("RETRY_BASE_SECONDS", "0")
    importer = Importer(api, stack)
    created = importer.create()
    content, expected = people(50)
    boto3.client("s3").put_object(Bucket=importer.bucket, Key=created["upload"]["key"], Body=content)
    calls = {"n": 0}

    def flaky(put_many, items):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "boom"}}, "BatchWriteItem")
        put_many(items)

    importer.rewire(records=hooked_records(around_put=flaky))
    # When the import runs, then the job goes back to PENDING to retry
    importer.invoke(s3_event(importer.bucket, created["upload"]["key"]))
    after_failure = importer.status(created["job"]["id"])
    assert after_failure["status"] == "PENDING" and "retrying" in after_failure["errorMessage"]
    # The retry message is delayed on SQS; deliver it now
    # When its delayed retry message is delivered, then it completes with the whole file
    queue = stack.physical["ImportQueue"]
    sqs = boto3.client("sqs")
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"DelaySeconds": "0"})
    import time

    deadline = time.time() + 30
    while importer.status(created["job"]["id"])["status"] != "COMPLETED" and time.time() < deadline:
        for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
            if "jobId" in message["Body"]:
                importer.invoke(sqs_event(message["Body"]))
        time.sleep(0.2)
    final = importer.status(created["job"]["id"])
    assert final["status"] == "COMPLETED"
    assert_table_matches(importer, expected)
