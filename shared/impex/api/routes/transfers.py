"""POST /imports and POST /exports: create the jobs that move data in and out."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Header

from impex.api.dependencies import Dependencies, Tenant
from impex.api.errors import ERROR_RESPONSES
from impex.api.models import CreatedExport, CreatedImport, CreateExport, CreateImport

router = Router()

IdempotencyKey = Annotated[str | None, Header(alias="idempotency-key", max_length=255)]


@router.post("/imports", responses=ERROR_RESPONSES, tags=["jobs"])
def create_import(
    caller: Tenant,
    dependencies: Dependencies,
    body: Annotated[CreateImport, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Response[CreatedImport]:
    """Create an import job; upload the file with the returned presigned POST."""
    service = dependencies.service
    job = dependencies.idempotency.create(
        service.create_import_job,
        caller,
        body,
        key=idempotency_key,
        operation="import",
        lambda_context=router.lambda_context,
    )
    return Response(status_code=201, content_type="application/json", body=service.import_created(job))


@router.post("/exports", responses=ERROR_RESPONSES, tags=["jobs"])
def create_export(
    caller: Tenant,
    dependencies: Dependencies,
    body: Annotated[CreateExport, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Response[CreatedExport]:
    """Create an export job and put it on the export queue."""
    service = dependencies.service
    job = dependencies.idempotency.create(
        service.create_export_job,
        caller,
        body,
        key=idempotency_key,
        operation="export",
        lambda_context=router.lambda_context,
    )
    return Response(status_code=201, content_type="application/json", body=service.export_created(job))
