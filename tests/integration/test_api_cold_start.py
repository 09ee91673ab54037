"""The api function's cold start makes no AWS client: each is made by the first request that calls
its service (issue #14), once per process."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import boto3
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from impex.aws import clients
from impex.aws.clients import OnFirstUse
from tests.integration.conftest import ROOT, ApiClient, load_function

UNKNOWN_JOB = "01JZ3Q6W0000000000000000ZZ"


def test_a_cold_start_makes_no_client_and_a_request_makes_only_those_it_calls(
    stack, put_dataset, monkeypatch
):
    # Given the dataset a request will need (made before the count starts), and boto3 counting clients
    put_dataset()
    made: list[str] = []
    real_client, real_resource = boto3.client, boto3.resource

    def client(name, *args, **kwargs):
        made.append(name)
        return real_client(name, *args, **kwargs)

    def resource(name, *args, **kwargs):
        made.append(f"{name} resource")
        return real_resource(name, *args, **kwargs)

    monkeypatch.setattr(boto3, "client", client)
    monkeypatch.setattr(boto3, "resource", resource)
    clients.reset()
    # When the api function starts cold
    api = ApiClient(load_function("api"))
    # Then it made no client at all
    assert made == []
    # When a status request comes
    response = api.call("GET", f"/jobs/{UNKNOWN_JOB}/status")
    # Then it made one DynamoDB client only, to read the job (a low-level one: no resource layer)
    assert response.status == 404 and made == ["dynamodb"]
    # When an import is created with an Idempotency-Key
    created = api.call(
        "POST",
        "/imports",
        body={"dataset": "customers", "fileName": "a.csv"},
        headers={"Idempotency-Key": "k-1"},
    )
    # Then it made what that calls: the idempotency records' client, S3 (the presigned POST) and
    # EventBridge (the created event), each once
    assert created.status == 201, created.text
    assert sorted(made) == ["dynamodb", "dynamodb", "events", "s3"]


def test_what_stands_in_for_a_client_makes_it_once_whichever_threads_ask():
    # Given a stand-in for something slow to make, and eight threads asking for it at once
    makes = []
    start = threading.Barrier(8)

    def make():
        makes.append(1)
        return {"region": "us-east-1"}

    stand_in = OnFirstUse(make)
    seen = []

    def ask():
        start.wait()
        seen.append(stand_in.get("region"))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then it was made once, and every thread used it
    assert makes == [1] and seen == ["us-east-1"] * 8


# What the Lambda runtime brings besides the layers (python3.13): boto3 and what it needs; and certifi,
# which botocore imports only if it is there (it falls back to its own CA bundle).
RUNTIME_DISTRIBUTIONS = {
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "urllib3",
    "python-dateutil",
    "six",
    "certifi",
}

# Imported by the first request that needs them, never by a cold start or a status request: boto3
# (~0.14 s with botocore's client machinery and s3transfer), Powertools' idempotency, which
# imports boto3 at its top, Powertools' OpenAPI models (the spec and Swagger UI routes only), and
# RE2 (~7 ms; a dataset's pattern constraints only). And never by the api at all: the record tables
# (their thread pools) and the workers' settings models (~3 ms).
DEFERRED_MODULES = [
    "boto3",
    "re2",
    "impex.aws.records",
    "impex.settings.workers",
    "botocore.client",
    "s3transfer",
    "aws_lambda_powertools.utilities.idempotency",
    "aws_lambda_powertools.event_handler.openapi.models",
]

_PROBE = """
import importlib.metadata, importlib.util, json, sys
spec = importlib.util.spec_from_file_location("api_app", {app!r})
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)
class Context:  # what Powertools reads of a Lambda context
    function_name, memory_limit_in_mb, aws_request_id = "api", 512, "r-1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:api"
    def get_remaining_time_in_millis(self): return 30000
event = json.loads({event!r})
status = app.lambda_handler(event, Context())["statusCode"]
by_module = importlib.metadata.packages_distributions()
used = set()
for name in list(sys.modules):
    top = name.split(".")[0]
    if top in sys.stdlib_module_names or top.startswith("_") or top in ("impex", "api_app"):
        continue
    used.update(by_module.get(top, []))  # modules of no distribution (cython_runtime) are no package
deferred = [name for name in {deferred!r} if name in sys.modules]
print(json.dumps({{"status": status, "distributions": sorted(used), "deferred": deferred}}))
"""


def _layer_distributions(requirements: Path) -> set[str]:
    """The distributions a layer built from ``requirements`` holds: each pinned one and everything it
    needs (with the extras asked for), as pip installs them."""
    wanted = [
        Requirement(line.split("#")[0].strip())
        for line in requirements.read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    found: set[str] = set()
    while wanted:
        requirement = wanted.pop()
        name = canonicalize_name(requirement.name)
        extras = requirement.extras
        if name in found and not extras:
            continue
        found.add(name)
        for needed in importlib.metadata.requires(requirement.name) or []:
            dependency = Requirement(needed)
            active = dependency.marker is None or any(
                dependency.marker.evaluate({"extra": extra}) for extra in (*extras, "")
            )
            if active:
                wanted.append(dependency)
    return found


def test_the_api_imports_only_what_its_layers_and_the_runtime_hold(stack, monkeypatch):
    # Given the api function's environment and its layers (core + impex; the data layer, with the
    # heavy format libraries, is the importer's and exporter's only), with the lean DynamoDB client on
    # (the tests otherwise use botocore's) and an endpoint that refuses connections
    environment = {
        **os.environ,
        **stack.function("ApiFunction").environment,
        "DYNAMODB_RAW_HTTP": "true",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        # Set by the Lambda runtime; outside Lambda the X-Ray SDK makes a botocore client for sampling
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / "api"),
        "AWS_LAMBDA_FUNCTION_NAME": "api",
    }
    event = json.loads((ROOT / "events" / "api_create_import.json").read_text())
    path = f"/api/import-export/jobs/{UNKNOWN_JOB}/status"
    event.update(rawPath=path, body=None)
    event["requestContext"]["http"].update(method="GET", path=path)
    probe = _PROBE.format(
        app=str(ROOT / "functions" / "api" / "app.py"), event=json.dumps(event), deferred=DEFERRED_MODULES
    )
    # When a fresh interpreter starts the api and serves a status request (which reads the jobs table)
    result = subprocess.run(
        [sys.executable, "-c", probe], env=environment, capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    # Then the request reached the table (and failed on the refused endpoint: a 500, not an import error)
    assert outcome["status"] == 500
    # And every third-party distribution it imported is in its layers or the runtime
    allowed = _layer_distributions(ROOT / "layers" / "core" / "requirements.txt") | RUNTIME_DISTRIBUTIONS
    used = {canonicalize_name(name) for name in outcome["distributions"]}
    assert used <= allowed, used - allowed
    assert "orjson" in used  # the lean client's bodies: why orjson is in the core layer
    # And neither the cold start nor the status request imported boto3 or what needs it (the lean
    # client signs with the credentials in the environment, as Lambda provides them)
    assert outcome["deferred"] == []
