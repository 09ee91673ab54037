"""A tenant sees, cancels and downloads only its own jobs and datasets; others' are 404, never 403."""

import boto3
import pytest

from impex.jobs.model import JobOutcome
from tests.integration.conftest import CUSTOMERS, job_store


@pytest.fixture
def acme_jobs(api, stack):
    api.call("PUT", "/datasets/customers", body=CUSTOMERS, tenant="acme")
    imported = api.call("POST", "/imports", body={"dataset": "customers", "fileName": "a.csv"}).json()["job"][
        "id"
    ]
    exported = api.call("POST", "/exports", body={"dataset": "customers", "format": "csv"}).json()["job"][
        "id"
    ]
    store = job_store(stack, 1)
    job = store.get(exported)
    boto3.client("s3").put_object(Bucket=job.file.bucket, Key=job.file.key, Body=b"x")
    store.claim(exported)
    store.complete(exported, JobOutcome())
    return {"import": imported, "export": exported}


@pytest.mark.parametrize(
    ("method", "template", "query"),
    [
        ("GET", "/jobs/{export}/status", None),
        ("GET", "/jobs/{import}/status", {"type": "import"}),
        ("GET", "/jobs/{export}/download", None),
        ("GET", "/jobs/{import}/download", {"file": "errors"}),
        ("POST", "/jobs/{import}/cancel", None),
        ("POST", "/jobs/{import}/retry", None),
        ("POST", "/jobs/{import}/commit", None),
    ],
)
def test_another_tenants_job_is_not_found(api, acme_jobs, method, template, query):
    path = template.format(**acme_jobs)
    # Given acme's job exists (for acme it answers, or refuses with a 404/409 of its own)
    assert api.call(method, path, tenant="acme", query=query).status in (200, 302, 404, 409)
    # When globex asks for it, Then it does not exist
    response = api.call(method, path, tenant="globex", query=query)
    assert response.status == 404
    assert response.json()["error"]["code"] == "job_not_found"


def test_another_tenants_job_cannot_be_cancelled(api, acme_jobs, stack):
    api.call("POST", f"/jobs/{acme_jobs['import']}/cancel", tenant="globex")
    status = api.call("GET", f"/jobs/{acme_jobs['import']}/status", tenant="acme").json()["status"]
    assert status == "PENDING"


def test_listings_hold_only_the_callers_jobs(api, acme_jobs):
    assert api.call("GET", "/jobs", tenant="globex").json()["jobs"] == []
    assert len(api.call("GET", "/jobs", tenant="acme").json()["jobs"]) == 2
    swept = api.call("POST", "/jobs/process", tenant="globex").json()
    assert swept == {"success": True, "message": "swept the caller's jobs: no stuck or lost jobs"}


def test_datasets_are_per_tenant(api, acme_jobs):
    assert api.call("GET", "/datasets/customers", tenant="globex").status == 404
    assert api.call("GET", "/datasets", tenant="globex").json()["datasets"] == []
    assert api.call("DELETE", "/datasets/customers", tenant="globex").status == 404
    # globex cannot create jobs on acme's dataset either
    response = api.call(
        "POST", "/imports", tenant="globex", body={"dataset": "customers", "fileName": "a.csv"}
    )
    assert response.status == 404  # as for any dataset globex does not have: nothing leaks
    response = api.call("POST", "/exports", tenant="globex", body={"dataset": "customers", "format": "csv"})
    assert response.status == 404
    # and a dataset of the same name for globex is a separate one
    assert api.call("PUT", "/datasets/customers", tenant="globex", body=CUSTOMERS).status == 201
    assert api.call("GET", "/datasets/customers", tenant="acme").status == 200


def test_a_forged_cursor_cannot_page_into_another_tenant(api, acme_jobs):
    cursor = api.call("GET", "/jobs", tenant="acme", query={"limit": "1"}).json()["nextCursor"]
    assert api.call("GET", "/jobs", tenant="globex", query={"cursor": cursor}).status == 400
