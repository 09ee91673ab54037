"""The API's OpenAPI document and Swagger UI, both made by Powertools when first asked for.

Powertools' ``enable_swagger`` imports its OpenAPI models when the app is built: about 70 ms, a third of
the api's cold start over a bare resolver's, paid by every cold start for a page few requests ask
for. These routes import them on first use and serve what ``enable_swagger`` serves: the resolver's
generated spec (``get_openapi_json_schema``) in Powertools' Swagger UI page (``generate_swagger_html``),
with the Swagger UI assets Powertools ships inlined.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from impex import __version__


def openapi_options() -> dict[str, Any]:
    """The document's title, version, description and its JWT security scheme."""
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    return {
        "title": "impex",
        "version": __version__,
        "description": "Bulk import/export jobs for DynamoDB datasets.",
        "security_schemes": {"jwt": HTTPBearer(bearerFormat="JWT")},
        "security": [{"jwt": []}],
    }


def openapi_document(app: APIGatewayHttpResolver) -> Response[str]:
    """The generated OpenAPI document (JSON)."""
    spec = app.get_openapi_json_schema(**openapi_options())
    return Response(status_code=200, content_type="application/json", body=spec)


def swagger_page(app: APIGatewayHttpResolver) -> Response[str]:
    """Swagger UI for the generated document (or the document itself, with ``?format=json``)."""
    from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html

    # As enable_swagger embeds it: "</" escaped, so the JSON cannot close the page's script tag.
    spec = app.get_openapi_json_schema(**openapi_options()).replace("</", "<\\/")
    if (app.current_event.query_string_parameters or {}).get("format") == "json":
        return Response(status_code=200, content_type="application/json", body=spec)
    script, style = _swagger_assets()
    page = generate_swagger_html(spec, script, style, "", None)
    return Response(status_code=200, content_type="text/html", body=page)


@cache
def _swagger_assets() -> tuple[str, str]:
    """Swagger UI's script and style sheet, as Powertools ships them (read once per sandbox)."""
    from aws_lambda_powertools.event_handler.openapi import swagger_ui

    folder = Path(swagger_ui.__file__).parent
    script = (folder / "swagger-ui-bundle.min.js").read_text(encoding="utf-8")
    style = (folder / "swagger-ui.min.css").read_text(encoding="utf-8")
    return script, style
