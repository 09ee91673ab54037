"""The sweeper: no job waits forever and none is silently lost.

Through the sparse active-jobs indexes (never a table scan) it finds
* PROCESSING jobs whose heartbeat stopped (BullMQ's "stalled"): requeued from their checkpoint as a
  new attempt, or FAILED once maxAttempts is used up;
* PENDING imports whose upload never arrived within the upload URL's lifetime plus a grace period:
  FAILED, saying so;
* PENDING jobs whose queue message was lost: re-enqueued;
* jobs whose message ended in a dead-letter queue: FAILED with the reason.
Every change is a conditional write (a stuck job is taken back only if its heartbeat has not moved
since the sweeper looked), so sweeps are idempotent and safe to run concurrently with each other
and with the workers. A cancelled job is terminal and is never touched.
"""

from __future__ import annotations

from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from impex.aws.files import FilesBucket
from impex.aws.queues import DeadLetters, JobMessage, PriorityQueues
from impex.clock import iso, parse_iso, utc_now
from impex.errors import ImpexError
from impex.jobs.model import Job, JobStatus, JobType
from impex.jobs.store import JobStore
from impex.observability import logger, metrics
from impex.pipelines.fanout import ChunkedJobs
from impex.pipelines.messages import job_ids_in

DEAD_LETTER_ROUNDS = 10


@dataclass
class SweepReport:
    """What one sweep did, by kind of action."""

    actions: Counter[str] = field(default_factory=Counter)
    jobs: dict[str, list[str]] = field(default_factory=dict)

    def add(self, action: str, job: Job | str) -> None:
        self.actions[action] += 1
        self.jobs.setdefault(action, []).append(job if isinstance(job, str) else job.id)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary, returned by the handler."""
        return {"actions": dict(self.actions), "jobs": self.jobs}

    def message(self) -> str:
        """One line for people: what was found and done."""
        if not self.actions:
            return "no stuck or lost jobs"
        return ", ".join(
            f"{count} {action.replace('_', ' ')}" for action, count in sorted(self.actions.items())
        )


class Sweeper:
    """One pass over the active jobs (all tenants, or one tenant's for POST /jobs/process)."""

    def __init__(
        self,
        *,
        jobs: JobStore,
        queues: dict[JobType, PriorityQueues],
        files: FilesBucket,
        stuck_after_seconds: int,
        upload_ttl_seconds: int,
        upload_grace_seconds: int,
        pending_requeue_after_seconds: int,
        dead_letter_queues: dict[JobType, DeadLetters] | None = None,
        fanout: dict[JobType, ChunkedJobs] | None = None,
    ) -> None:
        self._fanout = fanout or {}
        self._jobs = jobs
        self._queues = queues
        self._files = files
        self._stuck_after = timedelta(seconds=stuck_after_seconds)
        self._upload_deadline = timedelta(seconds=upload_ttl_seconds + upload_grace_seconds)
        self._pending_after = timedelta(seconds=pending_requeue_after_seconds)
        self._dead_letters = dead_letter_queues or {}

    def sweep(
        self, now: datetime | str | None = None, *, tenant: str | None = None, limit_per_type: int = 100
    ) -> SweepReport:
        """Find and mend stuck, orphaned and dead-lettered jobs."""
        moment = utc_now() if now is None else now if isinstance(now, datetime) else parse_iso(now)
        report = SweepReport()
        seen: Counter[JobType] = Counter()
        for job in self._active(JobStatus.PROCESSING, moment - self._stuck_after, tenant, limit_per_type):
            if seen[job.type] < limit_per_type:
                seen[job.type] += 1
                self._recover_stuck(job, report)
        pending_cutoff = moment - min(self._pending_after, self._upload_deadline)
        for job in self._active(JobStatus.PENDING, pending_cutoff, tenant, limit_per_type):
            if seen[job.type] < limit_per_type:
                seen[job.type] += 1
                self._recover_pending(job, moment, report)
        if tenant is None:
            self._drain_dead_letters(report)
        metrics.add_metric(
            name="StuckJobs",
            unit="Count",
            value=report.actions["stuck_requeued"] + report.actions["stuck_failed"],
        )
        if report.actions:
            logger.info("sweep", extra={"actions": dict(report.actions)})
        return report

    def _active(self, status: JobStatus, before: datetime, tenant: str | None, limit: int) -> list[Job]:
        cutoff = iso(before)
        if tenant is None:
            return self._jobs.list_active(status, heartbeat_before=cutoff, limit=limit * 2)
        return self._jobs.list_active_for_tenant(tenant, status, heartbeat_before=cutoff, limit=limit * 2)

    def _recover_stuck(self, job: Job, report: SweepReport) -> None:
        if job.fanout is not None:
            self._settle_fanned_out(job, report)
            return
        quiet_since = job.heartbeat_at or job.updated_at
        try:
            if job.attempts >= job.max_attempts:
                failed = self._jobs.fail(
                    job.id,
                    _stalled_message(job, quiet_since),
                    last_error=f"stalled: no heartbeat since {quiet_since}",
                    allowed_from=frozenset({JobStatus.PROCESSING}),
                    expected_heartbeat=job.heartbeat_at,
                )
                report.add("stuck_failed", job)
                self._settle_parent_of(failed)
                return
            self._jobs.requeue(
                job.id,
                reason=f"stalled: no heartbeat since {quiet_since}; requeued from its checkpoint",
                expected_heartbeat=job.heartbeat_at,
            )
        except ImpexError:
            return  # the worker came back to life, or the job was cancelled: leave it
        self._queues[job.type].send(JobMessage(job.id, job.tenant), priority=job.priority.value)
        report.add("stuck_requeued", job)

    def _recover_pending(self, job: Job, now: datetime, report: SweepReport) -> None:
        age_since_created = now - parse_iso(job.created_at)
        never_started = job.type is JobType.IMPORT and job.attempts == 0 and not job.checkpoint
        if never_started and job.file is not None and not self._uploaded(job):
            if age_since_created < self._upload_deadline:
                return  # the upload URL may still be used
            try:
                self._jobs.fail(
                    job.id,
                    "the file was never uploaded: its upload URL expired "
                    f"{int(self._upload_deadline.total_seconds() / 60)} minutes after "
                    "the job was created; create a new import",
                    allowed_from=frozenset({JobStatus.PENDING}),
                    expected_heartbeat=job.heartbeat_at,
                )
            except ImpexError:
                return
            report.add("uploads_missing", job)
            return
        heartbeat = parse_iso(job.heartbeat_at) if job.heartbeat_at else parse_iso(job.updated_at)
        if now - heartbeat < self._pending_after:
            return
        # Its message was lost (or the S3 notification never came): send a fresh one.
        self._queues[job.type].send(JobMessage(job.id, job.tenant), priority=job.priority.value)
        self._jobs.touch(job.id, JobStatus.PENDING)
        report.add("messages_resent", job)

    def _uploaded(self, job: Job) -> bool:
        assert job.file is not None
        return self._files.find(job.file.key, bucket=job.file.bucket) is not None

    def _drain_dead_letters(self, report: SweepReport) -> None:
        for job_type, queue in self._dead_letters.items():
            for _ in range(DEAD_LETTER_ROUNDS):
                messages = queue.receive()
                if not messages:
                    break
                for body, receipt in messages:
                    for job_id, tenant in job_ids_in(body):
                        self._fail_dead_lettered(job_id, tenant, job_type, report)
                    queue.delete(receipt)

    def _fail_dead_lettered(self, job_id: str, tenant: str, job_type: JobType, report: SweepReport) -> None:
        reason = (
            f"its {job_type.value} message kept failing and was moved to the dead-letter queue; "
            f"see the function's logs, then retry it with POST /jobs/{job_id}/retry"
        )
        try:
            failed = self._jobs.fail(job_id, reason, last_error="dead-lettered", tenant=tenant)
        except ImpexError:
            return  # unknown, or already ended (a late message never resurrects a finished job)
        report.add("dead_lettered", job_id)
        self._settle_parent_of(failed)

    def _settle_fanned_out(self, parent: Job, report: SweepReport) -> None:
        """A fanned-out import holds no worker itself: its chunks are swept on their own. Quiet means
        none has checkpointed lately; end it if they have all ended, else look again later."""
        coordinator = self._fanout.get(parent.type)
        if coordinator is None:
            return
        if parent.resume_pending:
            # The worker resuming a retry died (or stalled) half-way: finish putting its chunks back.
            coordinator.resume(parent)
        else:
            coordinator.settle(parent.id)
        current = self._jobs.get(parent.id)
        if current is not None and current.status.is_terminal:
            report.add("fanned_out_ended", parent)
            return
        with suppress(ImpexError):
            self._jobs.touch(parent.id, JobStatus.PROCESSING)

    def _settle_parent_of(self, job: Job) -> None:
        """A chunk the sweeper failed: the others stop, and the last to end ends the parent."""
        coordinator = self._fanout.get(job.type)
        if job.chunk is not None and coordinator is not None:
            coordinator.settle(job.chunk.parent_id)


def _stalled_message(job: Job, quiet_since: str) -> str:
    """Why a job that kept stopping its worker failed: a poison file ends here, never in a loop."""
    attempts = f"on each of its {job.attempts} attempts (no heartbeat since {quiet_since})"
    if job.type is JobType.IMPORT:
        return (
            f"the importer stopped while reading this file {attempts}: it ran out of memory, crashed "
            "or timed out on it; check the file (its size, a huge line or sheet), split it, or retry it "
            f"with POST /jobs/{job.id}/retry"
        )
    return f"the job stalled {attempts}; retry it with POST /jobs/{job.id}/retry"
