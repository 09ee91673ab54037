"""Worker entry points: turn one SQS record (or a schedule tick) into a claimed job and run it."""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from impex.jobs.model import Job, JobType
from impex.jobs.store import JobStore
from impex.observability import logger
from impex.pipelines.messages import (
    DroppedFile,
    JobMessage,
    StoredObject,
    UploadForJob,
    classify,
    import_message,
    job_message,
)

JobRunner = Callable[[Job], None]


class ImportTrigger:
    """Claims the import job behind each uploaded object and hands it to the import pipeline."""

    def __init__(
        self, jobs: JobStore, run: JobRunner, on_dropped_file: Callable[[StoredObject, DroppedFile], None]
    ):
        self._jobs = jobs
        self._run = run
        self._on_dropped_file = on_dropped_file

    def handle_record(self, record: SQSRecord) -> None:
        """One SQS record: an S3 notification, or a continuation message for a job."""
        message = import_message(record.body)
        if isinstance(message, JobMessage):
            self._claim_and_run(message.job_id, message.tenant, expected_key=None)
            return
        for stored in message:
            self.handle_object(stored)

    def handle_object(self, stored: StoredObject) -> None:
        """Route one created object: an API upload, a dropped file, or something impex does not own."""
        target = classify(stored.key)
        if isinstance(target, UploadForJob):
            self._claim_and_run(target.job_id, target.tenant, expected_key=stored.key)
        elif isinstance(target, DroppedFile):
            self._on_dropped_file(stored, target)
        else:
            logger.warning("ignoring an object impex does not own", extra={"key": stored.key})

    def _claim_and_run(self, job_id: str, tenant: str, *, expected_key: str | None) -> None:
        logger.set_correlation_id(job_id)
        job = self._jobs.get(job_id)
        if job is None or job.tenant != tenant or job.type is not JobType.IMPORT:
            logger.warning("no import job matches this object", extra={"job_id": job_id})
            return
        if expected_key is not None and (job.file is None or job.file.key != expected_key):
            logger.warning("the object is not this job's upload", extra={"job_id": job_id})
            return
        claimed = self._jobs.claim(job_id)
        if claimed is None:
            # Duplicate delivery, or the job was cancelled or finished meanwhile: nothing to do.
            logger.info("job already claimed or finished", extra={"job_id": job_id, "status": job.status})
            return
        self._run(claimed)


class ExportTrigger:
    """Claims the export job named by each queue message and hands it to the export pipeline."""

    def __init__(self, jobs: JobStore, run: JobRunner) -> None:
        self._jobs = jobs
        self._run = run

    def handle_record(self, record: SQSRecord) -> None:
        """One SQS record naming an export job."""
        message = job_message(record.body)
        logger.set_correlation_id(message.job_id)
        job = self._jobs.get(message.job_id)
        if job is None or job.tenant != message.tenant or job.type is not JobType.EXPORT:
            logger.warning("no export job matches this message", extra={"job_id": message.job_id})
            return
        claimed = self._jobs.claim(message.job_id)
        if claimed is None:
            logger.info("job already claimed or finished", extra={"job_id": job.id, "status": job.status})
            return
        self._run(claimed)
