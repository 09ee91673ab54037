"""Shared test helpers: paths, event fixtures from events/, and a clean AWS-free environment."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

# Powertools reads these when impex.observability is first imported, which may be at collection time.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "impex")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Impex")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"

# The seed's status response (../shared/seed): every field, and the ones always present.
SEED_STATUS_FIELDS = frozenset(
    {
        "id",
        "type",
        "status",
        "progress",
        "totalRows",
        "processedRows",
        "errorMessage",
        "result",
        "fileUrl",
        "fileName",
        "fileSize",
        "startedAt",
        "completedAt",
        "createdAt",
        "updatedAt",
    }
)
SEED_REQUIRED_FIELDS = frozenset(
    {"id", "type", "status", "progress", "processedRows", "createdAt", "updatedAt"}
)


def load_event(name: str) -> dict[str, Any]:
    """A sample event from events/ (the same files `sam local invoke -e` would use)."""
    return json.loads((EVENTS / name).read_text())


@pytest.fixture(autouse=True)
def _offline_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach real AWS: fake credentials, one region, tracing off."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "impex")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Impex")
    monkeypatch.setenv("POWERTOOLS_DEV", "false")
    # moto's in-process mock intercepts botocore only; the lean HTTP client is tested over real HTTP.
    monkeypatch.setenv("DYNAMODB_RAW_HTTP", "false")
    from impex.aws import clients

    clients.reset()


def http_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    tenant: Any = "acme",
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    raw_body: str | None = None,
) -> dict[str, Any]:
    """An HTTP API v2 event built from events/api_create_import.json, as API Gateway would send it."""
    event = copy.deepcopy(load_event("api_create_import.json"))
    full_path = f"/api/import-export{path}"
    event["rawPath"] = full_path
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["http"]["path"] = full_path
    event["pathParameters"] = {"proxy": path.lstrip("/")}
    event["queryStringParameters"] = query or None
    event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in (query or {}).items())
    event["headers"].update({k.lower(): v for k, v in (headers or {}).items()})
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    if tenant is None:
        claims.pop("tenant")
    else:
        claims["tenant"] = tenant
    if raw_body is not None:
        event["body"] = raw_body
    elif body is None:
        event["body"] = None
    else:
        event["body"] = json.dumps(body)
    return event
