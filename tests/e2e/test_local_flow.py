"""The whole flow over real HTTP, exactly as a user drives it: dataset, import with a presigned POST,
status polling, export, download through the presigned URL."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time

import jwt
import pytest
import requests

from tests.e2e.conftest import CSV, REQUEST_TIMEOUT, create_import, put_dataset, upload, wait_for

pytestmark = pytest.mark.e2e


def test_import_then_export_and_download_over_http(local_stack):
    tenant = "flow"
    put_dataset(local_stack, tenant)
    headers = local_stack.headers(tenant)
    created = create_import(local_stack, tenant, "people.csv")
    assert created["upload"]["url"].startswith("http://127.0.0.1:")
    posted = upload(created, CSV, "people.csv")
    assert posted.status_code in (200, 204), posted.text
    status = wait_for(local_stack, created["job"]["id"], tenant)
    assert status["status"] == "COMPLETED"
    assert (status["result"]["created"], status["result"]["failed"]) == (2, 1)
    # The row errors download through the API's redirect and the presigned URL
    report = requests.get(
        f"{local_stack.api}/jobs/{status['id']}/download",
        params={"file": "errors"},
        headers=headers,
        timeout=REQUEST_TIMEOUT,
    )
    assert report.status_code == 200 and report.url != f"{local_stack.api}/jobs/{status['id']}/download"
    assert "orders is not an integer" in report.text
    # Export and download through the fresh presigned URL in the status
    export = requests.post(
        f"{local_stack.api}/exports",
        headers=headers,
        timeout=REQUEST_TIMEOUT,
        json={
            "dataset": "customers",
            "format": "csv",
            "fields": ["customerId", "name", "orders"],
            "filters": [{"field": "country", "op": "eq", "value": "NZ"}],
        },
    ).json()["job"]
    done = wait_for(local_stack, export["id"], tenant)
    assert done["status"] == "COMPLETED" and done["processedRows"] == 2
    file = requests.get(done["fileUrl"], timeout=REQUEST_TIMEOUT)
    assert file.status_code == 200
    assert file.headers["Content-Disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(file.content.decode())))
    assert rows == [
        {"customerId": "C000001", "name": "Ann", "orders": "3"},
        {"customerId": "C000003", "name": 'Cat, "the" third', "orders": "7"},
    ]


def test_curl_can_post_the_upload_and_get_the_download(local_stack, tmp_path):
    tenant = "curl"
    put_dataset(local_stack, tenant)
    headers = local_stack.headers(tenant)
    created = create_import(local_stack, tenant, "c.csv")
    path = tmp_path / "c.csv"
    path.write_text(CSV)
    form = [arg for name, value in created["upload"]["fields"].items() for arg in ("-F", f"{name}={value}")]
    result = subprocess.run(
        [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            *form,
            "-F",
            f"file=@{path}",
            created["upload"]["url"],
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout in ("200", "204")
    assert wait_for(local_stack, created["job"]["id"], tenant)["status"] == "COMPLETED"
    export = requests.post(
        f"{local_stack.api}/exports",
        json={"dataset": "customers", "format": "jsonl"},
        headers=headers,
        timeout=REQUEST_TIMEOUT,
    ).json()["job"]
    url = wait_for(local_stack, export["id"], tenant)["fileUrl"]
    got = subprocess.run(["curl", "-s", "-f", url], capture_output=True, text=True, timeout=60, check=True)
    assert sorted(json.loads(line)["customerId"] for line in got.stdout.splitlines()) == [
        "C000001",
        "C000003",
    ]


def test_a_file_dropped_into_the_bucket_is_imported(local_stack):
    tenant = "dropper"
    put_dataset(local_stack, tenant)
    s3 = local_stack.client("s3")
    s3.put_object(
        Bucket=local_stack.bucket, Key=f"incoming/{tenant}/customers/weekly drop.csv", Body=CSV.encode()
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        jobs = requests.get(
            f"{local_stack.api}/jobs", headers=local_stack.headers(tenant), timeout=REQUEST_TIMEOUT
        ).json()["jobs"]
        if jobs and jobs[0]["status"] == "COMPLETED":
            break
        time.sleep(0.3)
    assert len(jobs) == 1 and jobs[0]["status"] == "COMPLETED" and jobs[0]["fileName"] == "weekly drop.csv"
    assert jobs[0]["result"]["created"] == 2


def test_missing_bad_and_expired_tokens_are_refused_before_any_handler(local_stack):
    assert requests.get(f"{local_stack.api}/jobs", timeout=REQUEST_TIMEOUT).status_code == 401
    assert (
        requests.get(
            f"{local_stack.api}/jobs", headers={"Authorization": "Bearer nope"}, timeout=REQUEST_TIMEOUT
        ).status_code
        == 401
    )
    expired = local_stack.token("t")
    claims = jwt.decode(expired, options={"verify_signature": False})
    forged = jwt.encode({**claims, "exp": 1}, "not-the-signing-key-of-the-local-stack", algorithm="HS256")
    assert (
        requests.get(
            f"{local_stack.api}/jobs", headers={"Authorization": f"Bearer {forged}"}, timeout=REQUEST_TIMEOUT
        ).status_code
        == 401
    )
    # The spec and Swagger UI need no token
    spec = requests.get(f"{local_stack.api}/openapi.json", timeout=REQUEST_TIMEOUT)
    assert spec.status_code == 200 and spec.json()["info"]["title"] == "impex"
    assert requests.get(f"{local_stack.api}/docs", timeout=REQUEST_TIMEOUT).status_code == 200


def test_tenants_do_not_see_each_other_over_http(local_stack):
    put_dataset(local_stack, "one")
    created = requests.post(
        f"{local_stack.api}/exports",
        json={"dataset": "customers", "format": "csv"},
        headers=local_stack.headers("one"),
        timeout=REQUEST_TIMEOUT,
    ).json()["job"]
    other = requests.get(
        f"{local_stack.api}/jobs/{created['id']}/status",
        headers=local_stack.headers("two"),
        timeout=REQUEST_TIMEOUT,
    )
    assert other.status_code == 404


def test_a_browser_may_post_the_upload_cors_preflight(local_stack):
    tenant = "browser"
    put_dataset(local_stack, tenant)
    created = create_import(local_stack, tenant, "b.csv")
    preflight = requests.options(
        created["upload"]["url"],
        timeout=REQUEST_TIMEOUT,
        headers={"Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] in ("*", "http://localhost:5173")
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    api_preflight = requests.options(
        f"{local_stack.api}/imports",
        timeout=REQUEST_TIMEOUT,
        headers={"Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST"},
    )
    assert api_preflight.status_code == 204 and api_preflight.headers["Access-Control-Allow-Origin"] == "*"
