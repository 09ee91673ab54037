"""The Idempotency-Key header on job creation (Powertools idempotency on DynamoDB)."""

import boto3

BODY = {"dataset": "customers", "fileName": "a.csv"}


def count_jobs(stack) -> int:
    return boto3.client("dynamodb").scan(TableName=stack.physical["JobsTable"], Select="COUNT")["Count"]


def test_the_same_key_and_body_return_the_same_import(api, put_dataset, stack):
    put_dataset()
    first = api.call("POST", "/imports", body=BODY, headers={"Idempotency-Key": "k-1"})
    second = api.call("POST", "/imports", body=BODY, headers={"Idempotency-Key": "k-1"})
    assert first.status == second.status == 201
    assert first.json()["job"]["id"] == second.json()["job"]["id"]
    # the upload is signed afresh for the replay, for the same key
    assert second.json()["upload"]["key"] == first.json()["upload"]["key"]
    assert count_jobs(stack) == 1


def test_the_same_key_with_another_body_is_refused(api, put_dataset, stack):
    put_dataset()
    api.call("POST", "/imports", body=BODY, headers={"Idempotency-Key": "k-2"})
    response = api.call(
        "POST", "/imports", body={**BODY, "fileName": "b.csv"}, headers={"Idempotency-Key": "k-2"}
    )
    assert response.status == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert count_jobs(stack) == 1


def test_the_same_key_for_an_export_queues_once(api, put_dataset, stack):
    put_dataset()
    body = {"dataset": "customers", "format": "xlsx"}
    ids = {
        api.call("POST", "/exports", body=body, headers={"Idempotency-Key": "e-1"}).json()["job"]["id"]
        for _ in range(3)
    }
    assert len(ids) == 1
    queue = stack.physical["ExportQueue"]
    messages = boto3.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    assert len(messages) == 1


def test_keys_are_scoped_per_tenant(api, put_dataset, stack):
    put_dataset(tenant="acme")
    put_dataset(tenant="globex")
    a = api.call("POST", "/imports", body=BODY, headers={"Idempotency-Key": "same"}, tenant="acme").json()
    b = api.call("POST", "/imports", body=BODY, headers={"Idempotency-Key": "same"}, tenant="globex").json()
    assert a["job"]["id"] != b["job"]["id"]


def test_without_a_key_each_request_creates_a_job(api, put_dataset, stack):
    put_dataset()
    api.call("POST", "/imports", body=BODY)
    api.call("POST", "/imports", body=BODY)
    assert count_jobs(stack) == 2
