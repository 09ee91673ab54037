"""What routes depend on, injected with Powertools' Depends: the API's collaborators and the caller.

``build_app`` binds ``api_dependencies`` to the deployment's objects through the resolver's
``dependency_overrides``, so routes never close over a service and tests can bind their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from aws_lambda_powertools.event_handler import Request
from aws_lambda_powertools.event_handler.depends import Depends

from impex.api.auth import tenant_of
from impex.api.idempotency import IdempotentCreation
from impex.api.service import JobService


@dataclass(frozen=True)
class ApiDependencies:
    """The API's collaborators for one deployment."""

    service: JobService
    idempotency: IdempotentCreation
    tenant_claim: str


class NotBound(LookupError):
    """A resolver was built without binding its dependencies (use build_app)."""


def api_dependencies() -> ApiDependencies:
    """The deployment's collaborators; build_app binds this to the real ones."""
    raise NotBound("the API's dependencies are not bound; build the resolver with impex.api.app.build_app")


Dependencies = Annotated[ApiDependencies, Depends(api_dependencies)]


def service(dependencies: Dependencies) -> JobService:
    """The job use cases."""
    return dependencies.service


def caller(request: Request, dependencies: Dependencies) -> str:
    """The caller's tenant, from the claim API Gateway's JWT authorizer has verified."""
    return tenant_of(request.resolved_event, dependencies.tenant_claim)  # type: ignore[arg-type]


Tenant = Annotated[str, Depends(caller)]
Service = Annotated[JobService, Depends(service)]
