"""/jobs: status (with long polling), listings, downloads, cancel, retry, commit and process."""

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query

from impex.api.dependencies import Service, Tenant
from impex.api.errors import documented, success
from impex.api.models import CreatedExport, JobList, JobStatusResponse, ProcessResult
from impex.jobs.model import JobStatus, JobType

router = Router()

JobId = Annotated[str, Path(max_length=64)]


@router.get(
    "/jobs",
    responses=documented(success(200, "A page of the tenant's jobs, newest first", JobList)),
    tags=["jobs"],
)
def list_jobs(
    caller: Tenant,
    service: Service,
    job_type: Annotated[JobType | None, Query(alias="type")] = None,
    status: Annotated[JobStatus | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
) -> JobList:
    """The caller's jobs, newest first, one page at a time."""
    return service.list_jobs(caller, job_type=job_type, status=status, limit=limit, cursor=cursor)


@router.post(
    "/jobs/process",
    responses=documented(success(200, "What the tenant's sweep did", ProcessResult)),
    tags=["jobs"],
)
def process_jobs(caller: Tenant, service: Service) -> ProcessResult:
    """The seed's process endpoint, over the caller's jobs."""
    return service.process(caller)


@router.get(
    "/jobs/<job_id>/status",
    responses=documented(
        success(200, "The job's status", JobStatusResponse, ETag="a validator of the job's visible state"),
        success(304, "Unchanged since the If-None-Match ETag", ETag="the same validator"),
    ),
    tags=["jobs"],
)
def job_status(
    caller: Tenant,
    service: Service,
    job_id: JobId,
    job_type: Annotated[JobType | None, Query(alias="type")] = None,
    wait_seconds: Annotated[float, Query(alias="waitSeconds", ge=0, le=25)] = 0,
    if_none_match: Annotated[str | None, Header(alias="if-none-match", max_length=100)] = None,
) -> Response[JobStatusResponse | None]:
    """The job's status in the seed's shape (completed exports carry a fresh `fileUrl`).

    Long polling: `waitSeconds` (≤ 25) returns as soon as the job changes, or when it runs out.
    The response's ETag with If-None-Match gives a 304 while nothing changed.
    """
    job, etag = service.wait_for_change(
        caller, job_id, job_type, wait_seconds=wait_seconds, if_none_match=if_none_match
    )
    if if_none_match is not None and if_none_match == etag:
        return Response(status_code=304, headers={"ETag": etag}, body=None)
    return Response(
        status_code=200, content_type="application/json", headers={"ETag": etag}, body=service.status_of(job)
    )


@router.get(
    "/jobs/<job_id>/download",
    responses=documented(
        success(302, "A redirect to a fresh presigned URL of the file", Location="the presigned URL")
    ),
    tags=["jobs"],
)
def download(
    caller: Tenant,
    service: Service,
    job_id: JobId,
    file: Annotated[Literal["result", "errors"], Query()] = "result",
) -> Response[str]:
    """302 to a fresh presigned URL: the export file, or an import's error report with ?file=errors."""
    url = service.download_url(caller, job_id, "errors" if file == "errors" else "result")
    return Response(status_code=302, headers={"Location": url}, body="")


@router.post(
    "/jobs/<job_id>/cancel",
    responses=documented(
        success(200, "The job has ended: CANCELLED (or it finished before the cancel)", JobStatusResponse),
        success(202, "Cancel requested: the worker ends it CANCELLED at its next batch", JobStatusResponse),
    ),
    tags=["jobs"],
)
def cancel(
    caller: Tenant,
    service: Service,
    job_id: JobId,
    wait_seconds: Annotated[float, Query(alias="waitSeconds", ge=0, le=25)] = 0,
) -> Response[JobStatusResponse]:
    """Cancel a job that has not ended; 409 if it has.

    A job no worker has started is CANCELLED at once (200). A running one is asked to stop: its
    worker ends it CANCELLED with its exact counts at its next batch; until then the answer is 202
    with the job as it is. `waitSeconds` (≤ 25) waits for the job to end first.
    """
    job = service.cancel(caller, job_id, wait_seconds=wait_seconds)
    return Response(
        status_code=200 if job.status.is_terminal else 202,
        content_type="application/json",
        body=service.status_of(job),
    )


@router.post(
    "/jobs/<job_id>/retry",
    responses=documented(success(200, "The job, PENDING again", CreatedExport)),
    tags=["jobs"],
)
def retry(caller: Tenant, service: Service, job_id: JobId) -> CreatedExport:
    """Re-run a FAILED job from its checkpoint (or from the start); 409 for any other status."""
    return service.export_created(service.retry(caller, job_id))


@router.post(
    "/jobs/<job_id>/commit",
    responses=documented(success(201, "The import that commits the dry run", CreatedExport)),
    tags=["jobs"],
)
def commit(caller: Tenant, service: Service, job_id: JobId) -> Response[CreatedExport]:
    """Import for real the file a COMPLETED dry run validated (201, a new job); 409 otherwise."""
    job = service.commit(caller, job_id)
    return Response(status_code=201, content_type="application/json", body=service.export_created(job))
