"""The import pipeline: wiring from settings to the import trigger."""

from __future__ import annotations

from impex.aws import clients
from impex.jobs.model import Job, JobStatus
from impex.jobs.store import JobStore
from impex.observability import logger
from impex.pipelines.messages import DroppedFile, StoredObject
from impex.pipelines.workers import ImportTrigger
from impex.settings import ImporterSettings


def build_import_trigger(settings: ImporterSettings) -> ImportTrigger:
    """The importer's record handler, wired to AWS from the function's settings."""
    jobs = JobStore(clients.dynamodb().Table(settings.jobs_table), retention_days=settings.job_retention_days)

    def run(job: Job) -> None:
        jobs.transition(
            job.id,
            JobStatus.FAILED,
            set_fields={"errorMessage": "this deployment cannot process imports yet"},
        )

    def on_dropped_file(stored: StoredObject, dropped: DroppedFile) -> None:
        logger.warning("dropped files are not imported yet", extra={"key": stored.key})

    return ImportTrigger(jobs, run, on_dropped_file)
