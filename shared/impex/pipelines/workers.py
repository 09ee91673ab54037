"""Worker entry points: turn one SQS record (or a schedule tick) into a claimed job and run it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from impex.aws.queues import JobMessage
from impex.clock import parse_iso, utc_now
from impex.jobs.model import Job, JobStatus, JobType
from impex.jobs.store import JobStore
from impex.observability import logger, metrics
from impex.pipelines.fairness import TenantCap
from impex.pipelines.messages import (
    DroppedFile,
    StoredObject,
    UploadForJob,
    classify,
    import_message,
    job_message,
)

# Runs a claimed job; the second argument is the Lambda context (for the remaining time), if any.
JobRunner = Callable[[Job, Any], object]
DroppedFileStarter = Callable[[StoredObject, DroppedFile], "Job | None"]


class ImportTrigger:
    """Claims the import job behind each uploaded object and hands it to the import pipeline."""

    def __init__(
        self,
        jobs: JobStore,
        run: JobRunner,
        start_dropped_file: DroppedFileStarter,
        cap: TenantCap | None = None,
        *,
        settle_parent: Callable[[str], None] | None = None,
    ) -> None:
        self._jobs = jobs
        self._run = run
        self._start_dropped_file = start_dropped_file
        self._cap = cap
        self._settle_parent = settle_parent

    def handle_record(self, record: SQSRecord, lambda_context: Any = None) -> None:
        """One SQS record: an S3 notification, or a message naming a job (commit, retry, continuation)."""
        message = import_message(record.body)
        if isinstance(message, JobMessage):
            self._claim_and_run(
                message.job_id,
                message.tenant,
                expected_key=None,
                context=lambda_context,
                continuation=message.continuation,
            )
            return
        for stored in message:
            self.handle_object(stored, lambda_context)

    def handle_object(self, stored: StoredObject, context: Any = None) -> None:
        """Route one created object: an API upload, a dropped file, or something impex does not own."""
        target = classify(stored.key)
        if isinstance(target, UploadForJob):
            self._claim_and_run(target.job_id, target.tenant, expected_key=stored.key, context=context)
        elif isinstance(target, DroppedFile):
            claimed = self._start_dropped_file(stored, target)
            if claimed is not None:
                logger.set_correlation_id(claimed.id)
                job_started(claimed)
                self._run(claimed, context)
        else:
            logger.warning("ignoring an object impex does not own", extra={"key": stored.key})

    def _claim_and_run(
        self, job_id: str, tenant: str, *, expected_key: str | None, context: Any, continuation: bool = False
    ) -> None:
        logger.set_correlation_id(job_id)
        job = self._jobs.get(job_id)
        if job is None or job.tenant != tenant or job.type is not JobType.IMPORT:
            logger.warning("no import job matches this object", extra={"job_id": job_id})
            return
        if expected_key is not None and (job.file is None or job.file.key != expected_key):
            logger.warning("the object is not this job's upload", extra={"job_id": job_id})
            return
        if job.status is not JobStatus.PENDING:
            logger.info("job already claimed or finished", extra={"job_id": job_id, "status": job.status})
            if job.chunk is not None and job.status.is_terminal and self._settle_parent is not None:
                # A chunk cancelled before it started: its parent may be waiting for it alone.
                self._settle_parent(job.chunk.parent_id)
            return
        if self._cap is not None and not self._cap.admit(job, continuation=continuation):
            return
        claimed = self._jobs.claim(job_id, new_attempt=not continuation)
        if claimed is None:
            # Duplicate delivery, or the job was cancelled or finished meanwhile: nothing to do.
            logger.info("job already claimed or finished", extra={"job_id": job_id, "status": job.status})
            return
        job_started(claimed)
        self._run(claimed, context)


class ExportTrigger:
    """Claims the export job named by each queue message and hands it to the export pipeline."""

    def __init__(
        self,
        jobs: JobStore,
        run: JobRunner,
        cap: TenantCap | None = None,
        *,
        settle_parent: Callable[[str], None] | None = None,
    ) -> None:
        self._jobs = jobs
        self._run = run
        self._cap = cap
        self._settle_parent = settle_parent

    def handle_record(self, record: SQSRecord, lambda_context: Any = None) -> None:
        """One SQS record naming an export job."""
        message = job_message(record.body)
        logger.set_correlation_id(message.job_id)
        job = self._jobs.get(message.job_id)
        if job is None or job.tenant != message.tenant or job.type is not JobType.EXPORT:
            logger.warning("no export job matches this message", extra={"job_id": message.job_id})
            return
        if job.status is not JobStatus.PENDING:
            logger.info("job already claimed or finished", extra={"job_id": job.id, "status": job.status})
            if job.chunk is not None and job.status.is_terminal and self._settle_parent is not None:
                self._settle_parent(job.chunk.parent_id)  # cancelled before it started
            return
        if self._cap is not None and not self._cap.admit(job, continuation=message.continuation):
            return
        claimed = self._jobs.claim(message.job_id, new_attempt=not message.continuation)
        if claimed is None:
            logger.info("job already claimed or finished", extra={"job_id": job.id, "status": job.status})
            return
        job_started(claimed)
        self._run(claimed, lambda_context)


def job_started(job: Job) -> None:
    """Count a claimed job, by type (ImportsStarted / ExportsStarted)."""
    metrics.add_metric(name=f"{job.type.value.title()}sStarted", unit="Count", value=1)


def job_duration(job: Job) -> float:
    """Seconds from the job's first start until now (for the duration metrics at completion)."""
    return (utc_now() - parse_iso(job.started_at or job.created_at)).total_seconds()
