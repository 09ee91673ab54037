"""/datasets: a tenant's typed dataset definitions."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from impex.api.dependencies import Service, Tenant
from impex.api.errors import documented, success
from impex.api.models import DatasetDefinition, DatasetList, DatasetName, DatasetOut

router = Router()

Name = Annotated[DatasetName, Path()]


@router.get(
    "/datasets", responses=documented(success(200, "The tenant's datasets", DatasetList)), tags=["datasets"]
)
def list_datasets(caller: Tenant, service: Service) -> DatasetList:
    """The caller's datasets."""
    return DatasetList(datasets=[DatasetOut.from_dataset(d) for d in service.datasets.list(caller)])


@router.get(
    "/datasets/<name>", responses=documented(success(200, "The dataset", DatasetOut)), tags=["datasets"]
)
def get_dataset(caller: Tenant, service: Service, name: Name) -> DatasetOut:
    """One dataset."""
    return DatasetOut.from_dataset(service.datasets.get(caller, name))


@router.put(
    "/datasets/<name>",
    responses=documented(
        success(200, "The dataset, replaced", DatasetOut), success(201, "The dataset, created", DatasetOut)
    ),
    tags=["datasets"],
)
def put_dataset(
    caller: Tenant, service: Service, name: Name, body: Annotated[DatasetDefinition, Body()]
) -> Response[DatasetOut]:
    """Create (201) or replace (200) a dataset; keys and target table cannot change."""
    dataset, created = service.datasets.put(caller, name, body)
    return Response(
        status_code=201 if created else 200,
        content_type="application/json",
        body=DatasetOut.from_dataset(dataset),
    )


@router.delete(
    "/datasets/<name>",
    responses=documented(success(204, "Deleted (its records are kept)")),
    tags=["datasets"],
)
def delete_dataset(caller: Tenant, service: Service, name: Name) -> Response[str]:
    """Delete a dataset definition (204); its records are kept."""
    service.datasets.delete(caller, name)
    return Response(status_code=204, body="")
