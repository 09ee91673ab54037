"""No request body of any size or depth is a 5xx: each limit hit is a 400, 413 or 422 naming it."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def customers(put_dataset):
    return put_dataset()


@pytest.mark.parametrize(
    ("method", "path", "raw", "status", "limit"),
    [
        (
            "POST",
            "/imports",
            '{"dataset": "customers", "fileName": "a.csv", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
            400,
            "bodyDepth",
        ),
        (
            "PUT",
            "/datasets/deep",
            '{"keys": ["a"], "fields": ' + "[" * 5_000 + "]" * 5_000 + "}",
            400,
            "bodyDepth",
        ),
        (
            "POST",
            "/exports",
            '{"dataset": "customers", "format": "csv", "x": ' + "[" * 40 + "]" * 40 + "}",
            400,
            "bodyDepth",
        ),
        (
            "POST",
            "/imports",
            '{"dataset": "customers", "fileName": "a.csv", "priority": ' + "9" * 5000 + "}",
            400,
            "numberDigits",
        ),
        (
            "POST",
            "/imports",
            '{"dataset": "customers", "fileName": "' + "a" * 2_000_000 + '"}',
            413,
            "bodyBytes",
        ),
    ],
    ids=["deep-import", "deep-dataset", "just-too-deep", "5000-digits", "2-MB-body"],
)
def test_a_body_past_a_limit_is_refused_naming_it(api, customers, method, path, raw, status, limit):
    response = api.call(method, path, raw_body=raw)
    assert response.status == status, response.text
    assert response.json()["error"]["details"]["limit"] == limit


def test_a_body_as_deep_as_a_real_request_is_read(api, customers):
    # Given a filter value nested 28 levels deep (within the limit), Then it is read and judged on its merits
    value = json.loads("[" * 28 + "1" + "]" * 28)
    response = api.call(
        "POST",
        "/exports",
        body={
            "dataset": "customers",
            "format": "csv",
            "filters": [{"field": "age", "op": "eq", "value": value}],
        },
    )
    assert response.status == 422 and "not a valid integer" in response.text


def test_an_import_whose_job_record_would_pass_400_kb_is_a_422(api, customers):
    # Given a mapping so large the job record would pass DynamoDB's item limit
    mapping = {f"column {i} " + "y" * 200: "email" for i in range(3000)}
    response = api.call(
        "POST", "/imports", body={"dataset": "customers", "fileName": "a.csv", "mapping": mapping}
    )
    # Then it is refused saying which limit, and no job was made
    assert response.status == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "item_too_large" and "400 KB" in error["message"]
    assert api.call("GET", "/jobs").json()["jobs"] == []


def test_a_dataset_definition_over_400_kb_is_a_422(api):
    fields = [
        {
            "name": f"f{i}",
            "type": "string",
            "required": i == 0,
            "aliases": [f"a{i}.{j} " + "z" * 50 for j in range(20)],
        }
        for i in range(400)
    ]
    response = api.call("PUT", "/datasets/huge", body={"fields": fields, "keys": ["f0"]})
    assert response.status == 422, response.text[:300]
    assert response.json()["error"]["code"] == "item_too_large"
    assert api.call("GET", "/datasets/huge").status == 404


def test_the_body_limit_counts_utf8_bytes_not_characters(api, customers):
    # Given 400,000 four-byte characters: well under the limit in characters, over it in bytes
    raw = '{"dataset": "customers", "fileName": "' + "\U0001f600" * 400_000 + '"}'
    response = api.call("POST", "/imports", raw_body=raw)
    assert response.status == 413, response.text[:200]
    assert response.json()["error"]["details"]["limit"] == "bodyBytes"


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/xml",
        "multipart/form-data",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
    ],
)
@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/imports"), ("POST", "/exports"), ("PUT", "/datasets/customers")]
)
def test_a_body_that_is_not_json_is_a_415_naming_its_type(api, customers, content_type, method, path):
    # Given a JSON body sent with another Content-Type
    body = {"dataset": "customers", "fileName": "a.csv", "format": "csv"}
    # When it is sent
    response = api.call(method, path, body=body, headers={"Content-Type": content_type})
    # Then it is refused as not JSON, in the error shape, never a 500
    assert response.status == 415, response.text
    error = response.json()["error"]
    assert error["code"] == "unsupported_media_type" and content_type in error["message"]


def test_a_body_that_is_not_json_from_no_tenant_is_a_401_first(api):
    response = api.call(
        "POST", "/imports", body={"dataset": "x"}, headers={"Content-Type": "text/plain"}, tenant=None
    )
    assert response.status == 401 and response.json()["error"]["code"] == "unauthenticated"
