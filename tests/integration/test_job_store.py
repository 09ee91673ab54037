"""The job store on moto: conditional transitions, the claim race, progress, the indexes and expiry."""

from __future__ import annotations

import threading
import time

import boto3
import pytest

from impex.clock import iso, utc_now
from impex.errors import IllegalTransition, JobExists, JobNotFound
from impex.jobs.model import FileRef, Job, JobOutcome, JobStatus, JobType
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


def test_progress_never_moves_a_job_out_of_a_terminal_state(store):
    new_job(store)
    store.claim("01JDZ8Q4N6X3V2C8Y7T5R9K1MB")
    store.cancel("01JDZ8Q4N6X3V2C8Y7T5R9K1MB", tenant="acme")
    with pytest.raises(JobNotProcessing) as raised:
        store.record_progress("01JDZ8Q4N6X3V2C8Y7T5R9K1MB", processed_rows=10)
    assert raised.value.status is JobStatus.CANCELLED
    job = store.get("01JDZ8Q4N6X3V2C8Y7T5R9K1MB")
    assert job.status is JobStatus.CANCELLED and job.processed_rows == 0


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


def test_what_a_worker_knows_is_added_to_a_cancelled_job_and_to_no_other(store):
    # Given one job cancelled while its worker ran, and one still running
    for job_id in ("01JDZ8Q4N6X3V2C8Y7T5R9K000", "01JDZ8Q4N6X3V2C8Y7T5R9K001"):
        new_job(store, job_id)
        store.claim(job_id)
    cancelled = store.cancel("01JDZ8Q4N6X3V2C8Y7T5R9K000", tenant="acme")
    # When each worker records its outcome as a cancelled job's
    for job_id in ("01JDZ8Q4N6X3V2C8Y7T5R9K000", "01JDZ8Q4N6X3V2C8Y7T5R9K001"):
        store.record_cancelled_outcome(job_id, JobOutcome(result={"written": 3}, processed_rows=3))
    # Then only the cancelled one carries it, and stays CANCELLED
    ended = store.get("01JDZ8Q4N6X3V2C8Y7T5R9K000")
    assert ended.status is JobStatus.CANCELLED and ended.result == {"written": 3}
    assert ended.processed_rows == 3 and ended.completed_at == cancelled.completed_at
    running = store.get("01JDZ8Q4N6X3V2C8Y7T5R9K001")
    assert running.status is JobStatus.PROCESSING and running.result is None
