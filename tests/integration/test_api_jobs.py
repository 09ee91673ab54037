"""Every job endpoint of the HTTP API, through the api function's handler, on moto."""

from __future__ import annotations

import base64
import json
import threading
import time
from urllib.parse import parse_qs, urlparse

import boto3
import pytest

from impex.jobs.model import FileRef, JobOutcome, JobStatus
from impex.jobs.store import JobStore
from tests.conftest import SEED_STATUS_FIELDS
from tests.integration.conftest import ApiClient, job_store


@pytest.fixture
def jobs(stack) -> JobStore:
    return job_store(stack, 30)


@pytest.fixture
def customers(put_dataset):
    return put_dataset()


def create_import(api: ApiClient, **body) -> dict:
    response = api.call("POST", "/imports", body={"dataset": "customers", "fileName": "people.csv", **body})
    assert response.status == 201, response.text
    return response.json()


def create_export(api: ApiClient, **body) -> dict:
    response = api.call("POST", "/exports", body={"dataset": "customers", "format": "csv", **body})
    assert response.status == 201, response.text
    return response.json()


# ---- POST /imports ---------------------------------------------------------------------------------


def test_an_import_returns_a_pending_job_and_a_presigned_post(api, customers, jobs, stack):
    # When an import is created
    created = create_import(api, mapping={"E-mail": "email"}, options={"mode": "insert", "maxErrors": 5})
    job, upload = created["job"], created["upload"]
    # Then the job is PENDING and stored with its options
    assert job["status"] == "PENDING" and job["type"] == "import" and job["fileName"] == "people.csv"
    stored = jobs.get(job["id"])
    assert stored is not None and stored.tenant == "acme" and stored.format == "csv"
    assert stored.import_options.mapping == {"E-mail": "email"} and stored.import_options.mode == "insert"
    # And the upload is a POST pinned to the job's key in the files bucket
    assert upload["key"] == f"uploads/acme/{job['id']}/people.csv"
    assert upload["fields"]["key"] == upload["key"]
    assert stack.physical["FilesBucket"] in upload["url"]
    policy = json.loads(base64.b64decode(upload["fields"]["policy"]))
    assert ["content-length-range", 1, upload["maxBytes"]] in policy["conditions"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/imports", {"dataset": "nope", "fileName": "a.csv"}),
        ("/exports", {"dataset": "nope", "format": "csv"}),
    ],
)
def test_a_job_for_an_unknown_dataset_is_a_404_saying_how_to_create_it(api, customers, path, body):
    response = api.call("POST", path, body=body)
    assert response.status == 404
    error = response.json()["error"]
    assert error["code"] == "dataset_not_found" and "PUT /datasets/nope" in error["message"]


def test_an_import_mapping_to_unknown_fields_is_a_422(api, customers):
    response = api.call(
        "POST", "/imports", body={"dataset": "customers", "fileName": "a.csv", "mapping": {"Mail": "mail"}}
    )
    assert response.status == 422
    assert response.json()["error"]["details"]["unknownFields"] == ["mail"]


@pytest.mark.parametrize(
    "body",
    [
        {"dataset": "customers", "fileName": "../etc/passwd"},
        {"dataset": "customers", "fileName": "a.csv", "format": "numbers"},
        {"dataset": "customers", "fileName": "a.pdf"},
        {"dataset": "customers"},
        {"dataset": "customers", "fileName": "a.csv", "options": {"mode": "replace"}},
        {"dataset": "customers", "fileName": "a.csv", "surprise": True},
    ],
)
def test_bad_import_requests_are_422_never_500(api, customers, body):
    response = api.call("POST", "/imports", body=body)
    assert response.status == 422, response.text
    assert set(response.json()["error"]) == {"code", "message", "details"}


def test_a_body_that_is_not_json_is_a_400(api, customers):
    response = api.call("POST", "/imports", raw_body="{not json")
    assert response.status == 400
    assert response.json()["error"]["code"] == "bad_request"


def test_the_format_comes_from_the_extension_when_not_given(api, customers, jobs):
    created = create_import(api, fileName="people.jsonl.gz")
    assert jobs.get(created["job"]["id"]).format == "jsonl.gz"


# ---- POST /exports ---------------------------------------------------------------------------------


def test_an_export_is_pending_and_queued(api, customers, stack, jobs):
    created = create_export(
        api, filters=[{"field": "age", "op": "gte", "value": 18}], fields=["email", "age"]
    )
    job = created["job"]
    assert job["status"] == "PENDING" and job["type"] == "export"
    assert job["fileName"].startswith("customers-") and job["fileName"].endswith(".csv")
    stored = jobs.get(job["id"])
    assert stored.export_options.fields == ["email", "age"]
    assert [f.model_dump() for f in stored.export_options.filters] == [
        {"field": "age", "op": "gte", "value": 18}
    ]
    messages = boto3.client("sqs").receive_message(QueueUrl=stack.physical["ExportQueue"]).get("Messages", [])
    assert [json.loads(m["Body"]) for m in messages] == [{"jobId": job["id"], "tenant": "acme"}]


def test_an_export_without_fields_takes_all_in_schema_order(api, customers, jobs):
    job = create_export(api)["job"]
    assert jobs.get(job["id"]).export_options.fields == [
        "email",
        "name",
        "age",
        "balance",
        "active",
        "signedUp",
    ]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"format": "pdf"}, "format"),
        ({"fields": ["email", "nope"]}, "nope"),
        ({"filters": [{"field": "nope", "op": "eq", "value": 1}]}, "nope"),
        ({"filters": [{"field": "age", "op": "like", "value": 1}]}, "op"),
        ({"filters": [{"field": "age", "op": "eq", "value": "old"}]}, "integer"),
        ({"filters": [{"field": "balance", "op": "gt", "value": "NaN"}]}, "not a finite number"),
        ({"filters": [{"field": "balance", "op": "gt", "value": "1e999999"}]}, "outside the range"),
        ({"filters": [{"field": "name", "op": "begins_with", "value": ""}]}, "non-empty string"),
    ],
)
def test_unknown_fields_formats_and_filters_are_422_now(api, customers, stack, body, fragment):
    response = api.call("POST", "/exports", body={"dataset": "customers", "format": "csv", **body})
    assert response.status == 422
    assert fragment in response.text
    # and nothing was queued
    assert not boto3.client("sqs").receive_message(QueueUrl=stack.physical["ExportQueue"]).get("Messages")


# ---- GET /jobs/{id}/status -------------------------------------------------------------------------


def test_status_has_the_seeds_shape(api, customers):
    job_id = create_import(api)["job"]["id"]
    response = api.call("GET", f"/jobs/{job_id}/status", query={"type": "import"})
    assert response.status == 200
    body = response.json()
    assert set(body) <= SEED_STATUS_FIELDS
    assert {"id", "type", "status", "progress", "processedRows", "createdAt", "updatedAt"} <= set(body)
    assert body["createdAt"].endswith("Z")


def test_a_type_that_does_not_match_is_404(api, customers):
    job_id = create_import(api)["job"]["id"]
    assert api.call("GET", f"/jobs/{job_id}/status", query={"type": "export"}).status == 404


def test_a_missing_job_is_404(api, customers):
    response = api.call("GET", "/jobs/01JDZ8Q4N6X3V2C8Y7T5R9K1MB/status")
    assert response.status == 404
    assert response.json()["error"]["code"] == "job_not_found"


def complete_export(jobs: JobStore, stack, job_id: str, content: bytes = b"email\na@b.c\n") -> None:
    job = jobs.get(job_id)
    boto3.client("s3").put_object(Bucket=stack.physical["FilesBucket"], Key=job.file.key, Body=content)
    jobs.claim(job_id)
    file = job.file.model_copy(update={"size": len(content)})
    jobs.complete(job_id, JobOutcome(file=file))


def test_a_completed_export_carries_a_fresh_presigned_url(api, customers, jobs, stack):
    job_id = create_export(api)["job"]["id"]
    complete_export(jobs, stack, job_id)
    first = api.call("GET", f"/jobs/{job_id}/status").json()
    assert first["status"] == "COMPLETED" and first["fileSize"] == len(b"email\na@b.c\n")
    url = urlparse(first["fileUrl"])
    query = parse_qs(url.query)
    assert int(query["X-Amz-Expires"][0]) <= 900
    assert url.path.endswith(jobs.get(job_id).file.key)
    # never stored on the job
    assert "fileUrl" not in (jobs.get(job_id).model_dump(by_alias=True))


# ---- GET /jobs ---------------------------------------------------------------------------------------


def test_jobs_are_listed_newest_first_with_cursor_pagination(api, customers):
    created = [create_import(api)["job"]["id"] for _ in range(5)]
    seen, cursor = [], None
    while True:
        query = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = api.call("GET", "/jobs", query=query).json()
        assert len(page["jobs"]) <= 2
        seen += [j["id"] for j in page["jobs"]]
        cursor = page.get("nextCursor")
        if not cursor:
            break
    assert seen == list(reversed(created))


def test_jobs_filter_by_type_and_status(api, customers, jobs):
    # Given three imports (one cancelled) and two exports
    imports = [create_import(api)["job"]["id"] for _ in range(3)]
    exports = [create_export(api)["job"]["id"] for _ in range(2)]
    api.call("POST", f"/jobs/{imports[0]}/cancel")
    # When jobs are listed by type, by status, and by both a page at a time, then each filter holds
    only_exports = api.call("GET", "/jobs", query={"type": "export"}).json()["jobs"]
    assert [j["id"] for j in only_exports] == list(reversed(exports))
    cancelled = api.call("GET", "/jobs", query={"status": "CANCELLED", "limit": "1"}).json()
    assert [j["id"] for j in cancelled["jobs"]] == [imports[0]]
    pending_imports = api.call(
        "GET", "/jobs", query={"type": "import", "status": "PENDING", "limit": "1"}
    ).json()
    assert [j["id"] for j in pending_imports["jobs"]] == [imports[2]]
    following = api.call(
        "GET",
        "/jobs",
        query={"type": "import", "status": "PENDING", "limit": "5", "cursor": pending_imports["nextCursor"]},
    ).json()
    assert [j["id"] for j in following["jobs"]] == [imports[1]]


@pytest.mark.parametrize(
    "cursor", ["garbage!", base64.urlsafe_b64encode(b'{"id":"x","tenant":"evil"}').decode()]
)
def test_a_forged_cursor_is_a_400(api, customers, cursor):
    response = api.call("GET", "/jobs", query={"cursor": cursor})
    assert response.status == 400


def test_a_limit_out_of_range_is_a_422(api, customers):
    assert api.call("GET", "/jobs", query={"limit": "1000"}).status == 422


# ---- download -----------------------------------------------------------------------------------------


def test_download_redirects_to_a_fresh_presigned_url(api, customers, jobs, stack):
    job_id = create_export(api)["job"]["id"]
    complete_export(jobs, stack, job_id)
    response = api.call("GET", f"/jobs/{job_id}/download")
    assert response.status == 302
    location = response.headers["location"]
    assert jobs.get(job_id).file.key in location and "X-Amz-Signature" in location


def test_download_of_an_unfinished_export_is_a_409(api, customers):
    job_id = create_export(api)["job"]["id"]
    assert api.call("GET", f"/jobs/{job_id}/download").status == 409


def test_the_error_report_downloads_once_it_exists(api, customers, jobs, stack):
    job_id = create_import(api)["job"]["id"]
    assert api.call("GET", f"/jobs/{job_id}/download", query={"file": "errors"}).status == 404
    report = FileRef(
        bucket=stack.physical["FilesBucket"], key=f"errors/acme/{job_id}/errors.csv", name="errors.csv"
    )
    jobs.claim(job_id)
    jobs.fail(job_id, "the file could not be read", outcome=JobOutcome(error_report=report))
    response = api.call("GET", f"/jobs/{job_id}/download", query={"file": "errors"})
    assert response.status == 302
    assert report.key in response.headers["location"]


# ---- cancel, process ----------------------------------------------------------------------------------


def test_cancel_ends_a_pending_job(api, customers, jobs):
    job_id = create_import(api)["job"]["id"]
    response = api.call("POST", f"/jobs/{job_id}/cancel")
    assert response.status == 200
    assert response.json()["status"] == "CANCELLED"
    stored = jobs.get(job_id)
    assert stored.status is JobStatus.CANCELLED and stored.completed_at and stored.expires_at


def test_cancel_of_a_processing_job_asks_its_worker_to_end_it(api, customers, jobs):
    # Given an export a worker holds
    job_id = create_export(api)["job"]["id"]
    jobs.claim(job_id)
    # When it is cancelled
    response = api.call("POST", f"/jobs/{job_id}/cancel")
    # Then the answer is 202 with the job as it is, and the worker is told to stop
    assert response.status == 202 and response.json()["status"] == "PROCESSING"
    assert jobs.stop_signal(job_id) is JobStatus.CANCELLED


def test_cancel_can_wait_for_the_worker_to_end_the_job(api, customers, jobs):
    # Given an export a worker holds, which ends the job once it sees the cancel
    job_id = create_export(api)["job"]["id"]
    jobs.claim(job_id)

    def worker() -> None:
        while jobs.stop_signal(job_id) is not JobStatus.CANCELLED:
            time.sleep(0.05)
        jobs.end_cancelled(job_id, JobOutcome(result={"rows": 0}, processed_rows=0))

    thread = threading.Thread(target=worker)
    thread.start()
    # When it is cancelled with waitSeconds
    response = api.call("POST", f"/jobs/{job_id}/cancel", query={"waitSeconds": "10"})
    thread.join()
    # Then the answer is the ended job
    assert response.status == 200 and response.json()["status"] == "CANCELLED"
    assert response.json()["result"] == {"rows": 0}


def test_cancelling_a_finished_job_is_a_409(api, customers):
    job_id = create_import(api)["job"]["id"]
    api.call("POST", f"/jobs/{job_id}/cancel")
    response = api.call("POST", f"/jobs/{job_id}/cancel")
    assert response.status == 409
    assert response.json()["error"]["details"] == {"status": "CANCELLED"}


def test_process_answers_in_the_seeds_shape(api, customers):
    create_import(api)
    response = api.call("POST", "/jobs/process")
    assert response.status == 200
    body = response.json()
    assert set(body) == {"success", "message"} and body["success"] is True


# ---- auth, routing, spec ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/imports"),
        ("POST", "/exports"),
        ("GET", "/jobs"),
        ("GET", "/jobs/X/status"),
        ("GET", "/jobs/X/download"),
        ("POST", "/jobs/X/cancel"),
        ("POST", "/jobs/process"),
        ("GET", "/datasets"),
        ("GET", "/datasets/x"),
        ("PUT", "/datasets/x"),
        ("DELETE", "/datasets/x"),
    ],
)
def test_a_request_without_the_tenant_claim_is_a_401(api, method, path):
    body = {
        "dataset": "customers",
        "fileName": "a.csv",
        "format": "csv",
        "fields": [{"name": "a", "type": "string"}],
    }
    response = api.call(method, path, tenant=None, body=body if method in {"POST", "PUT"} else None)
    assert response.status == 401, (path, response.text)
    assert response.json()["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize("tenant", ["../other", "acme\n", "acme\r\n", " acme", "", True, 7, ["acme"]])
def test_a_tenant_claim_that_cannot_be_a_key_is_a_401(api, tenant):
    # Given a claim that is not exactly a tenant name (a trailing newline, or not a string at all, as a
    # Lambda authorizer's context can pass it on)
    response = api.call("GET", "/jobs", tenant=tenant)
    # Then the caller is refused, in the documented error shape
    assert response.status == 401, response.text
    assert response.json()["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("PATCH", "/datasets/x", "DELETE, GET, PUT"), ("TRACE", "/imports", "POST"), ("DELETE", "/jobs", "GET")],
)
def test_an_undeclared_method_on_a_known_path_is_a_405_naming_the_allowed_ones(api, method, path, allowed):
    response = api.call(method, path)
    assert response.status == 405, response.text
    assert response.headers["allow"] == allowed
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_an_unknown_route_is_a_json_404(api):
    response = api.call("GET", "/nothing-here")
    assert response.status == 404
    assert response.json()["error"]["code"] == "no_route"


def test_the_openapi_spec_is_served_and_valid(api):
    from openapi_spec_validator import validate

    # When the spec is fetched without a token
    response = api.call("GET", "/openapi.json", tenant=None)
    assert response.status == 200
    spec = response.json()
    # Then it is a valid OpenAPI document naming every route
    validate(spec)
    paths = set(spec["paths"])
    assert {
        "/api/import-export/imports",
        "/api/import-export/exports",
        "/api/import-export/jobs",
        "/api/import-export/jobs/{job_id}/status",
        "/api/import-export/jobs/{job_id}/download",
        "/api/import-export/jobs/{job_id}/cancel",
        "/api/import-export/jobs/process",
        "/api/import-export/datasets",
        "/api/import-export/datasets/{name}",
    } <= paths


def test_swagger_ui_is_served_with_the_generated_document(api):
    # When Swagger UI is asked for, and the document on its own
    response = api.call("GET", "/docs", tenant=None)
    document = api.call("GET", "/openapi.json", tenant=None)
    # Then the page is Powertools' Swagger UI, its script inlined, showing the generated document
    assert response.status == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "SwaggerUIBundle" in page and "<script" in page
    assert document.text.replace("</", "<\\/") in page
    # And the page's own JSON form is that document
    as_json = api.call("GET", "/docs", query={"format": "json"}, tenant=None)
    assert as_json.status == 200 and as_json.json() == document.json()


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999999", "[1, NaN]"])
@pytest.mark.parametrize(("field", "op"), [("balance", "gt"), ("name", "eq")])
def test_a_non_finite_json_number_in_a_filter_is_a_422(api, customers, literal, field, op):
    # Given a body whose filter value is a bare JSON literal Python's parser turns into nan or inf,
    # on a number field and on a text field (whose conversion would take it as the text "inf")
    if literal.startswith("["):  # a list of an ordinary operand of the field's type, then the literal
        op, literal = "in", literal.replace("1", '"x"' if field == "name" else "1")
    condition = '{"field": "' + field + '", "op": "' + op + '", "value": ' + literal + "}"
    raw = '{"dataset": "customers", "format": "csv", "filters": [' + condition + "]}"
    response = api.call("POST", "/exports", raw_body=raw)
    # Then it is refused now, naming the problem, instead of failing the job three times later
    assert response.status == 422, response.text
    assert "not a finite number" in response.json()["error"]["message"]


SEED_STATUS_TYPES = {
    "id": "string",
    "type": "JobType",
    "status": "JobStatus",
    "progress": "integer",
    "totalRows": "integer",
    "processedRows": "integer",
    "errorMessage": "string",
    "result": "object",
    "fileUrl": "string",
    "fileName": "string",
    "fileSize": "integer",
    "createdAt": "string",
    "updatedAt": "string",
    "startedAt": "string",
    "completedAt": "string",
}


def _type_of(schema: dict) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:  # optional: the type, or null (the API leaves such a field out)
        return next(_type_of(option) for option in schema["anyOf"] if option.get("type") != "null")
    return schema["type"]


def test_every_operation_documents_its_success_response_with_a_full_schema(api):
    spec = api.call("GET", "/openapi.json", tenant=None).json()
    schemas = spec["components"]["schemas"]
    # No component schema is empty
    assert [name for name, schema in schemas.items() if not schema] == []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            codes = {int(code) for code in operation["responses"]}
            successes = {code for code in codes if code < 400}
            assert successes, f"{method} {path} documents no success response"
            for code in successes - {204, 302, 304}:
                content = operation["responses"][str(code)]["content"]["application/json"]["schema"]
                name = content["$ref"].rsplit("/", 1)[-1]
                assert schemas[name].get("properties"), f"{method} {path} {code}: {name} has no fields"
            for code in codes - successes:
                error = operation["responses"][str(code)]["content"]["application/json"]["schema"]
                assert error == {"$ref": "#/components/schemas/ErrorBody"}
    # and the status response is exactly the seed's 15 fields, with their types
    status = schemas["JobStatusResponse"]
    assert {name: _type_of(field) for name, field in status["properties"].items()} == SEED_STATUS_TYPES
    assert set(SEED_STATUS_TYPES) == SEED_STATUS_FIELDS
    assert set(status["required"]) == {
        "id",
        "type",
        "status",
        "progress",
        "processedRows",
        "createdAt",
        "updatedAt",
    }
    assert spec["openapi"].startswith("3.1")
