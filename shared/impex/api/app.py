"""The HTTP API: Powertools' APIGatewayHttpResolver with validation, the generated OpenAPI and Swagger UI."""

import json
from http import HTTPStatus
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Depends, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from impex import __version__
from impex.api.auth import tenant_of
from impex.api.models import (
    CreatedExport,
    CreatedImport,
    CreateExport,
    CreateImport,
    DatasetDefinition,
    DatasetList,
    DatasetName,
    DatasetOut,
    ErrorBody,
    JobList,
    JobStatusResponse,
    ProcessResult,
)
from impex.api.service import ApiLimits, JobService
from impex.aws import clients
from impex.aws.events import JobEvents
from impex.aws.files import FilesBucket
from impex.datasets.store import DatasetStore
from impex.errors import (
    BadRequest,
    Conflict,
    ImpexError,
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from impex.jobs.model import Job, JobStatus, JobType
from impex.jobs.store import JobStore
from impex.observability import logger
from impex.settings import ApiSettings

PREFIX = "/api/import-export"
IDEMPOTENCY_TTL_SECONDS = 24 * 3600

_STATUS_BY_ERROR: list[tuple[type[ImpexError], HTTPStatus]] = [
    (BadRequest, HTTPStatus.BAD_REQUEST),
    (InvalidInput, HTTPStatus.UNPROCESSABLE_ENTITY),
    (Unauthenticated, HTTPStatus.UNAUTHORIZED),
    (NotFound, HTTPStatus.NOT_FOUND),
    (Conflict, HTTPStatus.CONFLICT),
]


def _error_doc(description: str) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": ErrorBody}}}


_ERRORS: dict[int, OpenAPIResponse] = {
    400: _error_doc("The request could not be read"),
    401: _error_doc("No usable tenant claim"),
    404: _error_doc("Not found (or not yours)"),
    409: _error_doc("Conflicts with the current state"),
    422: _error_doc("Invalid input"),
}


def http_status_for(error: ImpexError) -> HTTPStatus:
    """The HTTP status a domain error maps to (by class, never by message)."""
    for error_class, status in _STATUS_BY_ERROR:
        if isinstance(error, error_class):
            return status
    return HTTPStatus.INTERNAL_SERVER_ERROR


def error_response(status: HTTPStatus, code: str, message: str, details: Any = None) -> Response[Any]:
    """The one JSON error shape: {"error": {"code", "message", "details"}}."""
    body = {"error": {"code": code, "message": message, "details": details}}
    return Response(
        status_code=status.value, content_type="application/json", body=json.dumps(body, default=str)
    )


def build_service(settings: ApiSettings) -> JobService:
    """Wire the job use cases to AWS from the function's settings."""
    from impex.pipelines.exporter import export_queues
    from impex.pipelines.importer import import_queues
    from impex.pipelines.sweeper import build_sweeper

    table = clients.dynamodb().Table
    events = JobEvents(clients.events(), settings.event_bus_name)
    return JobService(
        jobs=JobStore(table(settings.jobs_table), retention_days=settings.job_retention_days, events=events),
        datasets=DatasetStore(table(settings.datasets_table), external_tables=settings.external_tables()),
        files=FilesBucket(clients.s3(settings.s3_addressing_style), settings.files_bucket),
        export_queues=export_queues(settings),
        import_queues=import_queues(settings),
        sweeper=build_sweeper(settings, with_dead_letters=False),
        limits=ApiLimits(
            max_upload_bytes=settings.max_upload_bytes,
            upload_url_ttl_seconds=settings.upload_url_ttl_seconds,
            download_url_ttl_seconds=settings.download_url_ttl_seconds,
        ),
    )


def build_app(settings: ApiSettings, service: JobService | None = None) -> APIGatewayHttpResolver:
    """The resolver with every route under /api/import-export."""
    service = service or build_service(settings)
    app = APIGatewayHttpResolver(enable_validation=True)
    idempotency = IdempotencyConfig(
        event_key_jmespath="[tenant, key, operation]",
        payload_validation_jmespath="body",
        expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
    )
    persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table)

    def current_tenant() -> str:
        return tenant_of(app.current_event, settings.tenant_claim)

    Tenant = Annotated[str, Depends(current_tenant)]

    def once(create: Any, caller: str, key: str | None, operation: str, body: Any) -> Job:
        """Run ``create`` once per (tenant, Idempotency-Key); a replay returns the job it created."""
        if key is None:
            return create(caller, body)  # type: ignore[no-any-return]

        @idempotent_function(
            data_keyword_argument="request", config=idempotency, persistence_store=persistence
        )
        def create_once(request: dict[str, Any]) -> dict[str, Any]:
            job: Job = create(caller, body)
            return {"jobId": job.id}

        if app.lambda_context is not None:
            idempotency.register_lambda_context(app.lambda_context)
        request = {"tenant": caller, "key": key, "operation": operation, "body": body.model_dump(mode="json")}
        created = create_once(request=request)
        return service.jobs.get_for_tenant(caller, created["jobId"])

    # ---- errors ----------------------------------------------------------------------------------

    @app.exception_handler(ImpexError)
    def domain_error(error: ImpexError) -> Response[Any]:
        status = http_status_for(error)
        return error_response(status, error.code, error.message, error.details)

    @app.exception_handler(RequestValidationError)
    def invalid_request(error: RequestValidationError) -> Response[Any]:
        # Powertools validates before dependencies run; an unauthenticated caller still gets its 401 first.
        try:
            current_tenant()
        except Unauthenticated as unauthenticated:
            return error_response(HTTPStatus.UNAUTHORIZED, unauthenticated.code, unauthenticated.message)
        problems = [
            {
                "loc": list(e.get("loc", ())),
                "type": e.get("type"),
                "message": str(e.get("msg", "")).removeprefix("Value error, "),
            }
            for e in error.errors()
        ]
        if any(p["type"] == "json_invalid" for p in problems):
            return error_response(
                HTTPStatus.BAD_REQUEST, "bad_request", "the body is not valid JSON", problems
            )
        return error_response(
            HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_input", "the request is invalid", problems
        )

    @app.exception_handler(IdempotencyValidationError)
    def key_reused(_: IdempotencyValidationError) -> Response[Any]:
        message = "this Idempotency-Key was already used with a different request body"
        return error_response(HTTPStatus.UNPROCESSABLE_ENTITY, "idempotency_key_reused", message)

    @app.exception_handler(IdempotencyAlreadyInProgressError)
    def key_in_flight(_: IdempotencyAlreadyInProgressError) -> Response[Any]:
        message = "a request with this Idempotency-Key is still in progress; retry shortly"
        return error_response(HTTPStatus.CONFLICT, "idempotency_key_in_progress", message)

    @app.not_found
    def no_route(_: Exception) -> Response[Any]:
        return error_response(HTTPStatus.NOT_FOUND, "no_route", f"no route {app.current_event.path}")

    @app.exception_handler(Exception)
    def unexpected(error: Exception) -> Response[Any]:
        logger.exception("unhandled error")
        return error_response(
            HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "an unexpected error occurred"
        )

    # ---- jobs ------------------------------------------------------------------------------------

    @app.post(f"{PREFIX}/imports", responses=_ERRORS, tags=["jobs"])
    def create_import(
        caller: Tenant,
        body: Annotated[CreateImport, Body()],
        idempotency_key: Annotated[str | None, Header(alias="idempotency-key", max_length=255)] = None,
    ) -> Response[CreatedImport]:
        """Create an import job; upload the file with the returned presigned POST."""
        job = once(service.create_import_job, caller, idempotency_key, "import", body)
        return Response(status_code=201, content_type="application/json", body=service.import_created(job))

    @app.post(f"{PREFIX}/exports", responses=_ERRORS, tags=["jobs"])
    def create_export(
        caller: Tenant,
        body: Annotated[CreateExport, Body()],
        idempotency_key: Annotated[str | None, Header(alias="idempotency-key", max_length=255)] = None,
    ) -> Response[CreatedExport]:
        """Create an export job and put it on the export queue."""
        job = once(service.create_export_job, caller, idempotency_key, "export", body)
        return Response(status_code=201, content_type="application/json", body=service.export_created(job))

    @app.get(f"{PREFIX}/jobs", responses=_ERRORS, tags=["jobs"])
    def list_jobs(
        caller: Tenant,
        job_type: Annotated[JobType | None, Query(alias="type")] = None,
        status: Annotated[JobStatus | None, Query()] = None,
        cursor: Annotated[str | None, Query(max_length=2048)] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 25,
    ) -> JobList:
        """The caller's jobs, newest first, one page at a time."""
        return service.list_jobs(caller, job_type=job_type, status=status, limit=limit, cursor=cursor)

    @app.post(f"{PREFIX}/jobs/process", responses=_ERRORS, tags=["jobs"])
    def process_jobs(caller: Tenant) -> ProcessResult:
        """The seed's process endpoint, over the caller's jobs."""
        return service.process(caller)

    @app.get(f"{PREFIX}/jobs/<job_id>/status", responses=_ERRORS, tags=["jobs"])
    def job_status(
        caller: Tenant,
        job_id: Annotated[str, Path(max_length=64)],
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
            status_code=200,
            content_type="application/json",
            headers={"ETag": etag},
            body=service.status_of(job),
        )

    @app.get(f"{PREFIX}/jobs/<job_id>/download", responses=_ERRORS, tags=["jobs"])
    def download(
        caller: Tenant,
        job_id: Annotated[str, Path(max_length=64)],
        file: Annotated[Literal["result", "errors"], Query()] = "result",
    ) -> Response[str]:
        """302 to a fresh presigned URL: the export file, or an import's error report with ?file=errors."""
        url = service.download_url(caller, job_id, "errors" if file == "errors" else "result")
        return Response(status_code=302, headers={"Location": url}, body="")

    @app.post(f"{PREFIX}/jobs/<job_id>/cancel", responses=_ERRORS, tags=["jobs"])
    def cancel(caller: Tenant, job_id: Annotated[str, Path(max_length=64)]) -> JobStatusResponse:
        """Cancel a job that has not ended; 409 if it has."""
        return service.cancel(caller, job_id)

    @app.post(f"{PREFIX}/jobs/<job_id>/retry", responses=_ERRORS, tags=["jobs"])
    def retry(caller: Tenant, job_id: Annotated[str, Path(max_length=64)]) -> CreatedExport:
        """Re-run a FAILED job from its checkpoint (or from the start); 409 for any other status."""
        return service.export_created(service.retry(caller, job_id))

    @app.post(f"{PREFIX}/jobs/<job_id>/commit", responses=_ERRORS, tags=["jobs"])
    def commit(caller: Tenant, job_id: Annotated[str, Path(max_length=64)]) -> Response[CreatedExport]:
        """Import for real the file a COMPLETED dry run validated (201, a new job); 409 otherwise."""
        job = service.commit(caller, job_id)
        return Response(status_code=201, content_type="application/json", body=service.export_created(job))

    # ---- datasets --------------------------------------------------------------------------------

    @app.get(f"{PREFIX}/datasets", responses=_ERRORS, tags=["datasets"])
    def list_datasets(caller: Tenant) -> DatasetList:
        """The caller's datasets."""
        return DatasetList(datasets=[DatasetOut.from_dataset(d) for d in service.datasets.list(caller)])

    @app.get(f"{PREFIX}/datasets/<name>", responses=_ERRORS, tags=["datasets"])
    def get_dataset(caller: Tenant, name: Annotated[DatasetName, Path()]) -> DatasetOut:
        """One dataset."""
        return DatasetOut.from_dataset(service.datasets.get(caller, name))

    @app.put(f"{PREFIX}/datasets/<name>", responses=_ERRORS, tags=["datasets"])
    def put_dataset(
        caller: Tenant, name: Annotated[DatasetName, Path()], body: Annotated[DatasetDefinition, Body()]
    ) -> Response[DatasetOut]:
        """Create (201) or replace (200) a dataset; keys and target table cannot change."""
        dataset, created = service.datasets.put(caller, name, body)
        status = 201 if created else 200
        return Response(
            status_code=status, content_type="application/json", body=DatasetOut.from_dataset(dataset)
        )

    @app.delete(f"{PREFIX}/datasets/<name>", responses=_ERRORS, tags=["datasets"])
    def delete_dataset(caller: Tenant, name: Annotated[DatasetName, Path()]) -> Response[str]:
        """Delete a dataset definition (204); its records are kept."""
        service.datasets.delete(caller, name)
        return Response(status_code=204, body="")

    # ---- the spec --------------------------------------------------------------------------------

    openapi_options: dict[str, Any] = {
        "title": "impex",
        "version": __version__,
        "description": "Bulk import/export jobs for DynamoDB datasets.",
        "security_schemes": {"jwt": HTTPBearer(bearerFormat="JWT")},
        "security": [{"jwt": []}],
    }

    @app.get(f"{PREFIX}/openapi.json", include_in_schema=False)
    def openapi() -> Response[str]:
        spec = app.get_openapi_json_schema(**openapi_options)
        return Response(status_code=200, content_type="application/json", body=spec)

    app.enable_swagger(path=f"{PREFIX}/docs", **openapi_options)
    return app
