"""A local API Gateway (HTTP API, payload 2.0) in front of the api function, with the JWT authorizer."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from impex.local.auth import LocalIssuer, Unauthorized
from impex.local.template import ACCOUNT_ID

Invoke = Callable[[dict[str, Any]], dict[str, Any]]
TEXT_TYPES = (
    "text/",
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-www-form",
)


@dataclass(frozen=True)
class Route:
    """One HttpApi event of the template: method, path template and whether it needs the JWT."""

    method: str
    path: str
    authorized: bool

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in ("ANY", method):
            return None
        pattern = (
            "^"
            + re.sub(
                r"\\{(\w+)\\\+\\}",
                r"(?P<\1>.+)",
                re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(self.path)),
            )
            + "$"
        )
        found = re.match(pattern, path)
        return found.groupdict() if found else None

    @property
    def specificity(self) -> tuple[int, int]:
        return (("{" not in self.path and 1) or 0, len(self.path))


class _BackloggedServer(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: a burst of clients beyond it gets its connections
    # reset before a thread can accept them. API Gateway takes bursts of thousands.
    request_queue_size = 1024


class LocalGateway:
    """Serves HTTP on 127.0.0.1 and calls the api function as API Gateway would."""

    def __init__(
        self,
        routes: list[Route],
        invoke: Invoke,
        issuer: LocalIssuer,
        *,
        port: int,
        tenant_claim: str,
        cors_origin: str = "*",
    ) -> None:
        self.routes = sorted(routes, key=lambda r: r.specificity, reverse=True)
        self.invoke = invoke
        self.issuer = issuer
        self.tenant_claim = tenant_claim
        self.cors_origin = cors_origin
        self._server = _BackloggedServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-gateway", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no ~40 ms Nagle/delayed-ACK stall between headers and body

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                status, headers, body = gateway.handle(
                    self.command, self.path, dict(self.headers.items()), self._body(), self.client_address[0]
                )
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _body(self) -> bytes:
                declared = self.headers.get("Content-Length") or "0"
                length = (
                    int(declared) if declared.isdigit() else 0
                )  # API Gateway refuses what is not a length
                return self.rfile.read(length) if length else b""

            # Every method API Gateway passes on (a route of ANY gets them all), including ones
            # http.server does not know (QUERY...): a JSON answer from the function, never its 501 page.
            def __getattr__(self, name: str) -> Any:
                if name.startswith("do_") and name[3:].isalpha():
                    return self._serve
                raise AttributeError(name)

        return Handler

    # ---- the translation -------------------------------------------------------------------------

    def handle(
        self, method: str, raw_target: str, headers: dict[str, str], body: bytes, source_ip: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """One HTTP request in, one HTTP response out."""
        lowered = {k.lower(): v for k, v in headers.items()}
        cors = [("Access-Control-Allow-Origin", self.cors_origin)]
        if method == "OPTIONS" and "access-control-request-method" in lowered:
            return (
                204,
                [
                    *cors,
                    ("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS"),
                    ("Access-Control-Allow-Headers", "authorization, content-type, idempotency-key"),
                ],
                b"",
            )
        target = urlsplit(raw_target)
        path = target.path
        for route in self.routes:
            parameters = route.match(method, path)
            if parameters is not None:
                break
        else:
            return 404, [*cors, ("Content-Type", "application/json")], b'{"message":"Not Found"}'
        claims: dict[str, str] | None = None
        if route.authorized:
            try:
                claims = self.issuer.verify(lowered.get("authorization"), tenant_claim=self.tenant_claim)
            except Unauthorized as refused:
                refusal = {"error": {"code": "unauthenticated", "message": str(refused), "details": {}}}
                return (
                    401,
                    [
                        *cors,
                        ("Content-Type", "application/json"),
                        ("WWW-Authenticate", 'Bearer error="invalid_token"'),
                    ],
                    json.dumps(refusal).encode(),
                )
        event = self.event(method, path, target.query, lowered, body, source_ip, route, parameters, claims)
        response = self.invoke(event)
        return self.http_response(response, cors)

    def event(
        self,
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        source_ip: str,
        route: Route,
        parameters: dict[str, str],
        claims: dict[str, str] | None,
    ) -> dict[str, Any]:
        """The HTTP API payload 2.0 event for a request."""
        now = datetime.now(UTC)
        query_parameters = _query_parameters(query)
        content_type = headers.get("content-type", "")
        is_text = not body or content_type.startswith(TEXT_TYPES)
        request_context: dict[str, Any] = {
            "accountId": ACCOUNT_ID,
            "apiId": "local",
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route.route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(time.time() * 1000),
        }
        if claims is not None:
            request_context["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.route_key,
            "rawPath": path,
            "rawQueryString": query,
            "headers": {k: v for k, v in headers.items() if k != "cookie"},
            "requestContext": request_context,
            "isBase64Encoded": not is_text,
        }
        if "cookie" in headers:
            event["cookies"] = [c.strip() for c in headers["cookie"].split(";")]
        if query_parameters:
            event["queryStringParameters"] = query_parameters
        if parameters:
            event["pathParameters"] = parameters
        if body:
            event["body"] = (
                body.decode("utf-8", errors="replace") if is_text else base64.b64encode(body).decode()
            )
        return event

    @staticmethod
    def http_response(
        response: dict[str, Any], cors: list[tuple[str, str]]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Translate the function's result back into HTTP, as API Gateway does for payload 2.0."""
        if "statusCode" not in response:
            body = json.dumps(response).encode()
            return 200, [*cors, ("Content-Type", "application/json")], body
        headers = [(str(k), str(v)) for k, v in (response.get("headers") or {}).items()]
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers += [(name, str(v)) for v in values]
        headers += [("Set-Cookie", cookie) for cookie in response.get("cookies") or []]
        raw = response.get("body") or ""
        body = base64.b64decode(raw) if response.get("isBase64Encoded") else str(raw).encode()
        if not any(name.lower() == "access-control-allow-origin" for name, _ in headers):
            headers += cors
        return int(response["statusCode"]), headers, body


def _query_parameters(query: str) -> dict[str, str]:
    """Query parameters as API Gateway gives them: repeated names joined with commas."""
    parameters: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        parameters[name] = f"{parameters[name]},{value}" if name in parameters else value
    return parameters
