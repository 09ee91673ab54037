"""The API's one error shape, the HTTP status of each domain error, and the resolver's error handlers."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from impex.api.auth import tenant_of
from impex.api.models import ErrorBody
from impex.errors import (
    BadRequest,
    BodyTooLarge,
    Conflict,
    ImpexError,
    InvalidInput,
    ItemTooLarge,
    NotFound,
    Unauthenticated,
)
from impex.observability import logger

_STATUS_BY_ERROR: list[tuple[type[ImpexError], HTTPStatus]] = [
    (BadRequest, HTTPStatus.BAD_REQUEST),
    (BodyTooLarge, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
    (ItemTooLarge, HTTPStatus.UNPROCESSABLE_ENTITY),
    (InvalidInput, HTTPStatus.UNPROCESSABLE_ENTITY),
    (Unauthenticated, HTTPStatus.UNAUTHORIZED),
    (NotFound, HTTPStatus.NOT_FOUND),
    (Conflict, HTTPStatus.CONFLICT),
]


def _error_doc(description: str) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": ErrorBody}}}


ERROR_RESPONSES: dict[int, OpenAPIResponse] = {
    400: _error_doc("The request could not be read"),
    401: _error_doc("No usable tenant claim"),
    404: _error_doc("Not found (or not yours)"),
    409: _error_doc("Conflicts with the current state"),
    413: _error_doc("The request body is over its limit"),
    415: _error_doc("The request body is not JSON (send Content-Type: application/json)"),
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


def _methods_for(app: APIGatewayHttpResolver, path: str) -> list[str]:
    """The methods the resolver has a route for at ``path`` (its route table is Powertools' own)."""
    routes = getattr(app, "_static_routes", []) + getattr(app, "_dynamic_routes", [])
    return sorted({route.method for route in routes if route.rule.match(path)})


def register_error_handlers(app: APIGatewayHttpResolver, *, tenant_claim: str) -> None:
    """Map every error a route can raise to the one error shape."""

    @app.exception_handler(ImpexError)
    def domain_error(error: ImpexError) -> Response[Any]:
        return error_response(http_status_for(error), error.code, error.message, error.details)

    def refused_first() -> Response[Any] | None:
        """The answer that comes before any body problem: 401 for no tenant, then 415 for a body
        that is not JSON (Powertools would read forms and multipart too; impex takes only JSON)."""
        # Powertools validates before dependencies run, so the 401 is given here too.
        try:
            tenant_of(app.current_event, tenant_claim)
        except Unauthenticated as unauthenticated:
            return error_response(HTTPStatus.UNAUTHORIZED, unauthenticated.code, unauthenticated.message)
        content_type = (app.current_event.headers.get("content-type") or "").strip()
        if content_type and not content_type.lower().startswith("application/json"):
            return error_response(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                f"the body must be JSON (Content-Type: application/json), not {content_type[:100]}",
            )
        return None

    @app.exception_handler(RequestValidationError)
    def invalid_request(error: RequestValidationError) -> Response[Any]:
        return refused_first() or _validation_error(error)

    @app.exception_handler(RequestUnsupportedContentType)
    def not_json(error: RequestUnsupportedContentType) -> Response[Any]:
        return refused_first() or unexpected(error)

    @app.exception_handler(ValueError)
    def unreadable_form(error: ValueError) -> Response[Any]:
        # Powertools' form and multipart readers raise ValueError for a body they cannot split.
        return refused_first() or unexpected(error)

    @app.not_found
    def no_route(_: Exception) -> Response[Any]:
        path = app.current_event.path
        allowed = _methods_for(app, path)
        if allowed:
            # The path exists with other methods: 405 and the Allow header, as HTTP says.
            response = error_response(
                HTTPStatus.METHOD_NOT_ALLOWED,
                "method_not_allowed",
                f"{app.current_event.http_method} is not allowed on {path}; use {', '.join(allowed)}",
                details={"allowed": allowed},
            )
            response.headers["Allow"] = ", ".join(allowed)
            return response
        return error_response(HTTPStatus.NOT_FOUND, "no_route", f"no route {path}")

    @app.exception_handler(Exception)
    def unexpected(_: BaseException) -> Response[Any]:
        logger.exception("unhandled error")
        return error_response(
            HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "an unexpected error occurred"
        )


def _validation_error(error: RequestValidationError) -> Response[Any]:
    problems = [
        {
            "loc": list(e.get("loc", ())),
            "type": e.get("type"),
            "message": str(e.get("msg", "")).removeprefix("Value error, "),
        }
        for e in error.errors()
    ]
    if any(p["type"] == "json_invalid" for p in problems):
        return error_response(HTTPStatus.BAD_REQUEST, "bad_request", "the body is not valid JSON", problems)
    return error_response(
        HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_input", "the request is invalid", problems
    )


def success(status: int, description: str, model: Any = None, **headers: str) -> dict[int, OpenAPIResponse]:
    """A route's success response for the OpenAPI document (with the error responses every route has)."""
    # No model: no body. An empty content map says so (Powertools would document the return type).
    response: OpenAPIResponse = {"description": description, "content": {}}
    if model is not None:
        response["content"] = {"application/json": {"model": model}}
    if headers:
        response["headers"] = {
            name: {"description": text, "schema": {"type": "string"}} for name, text in headers.items()
        }
    return {status: response}


def documented(*successes: dict[int, OpenAPIResponse]) -> dict[int, OpenAPIResponse]:
    """The success responses given, and every error response."""
    merged: dict[int, OpenAPIResponse] = {}
    for one in successes:
        merged.update(one)
    return {**merged, **ERROR_RESPONSES}
