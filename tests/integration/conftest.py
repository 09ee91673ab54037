"""moto-backed fixtures: every table, queue and bucket comes from template.yaml."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from impex.aws.tables import DocumentTable
from impex.jobs.store import JobStore
from impex.local.context import LocalLambdaContext
from impex.local.moto_fixes import make_moto_dynamodb_faithful
from impex.local.template import LocalStack, load_template
from tests.conftest import ROOT, http_event

FUNCTIONS = {
    "api": "ApiFunction",
    "importer": "ImporterFunction",
    "exporter": "ExporterFunction",
    "sweeper": "SweeperFunction",
}
TEST_PARAMETERS = {
    "JwtIssuer": "https://issuer.example.com",
    "JwtAudience": "impex",
    "CorsAllowedOrigins": "https://app.example.com",
}


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    """The template's resources on moto, and every function's environment applied."""
    make_moto_dynamodb_faithful()
    with mock_aws():
        created = LocalStack(load_template(ROOT / "template.yaml"), parameters=dict(TEST_PARAMETERS))
        created.create(boto3.Session())
        for logical_id in FUNCTIONS.values():
            for key, value in created.function(logical_id).environment.items():
                monkeypatch.setenv(key, value)
        yield created


def job_store(stack: LocalStack, retention_days: int = 1) -> JobStore:
    """The template's jobs table, as the functions see it."""
    table = DocumentTable(boto3.client("dynamodb"), stack.physical["JobsTable"])
    return JobStore(table, retention_days=retention_days)


def load_function(name: str) -> ModuleType:
    """Import functions/<name>/app.py fresh, as a cold start would."""
    path = ROOT / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"impex_function_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ApiClient:
    """Calls the api function's handler with HTTP API v2 events, as API Gateway would."""

    def __init__(self, module: ModuleType) -> None:
        self._module = module

    def call(self, method: str, path: str, **kwargs: Any) -> Response:
        event = http_event(method, path, **kwargs)
        raw = self._module.lambda_handler(event, LocalLambdaContext("impex-api", timeout_seconds=29))
        return Response(raw)


class Response:
    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.status = raw["statusCode"]
        self.headers = {k.lower(): v for k, v in (raw.get("headers") or {}).items()}
        self.text = raw.get("body") or ""

    def json(self) -> Any:
        return json.loads(self.text)


@pytest.fixture
def api(stack: LocalStack) -> ApiClient:
    return ApiClient(load_function("api"))


@pytest.fixture
def put_dataset(api: ApiClient) -> Callable[..., dict[str, Any]]:
    """Create a dataset through the API and return its body."""

    def create(name: str = "customers", tenant: str = "acme", **definition: Any) -> dict[str, Any]:
        body = definition or CUSTOMERS
        response = api.call("PUT", f"/datasets/{name}", body=body, tenant=tenant)
        assert response.status in (200, 201), response.text
        return response.json()  # type: ignore[no-any-return]

    return create


CUSTOMERS: dict[str, Any] = {
    "fields": [
        {"name": "email", "type": "string", "required": True, "aliases": ["E-mail"]},
        {"name": "name", "type": "string"},
        {"name": "age", "type": "integer", "constraints": {"min": 0, "max": 150}},
        {"name": "balance", "type": "decimal"},
        {"name": "active", "type": "boolean"},
        {"name": "signedUp", "type": "date"},
    ],
    "keys": ["email"],
}


IMPORTER_MEMORY_CEILING_MB = 256


def _memory_mb(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field)) // 1024


@pytest.fixture
def importer_memory_ceiling() -> Iterator[None]:
    """The importer runs in this process: its peak RSS, reset when the test starts (so earlier tests'
    allocations neither count nor hide a breach), may grow by at most 256 MB during the test."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    before = _memory_mb("VmRSS")
    yield
    grown = _memory_mb("VmHWM") - before
    assert grown <= IMPORTER_MEMORY_CEILING_MB, f"the importer's peak RSS grew by {grown} MB"
