"""The job store on moto: conditional transitions, the claim race, progress, the indexes and expiry."""

from __future__ import annotations

import threading
import time
from contextlib import suppress

import boto3
import pytest

from impex.clock import iso, utc_now
from impex.errors import IllegalTransition, JobExists, JobNotFound
from impex.jobs.model import ChunkRef, FileRef, Job, JobOutcome, JobStatus, JobType, chunk_job_id
from impex.jobs.store import JobNotProcessing, JobStore
from tests.integration.conftest import job_store


@pytest.fixture
def store(stack) -> JobStore:
    return job_store(stack, 7)


def new_job(store: JobStore, job_id: str = "01JDZ8Q4N6X3V2C8Y7T5R9K1MB", tenant: str = "acme") -> Job:
    now = iso(utc_now())
    return store.create(
        Job(
            id=job_id,
            type=JobType.IMPORT,
            tenant=tenant,
            dataset="d",
            format="csv",
            created_at=now,
            updated_at=now,
        )
    )


def raw_item(stack, job_id: str) -> dict:
    return boto3.resource("dynamodb").Table(stack.physical["JobsTable"]).get_item(Key={"id": job_id})["Item"]


def test_a_new_job_is_pending_and_in_the_active_index(store, stack):
    new_job(store)
    item = raw_item(stack, "01JDZ8Q4N6X3V2C8Y7T5R9K1MB")
    assert item["status"] == "PENDING" and item["activeStatus"] == "PENDING"
    assert "expiresAt" not in item


def test_a_job_id_cannot_be_created_twice(store):
    new_job(store)
    with pytest.raises(JobExists):
        new_job(store)


def test_the_claim_moves_pending_to_processing_and_counts_the_attempt(store):
    new_job(store)
    claimed = store.claim("01JDZ8Q4N6X3V2C8Y7T5R9K1MB")
    assert claimed is not None
    assert claimed.status is JobStatus.PROCESSING and claimed.attempts == 1 and claimed.started_at


def test_an_illegal_transition_raises_and_changes_nothing(store, stack):
    new_job(store)
    before = raw_item(stack, "01JDZ8Q4N6X3V2C8Y7T5R9K1MB")
    with pytest.raises(IllegalTransition) as raised:
        store.complete("01JDZ8Q4N6X3V2C8Y7T5R9K1MB", JobOutcome())
    assert raised.value.details == {"status": "PENDING"}
    assert raw_item(stack, "01JDZ8Q4N6X3V2C8Y7T5R9K1MB") == before


def test_a_transition_of_a_missing_job_is_not_found(store):
    with pytest.raises(JobNotFound):
        store.cancel("01JDZ8Q4N6X3V2C8Y7T5R9K1MB", tenant="acme")


def test_a_transition_for_the_wrong_tenant_is_not_found_and_changes_nothing(store):
    new_job(store)
    with pytest.raises(JobNotFound):
        store.cancel("01JDZ8Q4N6X3V2C8Y7T5R9K1MB", tenant="globex")
    assert store.get("01JDZ8Q4N6X3V2C8Y7T5R9K1MB").status is JobStatus.PENDING


def test_a_terminal_job_leaves_the_active_index_and_gets_a_ttl(store, stack):
    new_job(store)
    store.claim("01JDZ8Q4N6X3V2C8Y7T5R9K1MB")
    store.complete("01JDZ8Q4N6X3V2C8Y7T5R9K1MB", JobOutcome(result={"rows": 3}))
    item = raw_item(stack, "01JDZ8Q4N6X3V2C8Y7T5R9K1MB")
    assert "activeStatus" not in item
    expected = utc_now().timestamp() + 7 * 86400
    assert abs(int(item["expiresAt"]) - expected) < 60
    assert item["completedAt"]


def test_exactly_one_of_many_racing_workers_wins_the_claim(store):
    # Given 40 jobs, each raced for by 8 threads at once
    for round_number in range(40):
        job_id = f"01JDZ8Q4N6X3V2C8Y7T5R9K{round_number:03d}"
        new_job(store, job_id)
        winners: list[int] = []
        barrier = threading.Barrier(8)

        def worker(
            number: int,
            job_id: str = job_id,
            barrier: threading.Barrier = barrier,
            winners: list[int] = winners,
        ) -> None:
            barrier.wait()
            if store.claim(job_id) is not None:
                winners.append(number)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Then exactly one claims it, and the job counts one attempt
        assert len(winners) == 1, (job_id, winners)
        assert store.get(job_id).attempts == 1


def test_progress_is_recorded_with_a_heartbeat(store):
    new_job(store)
    claimed = store.claim("01JDZ8Q4N6X3V2C8Y7T5R9K1MB")
    time.sleep(0.002)
    store.record_progress(
        "01JDZ8Q4N6X3V2C8Y7T5R9K1MB", processed_rows=50, total_rows=200, checkpoint={"offset": 1234}
    )
    job = store.get("01JDZ8Q4N6X3V2C8Y7T5R9K1MB")
    assert (job.processed_rows, job.total_rows, job.progress) == (50, 200, 25)
    assert job.checkpoint == {"offset": 1234}
    assert job.heartbeat_at > claimed.heartbeat_at


def test_a_cancel_request_stops_the_workers_progress_writes(store):
    # Given a running job whose cancel was requested
    new_job(store)
    store.claim("01JDZ8Q4N6X3V2C8Y7T5R9K1MB")
    requested = store.cancel("01JDZ8Q4N6X3V2C8Y7T5R9K1MB", tenant="acme")
    # When its worker records progress
    with pytest.raises(JobNotProcessing) as raised:
        store.record_progress("01JDZ8Q4N6X3V2C8Y7T5R9K1MB", processed_rows=10)
    # Then it is told to stop as cancelled, and the job is unchanged: still the worker's to end
    assert raised.value.status is JobStatus.CANCELLED
    assert store.stop_signal("01JDZ8Q4N6X3V2C8Y7T5R9K1MB") is JobStatus.CANCELLED
    job = store.get("01JDZ8Q4N6X3V2C8Y7T5R9K1MB")
    assert job.status is JobStatus.PROCESSING and job.processed_rows == 0
    assert job == requested and job.cancel_requested_at


def test_the_active_index_finds_stale_jobs_only(store):
    for n in range(3):
        new_job(store, f"01JDZ8Q4N6X3V2C8Y7T5R9K{n:03d}")
    store.claim("01JDZ8Q4N6X3V2C8Y7T5R9K000")
    store.claim("01JDZ8Q4N6X3V2C8Y7T5R9K001")
    store.claim("01JDZ8Q4N6X3V2C8Y7T5R9K002")
    store.complete("01JDZ8Q4N6X3V2C8Y7T5R9K002", JobOutcome())
    future = iso(utc_now().replace(year=utc_now().year + 1))
    stale = store.list_active(JobStatus.PROCESSING, heartbeat_before=future)
    assert sorted(j.id for j in stale) == ["01JDZ8Q4N6X3V2C8Y7T5R9K000", "01JDZ8Q4N6X3V2C8Y7T5R9K001"]
    assert store.list_active(JobStatus.PROCESSING, heartbeat_before="2000-01-01T00:00:00.000Z") == []


def test_a_failed_job_can_be_retried_and_a_completed_one_cannot(store):
    new_job(store)
    store.claim("01JDZ8Q4N6X3V2C8Y7T5R9K1MB")
    failed = store.fail("01JDZ8Q4N6X3V2C8Y7T5R9K1MB", "boom")
    assert failed.error_message == "boom" and failed.expires_at is not None
    again = store.retry("01JDZ8Q4N6X3V2C8Y7T5R9K1MB", tenant="acme", max_attempts=3)
    assert again.status is JobStatus.PENDING and again.expires_at is None and again.error_message is None
    store.claim("01JDZ8Q4N6X3V2C8Y7T5R9K1MB")
    store.complete("01JDZ8Q4N6X3V2C8Y7T5R9K1MB", JobOutcome())
    with pytest.raises(IllegalTransition):
        store.retry("01JDZ8Q4N6X3V2C8Y7T5R9K1MB", tenant="acme", max_attempts=3)
    with pytest.raises(IllegalTransition):
        store.requeue("01JDZ8Q4N6X3V2C8Y7T5R9K1MB", reason="stalled")


def test_a_continuation_hands_the_job_back_to_pending_without_a_new_attempt(store):
    # Given a claimed job
    new_job(store)
    store.claim("01JDZ8Q4N6X3V2C8Y7T5R9K1MB")
    # When its worker hands over to a continuation, which claims it again
    handed = store.hand_over("01JDZ8Q4N6X3V2C8Y7T5R9K1MB")
    again = store.claim("01JDZ8Q4N6X3V2C8Y7T5R9K1MB", new_attempt=False)
    # Then it went PENDING and back, still on its first attempt
    assert handed.status is JobStatus.PENDING and handed.expires_at is None
    assert again is not None and again.status is JobStatus.PROCESSING and again.attempts == 1


def test_a_requeue_keeps_the_reason_and_only_applies_while_the_heartbeat_is_unchanged(store):
    new_job(store)
    claimed = store.claim("01JDZ8Q4N6X3V2C8Y7T5R9K1MB")
    time.sleep(0.002)
    store.record_progress(claimed.id, processed_rows=1)  # the worker showed a sign of life
    with pytest.raises(IllegalTransition):
        store.requeue(claimed.id, reason="stalled", expected_heartbeat=claimed.heartbeat_at)
    assert store.get(claimed.id).status is JobStatus.PROCESSING
    current = store.get(claimed.id)
    requeued = store.requeue(
        claimed.id, reason="stalled", message="retrying", expected_heartbeat=current.heartbeat_at
    )
    assert requeued.status is JobStatus.PENDING
    assert (requeued.last_error, requeued.error_message) == ("stalled", "retrying")


def test_a_completion_records_the_outcome_and_full_progress(store):
    new_job(store)
    store.claim("01JDZ8Q4N6X3V2C8Y7T5R9K1MB")
    store.record_progress("01JDZ8Q4N6X3V2C8Y7T5R9K1MB", processed_rows=5, checkpoint={"offset": 9})
    report = FileRef(bucket="b", key="errors/acme/x/errors.csv", name="x-errors.csv", size=10)
    done = store.complete(
        "01JDZ8Q4N6X3V2C8Y7T5R9K1MB",
        JobOutcome(result={"written": 5}, processed_rows=5, total_rows=5, error_report=report),
    )
    assert done.status is JobStatus.COMPLETED and done.progress == 100 and done.checkpoint is None
    assert (done.processed_rows, done.total_rows, done.result) == (5, 5, {"written": 5})
    assert done.error_report == report


def test_a_job_no_worker_started_is_cancelled_at_once(store):
    # Given a PENDING job that never ran
    new_job(store)
    # When it is cancelled
    cancelled = store.cancel("01JDZ8Q4N6X3V2C8Y7T5R9K1MB", tenant="acme")
    # Then it is CANCELLED, ended and expiring
    assert cancelled.status is JobStatus.CANCELLED and cancelled.completed_at and cancelled.expires_at
    assert cancelled.cancel_requested_at is None


def test_a_pending_job_with_a_checkpoint_waits_for_its_worker_to_end_it(store):
    # Given a job handed over to a continuation, with a checkpoint of what it did
    new_job(store)
    store.claim("01JDZ8Q4N6X3V2C8Y7T5R9K1MB")
    store.record_progress("01JDZ8Q4N6X3V2C8Y7T5R9K1MB", processed_rows=5, checkpoint={"written": 5})
    store.hand_over("01JDZ8Q4N6X3V2C8Y7T5R9K1MB")
    # When it is cancelled, then claimed by its continuation
    requested = store.cancel("01JDZ8Q4N6X3V2C8Y7T5R9K1MB", tenant="acme")
    claimed = store.claim("01JDZ8Q4N6X3V2C8Y7T5R9K1MB", new_attempt=False)
    # Then the cancel is a request the continuation sees, and it ends the job with its counts
    assert requested.status is JobStatus.PENDING and requested.cancel_requested_at
    assert claimed is not None and store.stop_signal(claimed.id) is JobStatus.CANCELLED
    ended = store.end_cancelled(claimed.id, JobOutcome(result={"written": 5}, processed_rows=5))
    assert ended.status is JobStatus.CANCELLED and ended.result == {"written": 5}
    assert ended.checkpoint is None and ended.completed_at == ended.updated_at


def test_a_worker_cannot_end_a_job_cancelled_that_nobody_cancelled(store, stack):
    new_job(store)
    store.claim("01JDZ8Q4N6X3V2C8Y7T5R9K1MB")
    before = raw_item(stack, "01JDZ8Q4N6X3V2C8Y7T5R9K1MB")
    with pytest.raises(IllegalTransition):
        store.end_cancelled("01JDZ8Q4N6X3V2C8Y7T5R9K1MB", JobOutcome(result={"written": 1}))
    assert raw_item(stack, "01JDZ8Q4N6X3V2C8Y7T5R9K1MB") == before


def _ended(store: JobStore, status: JobStatus) -> str:
    """A job that ended in ``status`` the way it happens: a worker claimed it first."""
    job_id = "01JDZ8Q4N6X3V2C8Y7T5R9K1MB"
    new_job(store, job_id)
    store.claim(job_id)
    store.record_progress(job_id, processed_rows=3, checkpoint={"written": 3})
    if status is JobStatus.COMPLETED:
        store.complete(job_id, JobOutcome(result={"written": 3}, processed_rows=3))
    elif status is JobStatus.FAILED:
        store.fail(job_id, "broken", outcome=JobOutcome(result={"written": 3}))
    else:
        store.cancel(job_id, tenant="acme")
        store.end_cancelled(job_id, JobOutcome(result={"written": 3}, processed_rows=3))
    return job_id


EVERY_WRITE = {
    "claim": lambda s, j: s.claim(j),
    "continuation claim": lambda s, j: s.claim(j, new_attempt=False),
    "progress": lambda s, j: s.record_progress(j, processed_rows=9, total_rows=9, checkpoint={"w": 9}),
    "pin version": lambda s, j: s.pin_file_version(j, "v2"),
    "touch pending": lambda s, j: s.touch(j, JobStatus.PENDING),
    "touch processing": lambda s, j: s.touch(j, JobStatus.PROCESSING),
    "hand over": lambda s, j: s.hand_over(j),
    "complete": lambda s, j: s.complete(j, JobOutcome(result={"written": 9}, processed_rows=9)),
    "fail": lambda s, j: s.fail(j, "late", outcome=JobOutcome(result={"written": 9})),
    "requeue": lambda s, j: s.requeue(j, reason="late"),
    "cancel": lambda s, j: s.cancel(j, tenant="acme"),
    "end cancelled": lambda s, j: s.end_cancelled(j, JobOutcome(result={"written": 9})),
    # A job that is not a chunk is never resumed as one, whatever its status.
    "resume chunk": lambda s, j: s.resume_chunk(s.get(j), checkpoint={"w": 9}),
}


@pytest.mark.parametrize("status", [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED])
@pytest.mark.parametrize("write", sorted(EVERY_WRITE))
def test_nothing_changes_a_terminal_job(store, stack, status, write):
    # Given a job that ended
    job_id = _ended(store, status)
    before = raw_item(stack, job_id)
    # When any write but a retry is tried on it (refused, or a no-op like a claim that lost)
    with suppress(IllegalTransition):
        EVERY_WRITE[write](store, job_id)
    # Then the item is exactly as it was: no status, counter or updatedAt moved
    assert raw_item(stack, job_id) == before


def test_only_a_retry_reopens_a_failed_job(store):
    job_id = _ended(store, JobStatus.FAILED)
    reopened = store.retry(job_id, tenant="acme", max_attempts=3)
    assert reopened.status is JobStatus.PENDING and reopened.completed_at is None


@pytest.mark.parametrize("status", [JobStatus.FAILED, JobStatus.CANCELLED])
def test_a_chunk_that_failed_or_was_cancelled_is_resumed_from_the_checkpoint_it_is_given(store, status):
    # Given a chunk job of a fanned-out import that ended FAILED or CANCELLED after one attempt
    parent = new_job(store, "01JDZ8Q4N6X3V2C8Y7T5R9K1MB")
    chunk = store.create(
        parent.model_copy(
            update={"id": chunk_job_id(parent.id, 0), "chunk": ChunkRef(parent_id=parent.id, index=0)}
        )
    )
    store.claim(chunk.id)
    store.record_progress(chunk.id, processed_rows=3, checkpoint={"written": 3})
    if status is JobStatus.FAILED:
        store.fail(chunk.id, "broken", outcome=JobOutcome(result={"written": 5}), last_error="boom")
    else:
        store.cancel(chunk.id, tenant="acme")
        store.end_cancelled(chunk.id, JobOutcome(result={"written": 5}, processed_rows=5))
    ended = store.get(chunk.id)
    assert ended is not None and ended.attempts == 1
    # When its retried parent resumes it from its ending's counts
    resumed = store.resume_chunk(ended, checkpoint={"written": 5})
    # Then it is PENDING again, with that checkpoint, no ending left and one more attempt
    assert resumed.status is JobStatus.PENDING
    assert resumed.checkpoint == {"written": 5} and resumed.result is None
    assert resumed.error_message is None and resumed.last_error is None
    assert resumed.completed_at is None and resumed.expires_at is None and resumed.cancel_requested_at is None
    assert resumed.max_attempts >= resumed.attempts + 1
    assert store.claim(chunk.id) is not None  # and a worker can take it
    # And a second resume of it, now running, is refused
    with pytest.raises(IllegalTransition):
        store.resume_chunk(resumed, checkpoint=None)


def test_the_first_ending_of_a_racing_job_is_final(store, stack):
    # Given running jobs, each raced by a worker's progress and completion, a cancel (and the worker's
    # ending of it), a failure and the sweeper's requeue, all at once
    for round_ in range(12):
        job_id = f"01JDZ8Q4N6X3V2C8Y7T5R9K{round_:03d}"
        new_job(store, job_id)
        store.claim(job_id)
        endings: list[Job] = []
        start = threading.Barrier(6)

        def attempt(
            write: str, job_id: str = job_id, endings: list[Job] = endings, start: threading.Barrier = start
        ) -> None:
            start.wait()
            for _ in range(3):
                try:
                    changed = EVERY_WRITE[write](store, job_id)
                except (IllegalTransition, JobNotFound):
                    continue
                if isinstance(changed, Job) and changed.status.is_terminal:
                    endings.append(changed)

        racers = ["progress", "complete", "cancel", "end cancelled", "fail", "requeue"]
        threads = [threading.Thread(target=attempt, args=(write,)) for write in racers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Then exactly one write ended it, and the item is what that write left, to the updatedAt
        final = store.get(job_id)
        if final.status.is_terminal:
            assert len(endings) == 1, [e.status for e in endings]
            assert final == endings[0] and final.updated_at == final.completed_at
        else:
            assert endings == []
