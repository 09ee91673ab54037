"""Who is calling: the tenant comes from a claim the JWT authorizer has already verified."""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from impex.errors import Unauthenticated
from impex.jobs.model import TENANT_PATTERN


def tenant_of(event: APIGatewayProxyEventV2, claim: str) -> str:
    """The caller's tenant from ``requestContext.authorizer.jwt.claims[claim]``, or Unauthenticated."""
    authorizer = event.request_context.authorizer
    claims = (authorizer.jwt_claim if authorizer else None) or {}
    tenant = claims.get(claim)
    if not isinstance(tenant, str) or not tenant:
        raise Unauthenticated(f"the token has no '{claim}' claim")
    if not TENANT_PATTERN.fullmatch(tenant):
        raise Unauthenticated(f"the '{claim}' claim is not a usable tenant name")
    return tenant
