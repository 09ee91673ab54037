"""The API's use cases: create, read, list, cancel and download jobs. Routes only translate HTTP."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from ulid import ULID

from impex.api.models import (
    CreatedExport,
    CreatedImport,
    CreateExport,
    CreateImport,
    JobList,
    JobStatusResponse,
    JobSummary,
    ProcessResult,
    Upload,
)
from impex.aws.files import FilesBucket, export_key, upload_key
from impex.aws.queues import JobMessage, PriorityQueues
from impex.clock import iso, utc_now
from impex.datasets.filters import check_filters
from impex.datasets.model import Dataset
from impex.datasets.store import DatasetStore
from impex.errors import Conflict, DatasetNotFound, FileNotReady, InvalidInput
from impex.formats.file_format import IMPORT_FORMATS, FileFormat, format_from_file_name
from impex.jobs.model import FileRef, Job, JobStatus, JobType
from impex.jobs.options import ExportJobOptions
from impex.jobs.store import JobStore

# The sweeper's pass over one tenant's jobs (at most so many per type): what it did, for people.
TenantSweep = Callable[[str, int], str]

PROCESS_LIMIT_PER_TYPE = 10
LONG_POLL_INTERVAL_SECONDS = 0.5


@dataclass(frozen=True)
class ApiLimits:
    """Limits the API signs into URLs."""

    max_upload_bytes: int
    upload_url_ttl_seconds: int
    download_url_ttl_seconds: int


class JobService:
    """Job use cases for one deployment, called with the caller's tenant."""

    def __init__(
        self,
        *,
        jobs: JobStore,
        datasets: DatasetStore,
        files: FilesBucket,
        export_queues: PriorityQueues,
        import_queues: PriorityQueues,
        limits: ApiLimits,
        sweep_tenant: TenantSweep,
    ) -> None:
        self.jobs = jobs
        self.datasets = datasets
        self.files = files
        self.export_queues = export_queues
        self.import_queues = import_queues
        self.limits = limits
        self._sweep_tenant = sweep_tenant

    # --- creation ----------------------------------------------------------------------------------

    def create_import_job(self, tenant: str, request: CreateImport) -> Job:
        """Validate an import request against its dataset and store a PENDING job."""
        dataset = self._dataset_for_request(tenant, request.dataset)
        file_format = (
            FileFormat(request.format) if request.format else format_from_file_name(request.file_name)
        )
        if file_format is None:
            raise InvalidInput(
                f"cannot tell the format of '{request.file_name}' from its name; give `format`",
                details={"formats": [f.value for f in IMPORT_FORMATS]},
            )
        mapping = request.mapping or request.options.mapping
        if mapping:
            unknown = sorted({f for f in mapping.values() if dataset.field(f) is None})
            if unknown:
                raise InvalidInput(
                    f"the mapping targets unknown fields: {', '.join(unknown)}",
                    details={"unknownFields": unknown, "fields": dataset.field_names},
                )
        job_id = str(ULID())
        options = request.options.model_copy(update={"mapping": mapping}) if mapping else request.options
        now = iso(utc_now())
        job = Job(
            id=job_id,
            type=JobType.IMPORT,
            tenant=tenant,
            dataset=dataset.name,
            format=file_format,
            options=options,
            priority=request.priority,
            max_attempts=request.options.max_attempts,
            file=FileRef(
                bucket=self.files.name,
                key=upload_key(tenant, job_id, request.file_name),
                name=request.file_name,
            ),
            created_at=now,
            updated_at=now,
        )
        return self.jobs.create(job)

    def create_export_job(self, tenant: str, request: CreateExport) -> Job:
        """Validate an export request against its dataset, store a PENDING job and queue it."""
        dataset = self._dataset_for_request(tenant, request.dataset)
        if request.fields:
            unknown = [f for f in request.fields if dataset.field(f) is None]
            if unknown:
                raise InvalidInput(
                    f"unknown fields: {', '.join(unknown)}",
                    details={"unknownFields": unknown, "fields": dataset.field_names},
                )
            if len(set(request.fields)) != len(request.fields):
                raise InvalidInput("a field is listed twice in `fields`")
        check_filters(dataset, request.filters)
        job_id = str(ULID())
        now = iso(utc_now())
        options = ExportJobOptions(
            **request.options.model_dump(),
            filters=request.filters,
            fields=request.fields or dataset.field_names,
        )
        file_name = request.options.file_name or _export_file_name(dataset.name, request, now)
        job = Job(
            id=job_id,
            type=JobType.EXPORT,
            tenant=tenant,
            dataset=dataset.name,
            format=FileFormat(request.format),
            options=options,
            priority=request.priority,
            max_attempts=request.options.max_attempts,
            file=FileRef(bucket=self.files.name, key=export_key(tenant, job_id, file_name), name=file_name),
            created_at=now,
            updated_at=now,
        )
        created = self.jobs.create(job)
        # If this send is lost the job stays PENDING, and the sweeper re-enqueues it.
        self.export_queues.send(JobMessage(job_id, tenant), priority=request.priority.value)
        return created

    def import_created(self, job: Job) -> CreatedImport:
        """The 201 body of an import: the job and a fresh presigned POST for its upload, only while
        the job is PENDING (a replay for a job that has started gets no form: nothing may replace
        the file it is reading, or has read)."""
        assert job.file is not None
        if job.status is not JobStatus.PENDING:
            return CreatedImport(job=self.status_of(job), upload=None)
        ticket = self.files.presign_upload(
            job.file.key,
            max_bytes=self.limits.max_upload_bytes,
            ttl_seconds=self.limits.upload_url_ttl_seconds,
        )
        return CreatedImport(
            job=self.status_of(job),
            upload=Upload(
                url=ticket.url,
                fields=ticket.fields,
                key=ticket.key,
                max_bytes=ticket.max_bytes,
                expires_at=ticket.expires_at,
            ),
        )

    def export_created(self, job: Job) -> CreatedExport:
        """The 201 body of an export."""
        return CreatedExport(job=self.status_of(job))

    # --- reads -------------------------------------------------------------------------------------

    def status(self, tenant: str, job_id: str, job_type: JobType | None) -> JobStatusResponse:
        """The seed's status response for the tenant's job."""
        return self.status_of(self.jobs.get_for_tenant(tenant, job_id, job_type))

    def status_of(self, job: Job) -> JobStatusResponse:
        """Map a job to the status response, signing a fresh download URL for a completed export."""
        file_url = None
        if job.type is JobType.EXPORT and job.status is JobStatus.COMPLETED and job.file is not None:
            file_url = self.files.presign_download(
                job.file.key, file_name=job.file.name, ttl_seconds=self.limits.download_url_ttl_seconds
            )
        return JobStatusResponse.from_job(job, file_url=file_url)

    def list_jobs(
        self,
        tenant: str,
        *,
        job_type: JobType | None,
        status: JobStatus | None,
        limit: int,
        cursor: str | None,
    ) -> JobList:
        """The tenant's jobs, newest first, one page."""
        page = self.jobs.list_for_tenant(tenant, job_type=job_type, status=status, limit=limit, cursor=cursor)
        summaries = [
            JobSummary(
                **self.status_of(job).model_dump(),
                dataset=job.dataset,
                format=job.format,
                priority=job.priority,
                attempts=job.attempts,
            )
            for job in page.jobs
        ]
        return JobList(jobs=summaries, next_cursor=page.next_cursor)

    def download_url(self, tenant: str, job_id: str, which: str) -> str:
        """A fresh presigned GET for the job's export file, or (which="errors") its error report."""
        job = self.jobs.get_for_tenant(tenant, job_id)
        if which == "errors":
            if job.error_report is None:
                raise FileNotReady(f"job {job_id} has no error report")
            report = job.error_report
            return self.files.presign_download(
                report.key, file_name=report.name, ttl_seconds=self.limits.download_url_ttl_seconds
            )
        if job.type is not JobType.EXPORT:
            raise FileNotReady(f"job {job_id} is an import; its only download is ?file=errors")
        if job.status is not JobStatus.COMPLETED or job.file is None:
            raise Conflict(
                f"export {job_id} is {job.status.value}; its file is ready once it is COMPLETED",
                details={"status": job.status.value},
            )
        return self.files.presign_download(
            job.file.key, file_name=job.file.name, ttl_seconds=self.limits.download_url_ttl_seconds
        )

    # --- actions -----------------------------------------------------------------------------------

    def cancel(self, tenant: str, job_id: str, *, wait_seconds: float = 0) -> Job:
        """Cancel a PENDING or PROCESSING job. A job a worker may hold ends when the worker stops at its
        next batch; wait up to ``wait_seconds`` for it to end (it stays as it was if time runs out)."""
        job = self.jobs.cancel(job_id, tenant=tenant)
        deadline = time.monotonic() + wait_seconds
        while not job.status.is_terminal and time.monotonic() < deadline:
            time.sleep(LONG_POLL_INTERVAL_SECONDS)
            job = self.jobs.get_for_tenant(tenant, job_id)
        return job

    def commit(self, tenant: str, job_id: str) -> Job:
        """Turn a completed dry run into a real import of the same uploaded file (no second upload)."""
        dry_run = self.jobs.get_for_tenant(tenant, job_id, JobType.IMPORT)
        if not dry_run.import_options.dry_run:
            raise Conflict(f"job {job_id} is not a dry run; only dry runs can be committed")
        if dry_run.status is not JobStatus.COMPLETED:
            raise Conflict(
                f"dry run {job_id} is {dry_run.status.value}; only a COMPLETED dry run can be committed",
                details={"status": dry_run.status.value},
            )
        self._check_unchanged_since(dry_run)
        now = iso(utc_now())
        options = dry_run.import_options.model_copy(update={"dry_run": False, "committed_from": dry_run.id})
        job = dry_run.model_copy(
            update={
                "id": str(ULID()),
                "options": options,
                "status": JobStatus.PENDING,
                "progress": 0,
                "total_rows": None,
                "processed_rows": 0,
                "error_message": None,
                "result": None,
                "error_report": None,
                "attempts": 0,
                "heartbeat_at": None,
                "checkpoint": None,
                # The commit is a job of its own: it fans out (or not) as any import does.
                "fanout": None,
                "cancel_requested_at": None,
                "last_error": None,
                "created_at": now,
                "updated_at": now,
                "started_at": None,
                "completed_at": None,
                "expires_at": None,
            }
        )
        created = self.jobs.create(job)
        self.import_queues.send(JobMessage(created.id, tenant), priority=created.priority.value)
        return created

    def retry(self, tenant: str, job_id: str) -> Job:
        """Re-run a FAILED job as a new attempt: from its checkpoint if it has one, else from the start."""
        job = self.jobs.get_for_tenant(tenant, job_id)
        if job.status is not JobStatus.FAILED:
            raise Conflict(
                f"job {job_id} is {job.status.value}; only FAILED jobs can be retried",
                details={"status": job.status.value},
            )
        # A manual retry always gets at least one more attempt.
        retried = self.jobs.retry(
            job_id,
            tenant=tenant,
            max_attempts=max(job.max_attempts, job.attempts + 1),
            resume_chunks=job.fanout is not None,
        )
        queues = self.import_queues if job.type is JobType.IMPORT else self.export_queues
        queues.send(JobMessage(job_id, tenant), priority=job.priority.value)
        return retried

    def process(self, tenant: str) -> ProcessResult:
        """The seed's process endpoint: the sweeper's pass now, over the caller's jobs, ≤ 10 per type."""
        done = self._sweep_tenant(tenant, PROCESS_LIMIT_PER_TYPE)
        return ProcessResult(success=True, message=f"swept the caller's jobs: {done}")

    def wait_for_change(
        self,
        tenant: str,
        job_id: str,
        job_type: JobType | None,
        *,
        wait_seconds: float,
        if_none_match: str | None,
    ) -> tuple[Job, str]:
        """Long polling: the job once its ETag differs from ``if_none_match`` (or from now), or on timeout."""
        job = self.jobs.get_for_tenant(tenant, job_id, job_type)
        seen = if_none_match or etag_of(job)
        deadline = time.monotonic() + wait_seconds
        while etag_of(job) == seen and time.monotonic() < deadline:
            time.sleep(LONG_POLL_INTERVAL_SECONDS)
            job = self.jobs.get_for_tenant(tenant, job_id, job_type)
        return job, etag_of(job)

    def _check_unchanged_since(self, dry_run: Job) -> None:
        """A commit imports exactly the object its dry run checked: Conflict if the key now holds another."""
        file = dry_run.file
        assert file is not None
        current = self.files.find(file.key, bucket=file.bucket)
        if current is None:
            raise Conflict(
                f"the file dry run {dry_run.id} checked is gone (expired?); upload it again for a new dry run"
            )
        if file.version_id is not None and current.version_id != file.version_id:
            raise Conflict(
                f"the file was uploaded again after dry run {dry_run.id} checked it; run a new dry run "
                "of the new file, then commit that",
                details={"checkedVersion": file.version_id, "currentVersion": current.version_id},
            )

    def _dataset_for_request(self, tenant: str, name: str) -> Dataset:
        try:
            return self.datasets.get(tenant, name)
        except DatasetNotFound:
            # A 404 like every other missing resource (the README's error table), with the way out.
            raise DatasetNotFound(
                f"dataset '{name}' does not exist; create it with PUT /datasets/{name}"
            ) from None


def etag_of(job: Job) -> str:
    """A strong validator of the job's visible state: it changes whenever updatedAt or status does."""
    digest = hashlib.sha256(f"{job.updated_at}|{job.status.value}|{job.processed_rows}".encode()).hexdigest()
    return f'"{digest[:32]}"'


def _export_file_name(dataset: str, request: CreateExport, now: str) -> str:
    stamp = now.replace(":", "").replace("-", "").replace(".", "")[:15]
    extension = request.format + (
        ".gz" if request.options.gzip and request.format in {"csv", "jsonl"} else ""
    )
    return f"{dataset}-{stamp}.{extension}"
