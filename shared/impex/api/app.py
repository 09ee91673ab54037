"""The HTTP API: Powertools' APIGatewayHttpResolver with validation, the generated OpenAPI and Swagger UI.

Routes live in impex.api.routes, one Router per resource; their collaborators are injected through
Powertools' Depends (see impex.api.dependencies), bound here.
"""

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

from impex import __version__
from impex.api.body import parse_json_body
from impex.api.dependencies import ApiDependencies, api_dependencies
from impex.api.errors import register_error_handlers
from impex.api.routes import datasets, jobs, transfers

PREFIX = "/api/import-export"
OPENAPI_OPTIONS: dict[str, Any] = {
    "title": "impex",
    "version": __version__,
    "description": "Bulk import/export jobs for DynamoDB datasets.",
    "security_schemes": {"jwt": HTTPBearer(bearerFormat="JWT")},
    "security": [{"jwt": []}],
}


def build_app(dependencies: ApiDependencies) -> APIGatewayHttpResolver:
    """The resolver with every route under /api/import-export, bound to ``dependencies``."""
    app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=parse_json_body)
    app.dependency_overrides[api_dependencies] = lambda: dependencies
    register_error_handlers(app, tenant_claim=dependencies.tenant_claim)
    for router in (transfers.router, jobs.router, datasets.router):
        app.include_router(router, prefix=PREFIX)

    @app.get(f"{PREFIX}/openapi.json", include_in_schema=False)
    def openapi() -> Response[str]:
        spec = app.get_openapi_json_schema(**OPENAPI_OPTIONS)
        return Response(status_code=200, content_type="application/json", body=spec)

    app.enable_swagger(path=f"{PREFIX}/docs", **OPENAPI_OPTIONS)
    return app
