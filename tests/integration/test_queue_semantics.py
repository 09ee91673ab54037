"""Queue semantics on moto: the sweeper, dead letters, crash recovery, injected errors, cancellation
that nothing resurrects, long polling, job events, and fairness between tenants."""

from __future__ import annotations

import copy
import json
import os
import random
import threading
import time
from datetime import timedelta

import boto3
import pytest

from impex import wiring
from impex.aws import clients
from impex.clock import iso, utc_now
from impex.jobs.model import JobOutcome, JobStatus
from impex.jobs.store import JobStore
from impex.local.context import LocalLambdaContext
from impex.settings.workers import ExporterSettings, SweeperSettings
from tests.conftest import load_event
from tests.fakes import FlakyFilesBucket, HookedJobStore, ThrottlingDynamoDB, hooked_records
from tests.integration.conftest import job_store, load_function
from tests.integration.importing import Importer, s3_event, sqs_event

HEADER = "email,name,age,balance,active,signedUp\n"
STRESS_SEEDS = int(os.environ.get("IMPEX_STRESS_SEEDS", "50"))


class WorkerCrash(BaseException):
    """Not an Exception: nothing in the worker catches it, as when a process dies."""


@pytest.fixture
def store(stack) -> JobStore:
    return job_store(stack, 1)


def age(stack, job_id: str, **fields: str) -> None:
    """Move a job's clock back, as if time had passed."""
    table = boto3.resource("dynamodb").Table(stack.physical["JobsTable"])
    names = {f"#{k}": k for k in fields}
    values = {f":{k}": v for k, v in fields.items()}
    table.update_item(
        Key={"id": job_id},
        UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in fields),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def sweep(now_offset_seconds: float = 0) -> dict:
    sweeper = load_function("sweeper")
    event = copy.deepcopy(load_event("sweeper_schedule.json"))
    event["time"] = iso(utc_now() + timedelta(seconds=now_offset_seconds)).replace(".000", "")
    return sweeper.lambda_handler(event, LocalLambdaContext("impex-sweeper", timeout_seconds=120))


def messages(stack, queue: str) -> list[dict]:
    sqs = boto3.client("sqs")
    found = sqs.receive_message(QueueUrl=stack.physical[queue], MaxNumberOfMessages=10).get("Messages", [])
    for message in found:
        sqs.delete_message(QueueUrl=stack.physical[queue], ReceiptHandle=message["ReceiptHandle"])
    return [json.loads(m["Body"]) for m in found]


@pytest.fixture
def importer(api, put_dataset, stack) -> Importer:
    put_dataset()
    return Importer(api, stack)


# ---- the sweeper -------------------------------------------------------------------------------


def test_a_stuck_job_is_requeued_from_its_checkpoint_then_completes(importer, store, stack):
    # Given a job claimed by a worker that then died, its message gone with it
    created = importer.create()
    boto3.client("s3").put_object(
        Bucket=importer.bucket, Key=created["upload"]["key"], Body=(HEADER + "a@x.io,A,1,1,1,\n").encode()
    )
    messages(stack, "ImportQueue")  # the S3 notification "was lost" with the crashed worker
    job = store.claim(created["job"]["id"])
    assert job.attempts == 1
    # When the sweeper runs after StuckAfterSeconds, then it requeues the job with a fresh message
    report = sweep(now_offset_seconds=301)
    assert report["actions"] == {"stuck_requeued": 1}
    requeued = store.get(job.id)
    assert requeued.status is JobStatus.PENDING and requeued.last_error.startswith("stalled")
    assert messages(stack, "ImportQueue") == [{"jobId": job.id, "tenant": "acme"}]
    # When that message is delivered, then the second attempt completes it
    importer.invoke(sqs_event(json.dumps({"jobId": job.id, "tenant": "acme"})))
    done = store.get(job.id)
    assert done.status is JobStatus.COMPLETED and done.attempts == 2


def test_a_stuck_job_fails_once_it_has_used_its_attempts(importer, store, stack):
    created = importer.create(options={"maxAttempts": 1})
    store.claim(created["job"]["id"])
    assert sweep(now_offset_seconds=301)["actions"] == {"stuck_failed": 1}
    failed = store.get(created["job"]["id"])
    assert failed.status is JobStatus.FAILED
    assert failed.error_message.startswith(
        "the importer stopped while reading this file on each of its 1 attempts"
    )
    assert failed.last_error.startswith("stalled")


def test_a_live_worker_is_never_taken_back(importer, store, stack):
    # Given a sweeper that looked at a PROCESSING job just before its worker heartbeated
    created = importer.create()
    job = store.claim(created["job"]["id"])
    stale_view = store.get(job.id)
    time.sleep(0.002)
    store.record_progress(job.id, processed_rows=5)
    sweeper = wiring.sweeper(
        SweeperSettings.from_environment(),
        jobs=HookedJobStore(stack.physical["JobsTable"], active_view=[stale_view]),
    )
    # When it sweeps as if the job had been silent for too long
    report = sweeper.sweep(now=utc_now() + timedelta(seconds=301))
    # Then its conditional write sees the newer heartbeat: the job stays with its worker
    assert not report.actions and store.get(job.id).status is JobStatus.PROCESSING


def test_an_upload_that_never_arrives_fails_the_import(importer, store, stack):
    created = importer.create()
    old = iso(utc_now() - timedelta(hours=1))
    age(stack, created["job"]["id"], createdAt=old, heartbeatAt=old)
    assert sweep()["actions"] == {"uploads_missing": 1}
    failed = store.get(created["job"]["id"])
    assert failed.status is JobStatus.FAILED and "never uploaded" in failed.error_message


def test_a_recent_import_without_its_upload_is_left_alone(importer, store, stack):
    created = importer.create()
    assert sweep(now_offset_seconds=60)["actions"] == {}
    assert store.get(created["job"]["id"]).status is JobStatus.PENDING


def test_a_lost_export_message_is_sent_again(api, put_dataset, store, stack):
    put_dataset()
    job = api.call("POST", "/exports", body={"dataset": "customers", "format": "csv"}).json()["job"]
    messages(stack, "ExportQueue")  # lost
    old = iso(utc_now() - timedelta(hours=1))
    age(stack, job["id"], heartbeatAt=old)
    assert sweep()["actions"] == {"messages_resent": 1}
    assert messages(stack, "ExportQueue") == [{"jobId": job["id"], "tenant": "acme"}]
    assert sweep()["actions"] == {}  # idempotent: the heartbeat was refreshed


def test_two_sweeps_at_once_requeue_a_job_once(importer, store, stack):
    created = importer.create()
    store.claim(created["job"]["id"])
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(sweep(now_offset_seconds=301))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r["actions"].get("stuck_requeued", 0) for r in results) == 1
    assert len(messages(stack, "ImportQueue")) <= 2  # the one requeue (plus nothing else)


def test_process_sweeps_only_the_callers_jobs(importer, store, stack, api):
    mine = importer.create(tenant="acme")
    store.claim(mine["job"]["id"])
    age(stack, mine["job"]["id"], heartbeatAt=iso(utc_now() - timedelta(hours=1)))
    assert (
        api.call("POST", "/jobs/process", tenant="globex").json()["message"].endswith("no stuck or lost jobs")
    )
    result = api.call("POST", "/jobs/process", tenant="acme").json()
    assert result == {"success": True, "message": "swept the caller's jobs: 1 stuck requeued"}


# ---- dead letters and poison messages ----------------------------------------------------------


def test_a_poison_message_ends_in_the_dlq_and_its_job_fails_with_the_reason(api, put_dataset, store, stack):
    put_dataset()
    # Given an export whose message every invocation fails to process
    job = api.call("POST", "/exports", body={"dataset": "customers", "format": "csv"}).json()["job"]
    sqs = boto3.client("sqs")
    queue = stack.physical["ExportQueue"]
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": "0"})
    # Five invocations that died without deleting the message (maxReceiveCount is 5)
    for _ in range(5):
        assert sqs.receive_message(QueueUrl=queue).get("Messages")
    assert not sqs.receive_message(QueueUrl=queue).get("Messages")  # redriven to the DLQ
    # When the sweeper drains the dead-letter queue, then the job fails saying why
    report = sweep()
    assert report["actions"] == {"dead_lettered": 1}
    failed = store.get(job["id"])
    assert failed.status is JobStatus.FAILED and "dead-letter queue" in failed.error_message
    assert not sqs.receive_message(QueueUrl=stack.physical["ExportDeadLetterQueue"]).get("Messages")


def test_a_dead_lettered_upload_event_fails_its_import(importer, store, stack):
    created = importer.create()
    body = json.loads(s3_event(importer.bucket, created["upload"]["key"])["Records"][0]["body"])
    boto3.client("sqs").send_message(
        QueueUrl=stack.physical["ImportDeadLetterQueue"], MessageBody=json.dumps(body)
    )
    assert sweep()["actions"] == {"dead_lettered": 1}
    assert store.get(created["job"]["id"]).status is JobStatus.FAILED


def test_a_cancelled_job_is_never_resurrected(importer, store, stack, api):
    # Given an import cancelled before its upload arrived
    created = importer.create()
    key = created["upload"]["key"]
    api.call("POST", f"/jobs/{created['job']['id']}/cancel")
    boto3.client("s3").put_object(
        Bucket=importer.bucket, Key=key, Body=(HEADER + "a@x.io,A,1,1,1,\n").encode()
    )
    # When a late upload event, a late message and a dead letter for it all arrive, and the sweeper runs
    importer.invoke(s3_event(importer.bucket, key))  # a late upload event
    importer.invoke(
        sqs_event(json.dumps({"jobId": created["job"]["id"], "tenant": "acme"}))
    )  # a late message
    boto3.client("sqs").send_message(
        QueueUrl=stack.physical["ImportDeadLetterQueue"],
        MessageBody=json.dumps({"jobId": created["job"]["id"], "tenant": "acme"}),
    )
    sweep(now_offset_seconds=3600)
    # Then it stays CANCELLED and nothing was written
    job = store.get(created["job"]["id"])
    assert job.status is JobStatus.CANCELLED and job.attempts == 0
    assert importer.records() == {}


def test_a_cancel_requested_of_a_dead_worker_ends_through_the_sweeper(importer, store, stack, api):
    # Given an import whose worker checkpointed, was asked to cancel, and died before it saw the request
    created = importer.create()
    boto3.client("s3").put_object(
        Bucket=importer.bucket, Key=created["upload"]["key"], Body=(HEADER + "a@x.io,A,1,1,1,\n").encode()
    )
    messages(stack, "ImportQueue")  # lost with the worker
    job = store.claim(created["job"]["id"])
    checkpoint = {"created": 0, "header": ["email"], "mapping": {"email": "email"}}
    store.record_progress(job.id, processed_rows=0, checkpoint=checkpoint)
    assert api.call("POST", f"/jobs/{job.id}/cancel").status == 202
    # When the sweeper finds it stuck, and its message reaches a worker
    assert sweep(now_offset_seconds=301)["actions"] == {"stuck_requeued": 1}
    importer.drain()
    # Then that worker ends it CANCELLED from the checkpoint, without importing the file
    final = store.get(job.id)
    assert final.status is JobStatus.CANCELLED and final.result["written"] == 0
    assert final.result["mapping"] == {"email": "email"} and final.attempts == 2
    assert importer.records() == {}


# ---- crash recovery ------------------------------------------------------------------------------


def _people(seed: int) -> tuple[bytes, dict[str, str]]:
    rng = random.Random(seed)
    rows = rng.randint(60, 160)
    names = {f"p{i}@x.io": f"N{seed}-{i}" for i in range(rows)}
    lines = [HEADER] + [
        f"{email},{name},{rng.randint(0, 99)},1.5,yes,2024-01-01\n" for email, name in names.items()
    ]
    return "".join(lines).encode(), names


@pytest.mark.parametrize("seed", range(STRESS_SEEDS))
def test_a_worker_killed_mid_job_is_recovered_exactly(api, put_dataset, stack, store, monkeypatch, seed):
    # Given a file, and a worker that dies at a random batch boundary (or as if timed out)
    put_dataset()
    monkeypatch.setenv("BATCH_ROWS", "20")
    importer = Importer(api, stack)
    content, names = _people(seed)
    created = importer.create()
    rng = random.Random(seed * 7919)
    crash_at = rng.randint(1, max(1, len(names) // 20))
    how = rng.choice(["write", "progress"])
    calls = {"writes": 0}

    def dying_put(put_many, items):
        calls["writes"] += 1
        if how == "write" and calls["writes"] == crash_at:
            put_many(items[: len(items) // 2])  # half a batch reached the table
            raise WorkerCrash
        put_many(items)

    def dying_check(job_id):
        if how == "progress" and calls["writes"] >= crash_at:
            raise WorkerCrash  # e.g. the invocation timed out between batches

    importer.rewire(
        records=hooked_records(around_put=dying_put),
        jobs=HookedJobStore(stack.physical["JobsTable"], before_status_check=dying_check),
    )
    boto3.client("s3").put_object(Bucket=importer.bucket, Key=created["upload"]["key"], Body=content)
    messages(stack, "ImportQueue")
    with pytest.raises(WorkerCrash):
        importer.invoke(s3_event(importer.bucket, created["upload"]["key"]))
    assert store.get(created["job"]["id"]).status is JobStatus.PROCESSING  # stuck, as after a crash
    # When the sweeper finds it and the requeued message is delivered to a healthy worker
    importer.rewire()
    assert sweep(now_offset_seconds=301)["actions"] == {"stuck_requeued": 1}
    importer.drain()
    # Then it completes, and the table holds exactly the file
    final = store.get(created["job"]["id"])
    assert final.status is JobStatus.COMPLETED and final.attempts == 2
    assert {k: v["name"] for k, v in importer.records().items()} == names


# ---- injected errors -------------------------------------------------------------------------------


def test_throttling_and_unprocessed_items_are_retried_and_nothing_is_lost(importer):
    # Given a DynamoDB that throttles the first batch write and leaves most of the second unprocessed
    client = ThrottlingDynamoDB(clients.dynamodb_fast(), throttled=1, partial=1)
    importer.rewire(records=hooked_records(client=client, backoff=lambda _: 0.0))
    content = (HEADER + "".join(f"t{i}@x.io,T,{i % 99},1,1,\n" for i in range(60))).encode()
    # When a file is imported
    status = importer.run(content)
    # Then every row is written after the retries
    assert status["status"] == "COMPLETED" and client.batch_writes > 3
    assert len(importer.records()) == 60


def test_an_s3_error_is_retried_from_the_checkpoint(api, put_dataset, stack, store, monkeypatch):
    # Given an importer whose first read of the upload fails
    put_dataset()
    monkeypatch.setenv("RETRY_BASE_SECONDS", "0")
    importer = Importer(api, stack)
    importer.rewire(files=FlakyFilesBucket(stack.physical["FilesBucket"]))
    # When a file is imported
    status = importer.run((HEADER + "s@x.io,S,1,1,1,\n").encode())
    if status["status"] == "PENDING":  # the retry waits on its (zero) delay
        time.sleep(0.5)
        importer.drain()
        status = importer.status(status["id"])
    # Then the second attempt completes it, and the job remembers the first one's error
    assert status["status"] == "COMPLETED"
    job = store.get(status["id"])
    assert job.attempts == 2 and "InternalError" in job.last_error


# ---- long polling and events ---------------------------------------------------------------------------


def test_long_polling_returns_on_change_and_304_when_nothing_changed(api, put_dataset, store, stack):
    put_dataset()
    # Given a PENDING job and its ETag
    job = api.call("POST", "/exports", body={"dataset": "customers", "format": "csv"}).json()["job"]
    first = api.call("GET", f"/jobs/{job['id']}/status")
    etag = first.headers["etag"]
    # When a client long-polls while nothing changes, then it gets a 304 after waiting
    started = time.monotonic()
    unchanged = api.call(
        "GET", f"/jobs/{job['id']}/status", query={"waitSeconds": "1"}, headers={"If-None-Match": etag}
    )
    assert unchanged.status == 304 and time.monotonic() - started >= 1
    # When the job changes during a long poll, then the poll returns at once with the new state
    threading.Timer(0.3, lambda: store.claim(job["id"])).start()
    started = time.monotonic()
    changed = api.call(
        "GET", f"/jobs/{job['id']}/status", query={"waitSeconds": "20"}, headers={"If-None-Match": etag}
    )
    assert changed.status == 200 and changed.json()["status"] == "PROCESSING"
    assert time.monotonic() - started < 5 and changed.headers["etag"] != etag
    assert api.call("GET", f"/jobs/{job['id']}/status", query={"waitSeconds": "26"}).status == 422


def test_every_state_change_is_published_to_eventbridge(api, put_dataset, stack):
    put_dataset()
    # Given an export that runs to completion, one cancelled before it started, and one cancelled
    # while a worker held it (the worker ends it)
    exporter = load_function("exporter")
    job = api.call("POST", "/exports", body={"dataset": "customers", "format": "csv"}).json()["job"]
    body = messages(stack, "ExportQueue")[0]
    event = copy.deepcopy(load_event("exporter_job_message.json"))
    event["Records"][0]["body"] = json.dumps(body)
    exporter.lambda_handler(event, LocalLambdaContext("impex-exporter", timeout_seconds=60))
    cancelled = api.call("POST", "/exports", body={"dataset": "customers", "format": "csv"}).json()["job"]
    api.call("POST", f"/jobs/{cancelled['id']}/cancel")
    running = api.call("POST", "/exports", body={"dataset": "customers", "format": "csv"}).json()["job"]
    worker = wiring.job_store(ExporterSettings.from_environment())  # publishing, as the exporter's is
    worker.claim(running["id"])
    assert api.call("POST", f"/jobs/{running['id']}/cancel").status == 202
    worker.end_cancelled(running["id"], JobOutcome(result={"rows": 0}, processed_rows=0))
    # When the example rule's queue is read
    received = []
    sqs = boto3.client("sqs")
    for _ in range(10):
        batch = sqs.receive_message(QueueUrl=stack.physical["JobEventsExampleQueue"], MaxNumberOfMessages=10)
        received += [json.loads(m["Body"]) for m in batch.get("Messages", [])]
    # Then every state change of each job was published, in order
    assert all(e["source"] == "impex" and e["detail-type"] == "Job State Change" for e in received)
    changes = [(e["detail"]["jobId"], e["detail"]["change"]) for e in received]
    assert [c for j, c in changes if j == job["id"]] == ["created", "started", "completed"]
    assert [c for j, c in changes if j == cancelled["id"]] == ["created", "cancelled"]
    assert [c for j, c in changes if j == running["id"]] == [
        "created",
        "started",
        "cancel_requested",
        "cancelled",
    ]


# ---- fairness ------------------------------------------------------------------------------------------


def test_a_tenant_at_its_cap_waits_while_another_tenant_runs(api, put_dataset, stack, store, monkeypatch):
    # Given a cap of one running job per tenant, a busy tenant at it, and a quiet tenant
    monkeypatch.setenv("TENANT_CONCURRENCY", "1")
    put_dataset(tenant="busy")
    put_dataset(tenant="quiet")
    exporter = load_function("exporter")
    running = api.call(
        "POST", "/exports", tenant="busy", body={"dataset": "customers", "format": "csv"}
    ).json()
    store.claim(running["job"]["id"])  # busy already has one job PROCESSING
    waiting = api.call(
        "POST", "/exports", tenant="busy", body={"dataset": "customers", "format": "csv"}
    ).json()
    other = api.call(
        "POST", "/exports", tenant="quiet", body={"dataset": "customers", "format": "csv"}
    ).json()
    # When the exporter receives both tenants' queued jobs
    for body in messages(stack, "ExportQueue"):
        if body["jobId"] == running["job"]["id"]:
            continue
        event = copy.deepcopy(load_event("exporter_job_message.json"))
        event["Records"][0]["body"] = json.dumps(body)
        exporter.lambda_handler(event, LocalLambdaContext("impex-exporter", timeout_seconds=60))
    # Then the quiet tenant's job runs, and the busy tenant's waits on the queue, deferred
    assert store.get(other["job"]["id"]).status is JobStatus.COMPLETED
    assert store.get(waiting["job"]["id"]).status is JobStatus.PENDING
    sqs = boto3.client("sqs")
    attributes = sqs.get_queue_attributes(
        QueueUrl=stack.physical["ExportQueue"], AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert int(attributes["ApproximateNumberOfMessagesDelayed"]) == 1  # deferred, not dropped


def test_a_high_priority_job_the_cap_turned_away_gets_the_next_free_slot(
    api, put_dataset, stack, store, monkeypatch
):
    # Given a tenant at its cap of one running job, with a normal backlog and a high-priority job
    monkeypatch.setenv("TENANT_CONCURRENCY", "1")
    put_dataset(tenant="busy")
    exporter = load_function("exporter")

    def export(priority: str) -> str:
        body = {"dataset": "customers", "format": "csv", "priority": priority}
        return api.call("POST", "/exports", tenant="busy", body=body).json()["job"]["id"]  # type: ignore[no-any-return]

    def deliver(job_id: str) -> None:
        event = copy.deepcopy(load_event("exporter_job_message.json"))
        event["Records"][0]["body"] = json.dumps({"jobId": job_id, "tenant": "busy"})
        exporter.lambda_handler(event, LocalLambdaContext("impex-exporter", timeout_seconds=60))

    running = export("normal")
    store.claim(running)
    backlog = [export("normal") for _ in range(2)]
    high = export("high")
    # When the high-priority job arrives while the cap is full, it is turned away
    deliver(high)
    assert store.get(high).status is JobStatus.PENDING
    # And the slot frees up
    store.fail(running, "done with it")
    # Then the backlog's next normal job yields the free slot instead of taking it
    deliver(backlog[0])
    assert store.get(backlog[0]).status is JobStatus.PENDING
    # And the high-priority job takes it when its deferred message comes back
    deliver(high)
    assert store.get(high).status is JobStatus.COMPLETED
    # And once it has run, normal jobs are admitted again
    deliver(backlog[1])
    assert store.get(backlog[1]).status is JobStatus.COMPLETED


def test_high_priority_exports_go_to_their_own_queue(api, put_dataset, stack):
    put_dataset()
    api.call("POST", "/exports", body={"dataset": "customers", "format": "csv", "priority": "high"})
    api.call("POST", "/exports", body={"dataset": "customers", "format": "csv", "priority": "low"})
    assert len(messages(stack, "ExportHighQueue")) == 1
    assert len(messages(stack, "ExportLowQueue")) == 1
    assert messages(stack, "ExportQueue") == []


def test_a_poison_file_that_kills_every_worker_fails_after_its_attempts_never_loops(
    api, put_dataset, stack, store, monkeypatch
):
    # Given a file whose every import kills its worker mid-file (as an out-of-memory or a crash would)
    put_dataset()
    monkeypatch.setenv("BATCH_ROWS", "20")
    importer = Importer(api, stack)
    content, _ = _people(3)
    created = importer.create(options={"maxAttempts": 2})

    def dying_put(put_many, items):
        put_many(items[:5])
        raise WorkerCrash

    importer.rewire(records=hooked_records(around_put=dying_put))
    boto3.client("s3").put_object(Bucket=importer.bucket, Key=created["upload"]["key"], Body=content)
    messages(stack, "ImportQueue")
    job_id = created["job"]["id"]
    # When each attempt dies, and the sweeper finds it every time
    with pytest.raises(WorkerCrash):
        importer.invoke(s3_event(importer.bucket, created["upload"]["key"]))
    assert sweep(now_offset_seconds=301)["actions"] == {"stuck_requeued": 1}
    with pytest.raises(WorkerCrash):
        importer.drain()
    assert store.get(job_id).attempts == 2
    report = sweep(now_offset_seconds=602)
    # Then after its two attempts the job is FAILED, saying what happened, and nothing requeues it
    assert report["actions"] == {"stuck_failed": 1}
    failed = store.get(job_id)
    assert failed.status is JobStatus.FAILED
    assert failed.error_message.startswith(
        "the importer stopped while reading this file on each of its 2 attempts"
    )
    assert sweep(now_offset_seconds=1200)["actions"] == {}
    assert messages(stack, "ImportQueue") == []
