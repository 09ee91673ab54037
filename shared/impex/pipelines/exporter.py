"""The export pipeline: wiring from settings to the export trigger."""

from __future__ import annotations

from impex.aws import clients
from impex.jobs.model import Job, JobStatus
from impex.jobs.store import JobStore
from impex.pipelines.workers import ExportTrigger
from impex.settings import ExporterSettings


def build_export_trigger(settings: ExporterSettings) -> ExportTrigger:
    """The exporter's record handler, wired to AWS from the function's settings."""
    jobs = JobStore(clients.dynamodb().Table(settings.jobs_table), retention_days=settings.job_retention_days)

    def run(job: Job, context: object = None) -> None:
        jobs.transition(
            job.id,
            JobStatus.FAILED,
            set_fields={"errorMessage": "this deployment cannot process exports yet"},
        )

    return ExportTrigger(jobs, run)
