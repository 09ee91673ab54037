"""POST /imports and POST /exports: create the jobs that move data in and out."""

from collections.abc import Callable
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Header
from pydantic import BaseModel

from impex.api.dependencies import ApiDependencies, Dependencies, Tenant
from impex.api.errors import documented, success
from impex.api.models import CreatedExport, CreatedImport, CreateExport, CreateImport
from impex.jobs.model import Job

router = Router()

IdempotencyKey = Annotated[str | None, Header(alias="idempotency-key", max_length=255)]


@router.post(
    "/imports",
    responses=documented(success(201, "The import job and its upload form", CreatedImport)),
    tags=["jobs"],
)
def create_import(
    caller: Tenant,
    dependencies: Dependencies,
    body: Annotated[CreateImport, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Response[CreatedImport]:
    """Create an import job; upload the file with the returned presigned POST."""
    service = dependencies.service
    job = _once(dependencies, service.create_import_job, caller, body, idempotency_key, "import")
    return Response(status_code=201, content_type="application/json", body=service.import_created(job))


@router.post(
    "/exports", responses=documented(success(201, "The export job, queued", CreatedExport)), tags=["jobs"]
)
def create_export(
    caller: Tenant,
    dependencies: Dependencies,
    body: Annotated[CreateExport, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Response[CreatedExport]:
    """Create an export job and put it on the export queue."""
    service = dependencies.service
    job = _once(dependencies, service.create_export_job, caller, body, idempotency_key, "export")
    return Response(status_code=201, content_type="application/json", body=service.export_created(job))


def _once(
    dependencies: ApiDependencies,
    create: Callable[[str, Any], Job],
    caller: str,
    body: BaseModel,
    key: str | None,
    operation: str,
) -> Job:
    """Create the job once per Idempotency-Key (a replay returns the same job)."""
    return dependencies.idempotency.create(
        create, caller, body, key=key, operation=operation, lambda_context=router.lambda_context
    )
