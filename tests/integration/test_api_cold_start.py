"""The api function's cold start makes no AWS client: each is made by the first request that calls
its service (issue #14), once per process."""

from __future__ import annotations

import threading

import boto3

from impex.aws import clients
from impex.aws.clients import OnFirstUse
from tests.integration.conftest import ApiClient, load_function

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
