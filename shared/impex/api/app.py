"""The HTTP API: Powertools' APIGatewayHttpResolver with validation, the generated OpenAPI and Swagger UI.

Routes live in impex.api.routes, one Router per resource; their collaborators are injected through
Powertools' Depends (see impex.api.dependencies), bound here.
"""

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from impex.api.body import parse_json_body
from impex.api.dependencies import ApiDependencies, api_dependencies
from impex.api.docs import openapi_document, swagger_page
from impex.api.errors import register_error_handlers
from impex.api.routes import datasets, jobs, transfers

PREFIX = "/api/import-export"


def build_app(dependencies: ApiDependencies) -> APIGatewayHttpResolver:
    """The resolver with every route under /api/import-export, bound to ``dependencies``."""
    app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=parse_json_body)
    app.dependency_overrides[api_dependencies] = lambda: dependencies
    register_error_handlers(app, tenant_claim=dependencies.tenant_claim)
    for router in (transfers.router, jobs.router, datasets.router):
        app.include_router(router, prefix=PREFIX)

    @app.get(f"{PREFIX}/openapi.json", include_in_schema=False)
    def openapi() -> Response[str]:
        return openapi_document(app)

    @app.get(f"{PREFIX}/docs", include_in_schema=False)
    def docs() -> Response[str]:
        return swagger_page(app)

    return app
