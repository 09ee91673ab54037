"""The API against its own OpenAPI document: Schemathesis generates requests from the served document
and checks every answer of the local stack. Bounded here to fit `make test`; `make contract` runs
the same with more examples per operation.

The generated requests reach real data: path parameters and body fields are drawn partly from the
ids and names of jobs and datasets made beforehand (a completed import with row errors, a dry run,
an export, a pending import, a failed import), partly at random.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import CSV, REQUEST_TIMEOUT, SCHEMA, RunningStack, create_import, upload, wait_for

pytestmark = pytest.mark.e2e

ST = str(Path(sys.executable).with_name("st"))
TENANT = "contract"
# The four properties the contract promises, for every operation and every generated request.
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
EXAMPLES = int(os.environ.get("IMPEX_CONTRACT_EXAMPLES", "12"))
SEED = os.environ.get("IMPEX_CONTRACT_SEED", "20261201")


def _seed_data(stack: RunningStack) -> dict[str, list[str]]:
    """Jobs in each kind of state, and datasets, for the generated requests to find."""
    headers = stack.headers(TENANT)
    for name in ("customers", "scratch"):
        created = requests.put(
            f"{stack.api}/datasets/{name}", json=SCHEMA, headers=headers, timeout=REQUEST_TIMEOUT
        )
        assert created.status_code in (200, 201), created.text
    jobs = []
    imported = create_import(stack, TENANT, "people.csv")
    assert upload(imported, CSV, "people.csv").status_code == 204
    jobs.append(wait_for(stack, imported["job"]["id"], TENANT)["id"])  # COMPLETED, with row errors
    dry_run = requests.post(
        f"{stack.api}/imports",
        json={"dataset": "customers", "fileName": "dry.csv", "options": {"dryRun": True}},
        headers=headers,
        timeout=REQUEST_TIMEOUT,
    ).json()
    assert upload(dry_run, CSV, "dry.csv").status_code == 204
    jobs.append(wait_for(stack, dry_run["job"]["id"], TENANT)["id"])  # a dry run to commit
    broken = create_import(stack, TENANT, "broken.csv")
    assert upload(broken, "no,such,columns\n1,2,3\n", "broken.csv").status_code == 204
    failed = wait_for(stack, broken["job"]["id"], TENANT)
    assert failed["status"] == "FAILED", failed
    jobs.append(failed["id"])  # to retry
    export = requests.post(
        f"{stack.api}/exports",
        json={"dataset": "customers", "format": "csv"},
        headers=headers,
        timeout=REQUEST_TIMEOUT,
    ).json()
    jobs.append(wait_for(stack, export["job"]["id"], TENANT)["id"])  # a file to download
    jobs.append(create_import(stack, TENANT, "later.csv")["job"]["id"])  # PENDING, to cancel
    return {"jobs": jobs, "datasets": ["customers", "scratch"]}


def _config(data: dict[str, list[str]], path: Path) -> Path:
    """A schemathesis.toml drawing path parameters and body fields from the data made."""
    config = {
        "dictionaries": {
            "job_ids": {"values": data["jobs"]},
            "datasets": {"values": data["datasets"]},
            "scratch": {"values": ["scratch"]},
        },
        "parameters": {
            "path.job_id": {"dictionary": "job_ids", "probability": 0.8},
            "path.name": {"dictionary": "datasets", "probability": 0.6},
            "body.dataset": {"dictionary": "datasets", "probability": 0.6},
        },
    }
    lines = []
    for table, values in config.items():
        for name, value in values.items():
            lines.append(f"[{table}.{json.dumps(name)}]")
            lines.extend(f"{key} = {json.dumps(item)}" for key, item in value.items())
    # Deleting is tried on the scratch dataset, so the others keep serving the rest of the run.
    lines += [
        "[[operations]]",
        'include-method = "DELETE"',
        "[operations.parameters]",
        '"path.name" = { dictionary = "scratch", probability = 0.6 }',
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_every_generated_request_gets_a_documented_answer(local_stack: RunningStack, tmp_path: Path):
    # Given the local stack with jobs in every state, and its served OpenAPI document
    data = _seed_data(local_stack)
    config = _config(data, tmp_path / "schemathesis.toml")
    origin = local_stack.api.split("/api/", 1)[0]
    junit = tmp_path / "contract.xml"
    # When Schemathesis runs every phase against it, checking the four properties
    run = subprocess.run(
        [
            ST,
            "--no-color",
            "--config-file",
            str(config),
            "run",
            f"{local_stack.api}/openapi.json",
            "--url",
            origin,
            "-H",
            f"Authorization: Bearer {local_stack.token(TENANT)}",
            "--checks",
            CHECKS,
            "--max-examples",
            str(EXAMPLES),
            "--seed",
            SEED,
            # One worker: CPython 3.11's ast.parse is not thread-safe, and Hypothesis calls it while
            # describing strategies ("AST constructor recursion depth mismatch" with two).
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--report",
            "junit",
            "--report-junit-path",
            str(junit),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,
    )
    output = run.stdout + run.stderr
    summary = re.search(r"(\d+) generated, (.*)", output)
    print(output)  # the run as quoted in the README: test cases, operations, failures
    # Then it tested every operation, and no answer was a 5xx, undocumented, of the wrong type or shape
    assert summary, output[-5000:]
    tested = re.search(r"Tested: (\d+)", output)
    assert tested and int(tested.group(1)) >= 13, output[-5000:]
    assert int(summary.group(1)) >= 13 * EXAMPLES // 2, summary.group(0)
    assert run.returncode == 0, output[-8000:]
    assert summary.group(2).startswith(f"{summary.group(1)} passed"), summary.group(0)
