"""One import, many workers, on moto: a large file is split into chunk jobs that run on their own,
and the job ends exactly as one worker would have ended it. Each test runs the same file through one
worker and through a fanned-out import and compares the tables, counts, row errors and reports."""

from __future__ import annotations

import gzip
import itertools
import json
import threading
from typing import Any

import boto3
import pytest

from impex import wiring
from impex.jobs.model import JobStatus, chunk_job_id
from impex.jobs.store import JobStore
from impex.pipelines.common import Deadline
from impex.pipelines.fanout import FanOutImports
from impex.settings.workers import ImporterSettings, SweeperSettings
from tests.integration.conftest import CUSTOMERS, job_store
from tests.integration.importing import Importer, s3_event, sqs_event

HEADER = "email,name,age,balance,active,signedUp\n"
CHUNKS = 4


class Killed(BaseException):
    """Lambda's sandbox dying: nothing of impex's runs after it."""


def troubled_people(count: int) -> bytes:
    """People with quoted newlines, duplicates of keys far earlier in the file (so in other
    batches and, split, the same chunk as their first occurrence), bad ages and ragged rows."""
    lines = [HEADER]
    for i in range(count):
        email = f"p{i - 301}@x.io" if i % 97 == 96 else f"p{i}@x.io"
        name = f'"P {i}\nsecond line, with a comma"' if i % 13 == 0 else f"P {i}"
        age = "old" if i % 41 == 40 else str(i % 90)
        if i % 150 == 149:
            lines.append(f"{email},{name}\n")  # ragged
            continue
        lines.append(f"{email},{name},{age},{i}.5,yes,2024-02-{1 + i % 28:02d}\n")
    return "".join(lines).encode()


@pytest.fixture
def importer(api, put_dataset, stack, monkeypatch) -> Importer:
    put_dataset("single", **CUSTOMERS)
    put_dataset("fanned", **CUSTOMERS)
    monkeypatch.setenv("BATCH_ROWS", "100")
    monkeypatch.setenv("RETRY_BASE_SECONDS", "0")
    return Importer(api, stack)


def fan_out(importer: Importer, monkeypatch: pytest.MonkeyPatch, *, workers: int = CHUNKS) -> None:
    """From now on the importer splits every text file into ``workers`` chunks."""
    monkeypatch.setenv("FANOUT_THRESHOLD_BYTES", "1")
    monkeypatch.setenv("FANOUT_WORKERS", str(workers))
    importer.rewire()


def outcome(importer: Importer, status: dict[str, Any], dataset: str) -> dict[str, Any]:
    """What a person sees of an import: its status fields, row errors, report and the table."""
    result = dict(status["result"])
    return {
        "status": status["status"],
        "counts": {k: status[k] for k in ("processedRows", "totalRows", "progress")},
        "result": result,
        "report": importer.error_report(status["id"]) if status.get("errorReport") else None,
        "records": importer.records(dataset=dataset),
    }


def split_upload(importer: Importer, content: bytes, **body: Any) -> str:
    """Create an import of the "fanned" dataset, upload ``content`` and deliver its event: the split
    runs, and its chunk jobs wait on the queue. The job's id."""
    created = importer.create(dataset="fanned", **body)
    importer.s3.put_object(Bucket=importer.bucket, Key=created["upload"]["key"], Body=content)
    importer.invoke(s3_event(importer.bucket, created["upload"]["key"]))
    return str(created["job"]["id"])


def deliver_one_chunk(importer: Importer) -> str:
    """Deliver the first chunk message waiting on the import queue (dropping S3's duplicate events)."""
    queue = importer.stack.physical["ImportQueue"]
    while True:
        messages = importer.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1).get("Messages", [])
        assert messages, "no chunk message was waiting"
        message = messages[0]
        importer.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        if '"jobId"' in message["Body"]:
            importer.invoke(sqs_event(message["Body"], message["MessageId"]))
            return str(json.loads(message["Body"])["jobId"])


def chunk_jobs(stack, job_id: str, count: int = CHUNKS) -> list[Any]:
    store = job_store(stack)
    return [store.get(chunk_job_id(job_id, index)) for index in range(count)]


def test_a_fanned_out_import_ends_exactly_as_one_worker_ends_it(importer, monkeypatch, stack):
    # Given a file with quoted newlines, duplicates, bad values and ragged rows, imported by one worker
    content = troubled_people(1200)
    single = importer.run(content, dataset="single")
    assert single["status"] == "COMPLETED", single
    # When the same file is imported again, split into four chunk jobs
    fan_out(importer, monkeypatch)
    fanned = importer.run(content, dataset="fanned")
    # Then it was split (each chunk ran as its own job and has rows)
    chunks = chunk_jobs(stack, fanned["id"])
    assert all(c is not None and c.status is JobStatus.COMPLETED and c.chunk.rows > 0 for c in chunks)
    assert sum(c.chunk.rows for c in chunks) == fanned["totalRows"]
    # And the table, every count, the first row errors and the error report are the same
    assert outcome(importer, fanned, "fanned") == outcome(importer, single, "single")
    assert fanned["result"]["failed"] > 40  # the file's trouble was found, in every chunk
    assert any("duplicate key" in e["message"] for e in fanned["result"]["firstErrors"])
    # And the chunks are never listed as jobs of their own
    listed = importer.api.call("GET", "/jobs", query={"limit": "100"}).json()
    assert {job["id"] for job in listed["jobs"]} == {single["id"], fanned["id"]}
    assert importer.api.call("GET", f"/jobs/{chunks[0].id}/status").status == 404


def test_gzip_and_json_lines_fan_out_the_same(importer, monkeypatch):
    # Given a gzip JSON Lines file with typed values, bad lines, unknown keys and a huge integer
    lines = []
    for i in range(900):
        row: dict[str, Any] = {
            "email": f"p{i % 700}@x.io",
            "name": f"P {i}",
            "age": i % 90,
            "balance": i + 0.25,
        }
        if i % 100 == 7:
            row["extra"] = i
        if i % 211 == 5:
            row["age"] = 123456789012345678901234567890
        lines.append(json.dumps(row))
    lines[333] = "{not json"
    lines[444] = '{"email": "p444@x.io", "name": "\\ud800 a lone surrogate"}'  # no text holds it
    content = gzip.compress(("\n".join(lines) + "\n").encode())
    single = importer.run(content, file_name="people.jsonl.gz", dataset="single", format="jsonl")
    # When it is split into chunks
    fan_out(importer, monkeypatch, workers=3)
    fanned = importer.run(content, file_name="people.jsonl.gz", dataset="fanned", format="jsonl")
    # Then both end the same
    assert single["status"] == "COMPLETED", single
    assert outcome(importer, fanned, "fanned") == outcome(importer, single, "single")
    assert fanned["result"]["unknownKeys"] == single["result"]["unknownKeys"] > 0
    assert any("lone UTF-16 surrogate" in e["message"] for e in fanned["result"]["firstErrors"])


def test_the_error_tolerance_counts_every_chunk(importer, monkeypatch, stack):
    # Given a file whose bad rows are spread so that no chunk alone has more than maxErrors
    content = troubled_people(1200)
    fan_out(importer, monkeypatch)
    # When it is imported with maxErrors below the file's total
    status = importer.run(content, dataset="fanned", options={"maxErrors": 30})
    # Then the job failed on the whole file's count, and says what was written
    assert status["status"] == "FAILED", status
    assert "more than maxErrors=30" in status["errorMessage"]
    records = importer.records(dataset="fanned")
    assert status["result"]["written"] == len(records)
    assert f"{len(records)} rows were written" in status["errorMessage"]
    assert status["result"]["failed"] > 30
    # And no chunk is left running
    assert all(c.status.is_terminal for c in chunk_jobs(stack, status["id"]))


def test_a_cancel_stops_every_chunk(importer, monkeypatch, stack, api):
    # Given a fanned-out import whose first chunk has run
    content = troubled_people(1200)
    fan_out(importer, monkeypatch)
    job_id = split_upload(importer, content)
    first = deliver_one_chunk(importer)
    assert job_store(stack).get(first).status is JobStatus.COMPLETED
    # When it is cancelled, and the queue is drained
    assert api.call("POST", f"/jobs/{job_id}/cancel").status == 202  # requested: workers end it
    importer.drain()
    # Then the job is CANCELLED with exactly what was written, and no chunk runs any more
    status = importer.status(job_id)
    assert status["status"] == "CANCELLED", status
    records = importer.records(dataset="fanned")
    assert 0 < status["result"]["written"] == len(records)
    assert status["processedRows"] < status["totalRows"] or status["totalRows"] is None
    assert all(c.status.is_terminal for c in chunk_jobs(stack, job_id))


def test_a_killed_chunk_worker_is_swept_and_the_import_ends_as_one_workers(importer, monkeypatch, stack):
    # Given the file imported by one worker
    content = troubled_people(1200)
    single = importer.run(content, dataset="single")
    # And a fanned-out import of it whose second chunk's worker dies mid-way (no cleanup at all)
    fan_out(importer, monkeypatch)
    killed = threading.Event()
    settings = ImporterSettings.from_environment()
    real_tables = wiring.record_tables(settings.write_concurrency)

    def dying_tables(name: str):
        table = real_tables(name)
        put_many = table.put_many
        calls = {"n": 0}

        def put(items):
            calls["n"] += 1
            if (
                calls["n"] == 3
                and not killed.is_set()
                and threading.current_thread().name.startswith("batch")
            ):
                killed.set()
                raise Killed()
            return put_many(items)

        table.put_many = put
        return table

    importer.rewire(records=dying_tables)
    job_id = split_upload(importer, content)
    with pytest.raises(Killed):
        importer.drain()
    assert killed.is_set()
    importer.drain()  # the other chunks run
    assert importer.status(job_id)["status"] == "PROCESSING"
    # When the sweeper finds the chunk's heartbeat stopped, and its requeue is delivered
    importer.rewire()
    sweeper = wiring.sweeper(SweeperSettings.from_environment())
    report = sweeper.sweep(now="2099-01-01T00:00:00Z")
    assert report.actions["stuck_requeued"] >= 1
    importer.drain()
    # Then the import ends as the single worker's did: the same table, row errors and report; the
    # rows the dead worker had written since its chunk's last checkpoint are written again, and
    # counted as updated (as a single worker's replay counts them)
    fanned = importer.status(job_id)
    got, want = outcome(importer, fanned, "fanned"), outcome(importer, single, "single")
    replayed = got["result"].pop("updated")
    assert 0 < replayed <= got["result"]["created"]
    got["result"]["created"] += replayed
    want["result"]["created"] += want["result"].pop("updated")
    assert got == want


def test_a_dead_lettered_chunk_fails_the_job_with_what_was_written(importer, monkeypatch, stack):
    # Given a fanned-out import split into chunks, none of which has run
    content = troubled_people(1200)
    fan_out(importer, monkeypatch)
    job_id = split_upload(importer, content)
    # When one chunk's message ends in the dead-letter queue and the sweeper drains it
    sqs = boto3.client("sqs")
    message = json.dumps({"jobId": chunk_job_id(job_id, 2), "tenant": "acme"})
    sqs.send_message(QueueUrl=stack.physical["ImportDeadLetterQueue"], MessageBody=message)
    report = wiring.sweeper(SweeperSettings.from_environment()).sweep()
    assert report.actions["dead_lettered"] == 1
    importer.drain()
    # Then the job failed naming the chunk, and its counts are what the table holds
    status = importer.status(job_id)
    assert status["status"] == "FAILED", status
    assert "chunk 3 of 4 failed" in status["errorMessage"]
    assert status["result"]["written"] == len(importer.records(dataset="fanned"))
    assert all(c.status.is_terminal for c in chunk_jobs(stack, job_id))


def test_the_sweeper_ends_an_import_whose_last_chunk_worker_stopped_before_ending_it(
    importer, monkeypatch, stack
):
    # Given a fanned-out import whose chunk workers all stop right after ending their chunk
    content = troubled_people(1200)
    fan_out(importer, monkeypatch)
    settle = FanOutImports.settle
    FanOutImports.settle = lambda self, parent_id: None  # type: ignore[method-assign]
    try:
        status = importer.run(content, dataset="fanned")
    finally:
        FanOutImports.settle = settle  # type: ignore[method-assign]
    assert status["status"] == "PROCESSING"
    assert all(c.status is JobStatus.COMPLETED for c in chunk_jobs(stack, status["id"]))
    # When the sweeper finds it quiet
    report = wiring.sweeper(SweeperSettings.from_environment()).sweep(now="2099-01-01T00:00:00Z")
    # Then it ends it COMPLETED, with the chunks' summed counts and merged report
    assert report.actions["fanned_out_ended"] == 1
    ended = importer.status(status["id"])
    assert ended["status"] == "COMPLETED", ended
    assert ended["processedRows"] == ended["totalRows"] == 1200
    assert ended["result"]["written"] == len(importer.records(dataset="fanned"))
    assert len(importer.error_report(ended["id"])) == ended["result"]["failed"] + 1


def test_the_split_and_every_chunk_continue_and_retry_and_end_as_one_worker(importer, monkeypatch, stack):
    # Given the file imported by one worker
    content = troubled_people(2000)
    single = importer.run(content, dataset="single")
    # And invocations so short that the split and the chunks hand over to continuations, and
    # one chunk write that fails once (a transient error: its chunk retries from its checkpoint,
    # taken after every batch here, so that no row it wrote is written again and counted as updated)
    monkeypatch.setenv("PROGRESS_EVERY_SECONDS", "0")
    fan_out(importer, monkeypatch)
    real_tables = wiring.record_tables(ImporterSettings.from_environment().write_concurrency)
    failures = {"left": 1}

    def flaky_tables(name: str):
        table = real_tables(name)
        put_many = table.put_many

        def put(items):
            if failures["left"] and len(items) > 50:
                failures["left"] -= 1
                raise ConnectionError("the connection was reset")
            return put_many(items)

        table.put_many = put
        return table

    importer.rewire(records=flaky_tables)
    # Every third look at the clock finds the invocation's time nearly up (on a clock of its own,
    # so the test does not depend on this machine's speed)
    looks = itertools.count(1)
    monkeypatch.setattr(Deadline, "near", lambda self: next(looks) % 3 == 0)
    handovers = {"split": 0}
    save_split = FanOutImports._save_split

    def counted_save_split(self, *args, **kwargs):
        handovers["split"] += 1
        return save_split(self, *args, **kwargs)

    monkeypatch.setattr(FanOutImports, "_save_split", counted_save_split)
    # When it is imported, split into chunks
    fanned = importer.run(content, dataset="fanned")
    # Then the split and the chunks took several invocations, a chunk was retried
    assert failures["left"] == 0 and handovers["split"] >= 2
    chunks = chunk_jobs(stack, fanned["id"])
    assert importer.invocations > handovers["split"] + 2 * CHUNKS
    assert max(c.attempts for c in chunks) == 2
    # And the job ends as the single worker's did
    assert outcome(importer, fanned, "fanned") == outcome(importer, single, "single")


def test_job_events_tell_of_the_job_never_of_its_chunks(importer, monkeypatch, stack):
    # Given a jobs table whose state changes are collected as events
    published: list[tuple[str, str]] = []

    class Collected:
        def publish(self, job_id: str, change: str, detail: dict[str, Any]) -> None:
            published.append((job_id, change))

    fan_out(importer, monkeypatch)
    store = JobStore(job_store(stack)._table, retention_days=1, events=Collected())  # type: ignore[arg-type]
    importer.rewire(jobs=store)
    # When a fanned-out import runs
    status = importer.run(troubled_people(600), dataset="fanned")
    assert status["status"] == "COMPLETED"
    # Then every event names the job itself, and its ending is among them
    assert published and {job_id for job_id, _ in published} == {status["id"]}
    assert (status["id"], "completed") in published


def test_a_fanned_out_dry_run_writes_nothing_and_its_commit_fans_out_as_one_worker_imports(
    importer, monkeypatch, stack, api
):
    # Given the file imported by one worker
    content = troubled_people(1200)
    single = importer.run(content, dataset="single")
    # When it is dry-run split into chunks
    fan_out(importer, monkeypatch)
    dry = importer.run(content, dataset="fanned", options={"dryRun": True})
    # Then it counts what one worker would do, and writes nothing
    assert dry["status"] == "COMPLETED" and dry["result"]["dryRun"] is True
    assert dry["result"]["created"] == single["result"]["created"] and dry["result"]["written"] == 0
    assert importer.records(dataset="fanned") == {}
    # And its commit is split again, and ends as one worker's import did
    committed = api.call("POST", f"/jobs/{dry['id']}/commit")
    assert committed.status == 201, committed.text
    importer.drain()
    final = importer.status(committed.json()["job"]["id"])
    assert all(c is not None and c.status is JobStatus.COMPLETED for c in chunk_jobs(stack, final["id"]))
    got, want = outcome(importer, final, "fanned"), outcome(importer, single, "single")
    for result in (got["result"], want["result"]):
        result.pop("dryRun", None)
    assert got == want


def chunk_files(importer: Importer, job_id: str) -> list[str]:
    listed = importer.s3.list_objects_v2(Bucket=importer.bucket, Prefix=f"chunks/acme/{job_id}/")
    return [entry["Key"] for entry in listed.get("Contents", [])]


def test_a_failed_fanned_out_import_is_retried_from_each_chunks_checkpoint_and_ends_as_one_worker(
    importer, monkeypatch, stack, api
):
    # Given the file imported by one worker
    content = troubled_people(1200)
    single = importer.run(content, dataset="single")
    # And a fanned-out import of it with one attempt a chunk, checkpointing after every batch, whose
    # first chunk's worker dies after one batch, and whose DynamoDB then fails every write
    monkeypatch.setenv("PROGRESS_EVERY_SECONDS", "0")
    fan_out(importer, monkeypatch)
    real_tables = wiring.record_tables(ImporterSettings.from_environment().write_concurrency)
    trouble = {"puts": 0, "outage": False}

    def troubled_tables(name: str):
        table = real_tables(name)
        put_many = table.put_many

        def put(items):
            trouble["puts"] += 1
            if trouble["puts"] == 2:
                trouble["outage"] = True
                raise Killed()
            if trouble["outage"]:
                raise ConnectionError("DynamoDB is unreachable")
            return put_many(items)

        table.put_many = put
        return table

    importer.rewire(records=troubled_tables)
    job_id = split_upload(importer, content, options={"maxAttempts": 1})
    with pytest.raises(Killed):
        importer.drain()
    importer.drain()  # the next chunk fails, the others are stopped
    wiring.sweeper(SweeperSettings.from_environment()).sweep(
        now="2099-01-01T00:00:00Z"
    )  # the dead worker's chunk
    importer.drain()
    failed = importer.status(job_id)
    assert failed["status"] == "FAILED", failed
    assert "chunk" in failed["errorMessage"] and "failed" in failed["errorMessage"]
    statuses = {c.status for c in chunk_jobs(stack, job_id)}
    assert JobStatus.FAILED in statuses and statuses <= {JobStatus.FAILED, JobStatus.CANCELLED}
    assert any(c.checkpoint and c.status is JobStatus.FAILED for c in chunk_jobs(stack, job_id))
    # And the failed job keeps its chunks' files, for a retry
    assert len(chunk_files(importer, job_id)) >= CHUNKS
    # When DynamoDB is back and the job is retried
    trouble["outage"] = False
    importer.rewire(records=troubled_tables)
    retried = api.call("POST", f"/jobs/{job_id}/retry")
    assert retried.status == 200, retried.text
    assert importer.status(job_id)["status"] == "PENDING"
    importer.drain()
    # Then every chunk ended COMPLETED, each carrying on from where it stopped, and the job ends
    # exactly as the single worker's did: no row was written twice (none counted as updated)
    fanned = importer.status(job_id)
    assert all(c.status is JobStatus.COMPLETED for c in chunk_jobs(stack, job_id))
    assert outcome(importer, fanned, "fanned") == outcome(importer, single, "single")
    assert fanned["result"]["updated"] == 0
    # And its chunks' files are gone now that it completed
    assert chunk_files(importer, job_id) == []


def failed_after_one_chunk(importer: Importer, monkeypatch: pytest.MonkeyPatch, stack, content: bytes) -> str:
    """A fanned-out import of ``content`` that failed after one chunk had completed (another was
    dead-lettered, the other two stopped). The job's id."""
    fan_out(importer, monkeypatch)
    job_id = split_upload(importer, content)
    completed = deliver_one_chunk(importer)
    lost = next(c.id for c in chunk_jobs(stack, job_id) if c.id != completed)
    message = json.dumps({"jobId": lost, "tenant": "acme"})
    importer.sqs.send_message(QueueUrl=stack.physical["ImportDeadLetterQueue"], MessageBody=message)
    wiring.sweeper(SweeperSettings.from_environment()).sweep()
    importer.drain()
    return job_id


def retry_dying_while_resuming(runner: Any, stack, api, monkeypatch: pytest.MonkeyPatch, job_id: str) -> None:
    """Retry the FAILED fanned-out job with a worker (``runner``'s: an importer or an exporter) that
    dies once it has put one chunk back on its way; then rewire the runner as it was."""
    jobs = job_store(stack)
    resume_chunk = jobs.resume_chunk
    resumed: list[str] = []

    def dies_after_the_first(chunk, **kwargs):
        if resumed:
            raise Killed()
        resumed.append(chunk.id)
        return resume_chunk(chunk, **kwargs)

    monkeypatch.setattr(jobs, "resume_chunk", dies_after_the_first)
    runner.rewire(jobs=jobs)
    assert api.call("POST", f"/jobs/{job_id}/retry").status == 200
    with pytest.raises(Killed):
        runner.drain()
    runner.rewire()


def killed_while_resuming(
    importer: Importer, monkeypatch: pytest.MonkeyPatch, stack, api, content: bytes
) -> str:
    """failed_after_one_chunk, retried, whose resuming worker died once it had put one chunk back on
    its way. The job's id."""
    job_id = failed_after_one_chunk(importer, monkeypatch, stack, content)
    assert importer.status(job_id)["status"] == "FAILED"
    retry_dying_while_resuming(importer, stack, api, monkeypatch, job_id)
    statuses = sorted(c.status.value for c in chunk_jobs(stack, job_id))
    assert statuses == ["CANCELLED", "CANCELLED", "COMPLETED", "PENDING"], statuses
    return job_id


def test_a_worker_killed_while_resuming_a_retried_import_is_finished_by_the_sweeper(
    importer, monkeypatch, stack, api
):
    # Given the file imported by one worker
    content = troubled_people(1200)
    single = importer.run(content, dataset="single")
    # And a retried fanned-out import of it whose resuming worker died half-way (one chunk PENDING
    # again, two still stopped, one completed by the first run)
    job_id = killed_while_resuming(importer, monkeypatch, stack, api, content)
    # When the sweeper looks once the job has been quiet too long, and the chunks run
    wiring.sweeper(SweeperSettings.from_environment()).sweep(now="2099-01-01T00:00:00Z")
    importer.drain()
    # Then the sweeper finished the resume instead of ending the job from its chunks' states:
    # every chunk completed, and the job ends exactly as the single worker's did
    fanned = importer.status(job_id)
    assert fanned["status"] == "COMPLETED", fanned
    assert all(c.status is JobStatus.COMPLETED for c in chunk_jobs(stack, job_id))
    assert outcome(importer, fanned, "fanned") == outcome(importer, single, "single")


def test_a_stopped_chunk_nothing_failed_or_cancelled_fails_its_job_instead_of_completing_it(
    importer, monkeypatch, stack, api
):
    # Given the file imported by one worker
    content = troubled_people(1200)
    single = importer.run(content, dataset="single")
    # And a retried fanned-out import of it whose resuming worker died half-way, with no mark of the
    # resume on the job (as a retry made before resumes were marked left it)
    job_id = killed_while_resuming(importer, monkeypatch, stack, api, content)
    boto3.client("dynamodb").update_item(
        TableName=stack.physical["JobsTable"],
        Key={"id": {"S": job_id}},
        UpdateExpression="REMOVE resumePending",
    )
    # When its PENDING chunk runs (the sweeper re-sends its message) and ends
    wiring.sweeper(SweeperSettings.from_environment()).sweep(now="2099-01-01T00:00:00Z")
    importer.drain()
    # Then the job FAILED, saying which chunk stopped and what to do, and kept its chunks' files:
    # completing it would have lost the stopped chunks' rows
    failed = importer.status(job_id)
    assert failed["status"] == "FAILED", failed
    assert "stopped before it ended; retry the job" in failed["errorMessage"], failed
    assert failed["result"]["written"] < single["result"]["written"]
    # When it is retried
    assert api.call("POST", f"/jobs/{job_id}/retry").status == 200
    importer.drain()
    # Then it ends exactly as the single worker's did
    fanned = importer.status(job_id)
    assert outcome(importer, fanned, "fanned") == outcome(importer, single, "single")


def test_a_retry_after_the_chunk_files_expired_fails_saying_so_and_keeps_the_counts(
    importer, monkeypatch, stack, api
):
    # Given a fanned-out import that failed after a chunk had completed (another was dead-lettered)
    job_id = failed_after_one_chunk(importer, monkeypatch, stack, troubled_people(1200))
    failed = importer.status(job_id)
    assert failed["status"] == "FAILED", failed
    assert failed["result"]["written"] > 0
    # And the lifecycle rule has since expired its chunk files
    importer.s3.delete_objects(
        Bucket=importer.bucket, Delete={"Objects": [{"Key": key} for key in chunk_files(importer, job_id)]}
    )
    # When it is retried
    assert api.call("POST", f"/jobs/{job_id}/retry").status == 200
    importer.drain()
    # Then it failed again, saying why and what to do, with the counts of the run that failed
    again = importer.status(job_id)
    assert again["status"] == "FAILED", again
    assert "expired" in again["errorMessage"] and "create the job again" in again["errorMessage"]
    assert again["result"] == failed["result"]
    assert again["processedRows"] == failed["processedRows"]
