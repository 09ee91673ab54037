"""Each worker handler takes its event shape (fixtures from events/) and claims its job exactly once."""

from __future__ import annotations

import copy
import json

import boto3
import pytest

from impex.jobs.store import JobStore
from impex.local.context import LocalLambdaContext
from tests.conftest import load_event
from tests.integration.conftest import job_store, load_function


@pytest.fixture
def store(stack) -> JobStore:
    return job_store(stack, 7)


def s3_upload_event(bucket: str, key: str) -> dict:
    """events/importer_s3_upload.json with the bucket and (URL-encoded) key replaced."""
    event = copy.deepcopy(load_event("importer_s3_upload.json"))
    notification = json.loads(event["Records"][0]["body"])
    notification["Records"][0]["s3"]["bucket"]["name"] = bucket
    notification["Records"][0]["s3"]["object"]["key"] = key.replace(" ", "+")
    event["Records"][0]["body"] = json.dumps(notification)
    return event


def export_event(job_id: str, tenant: str = "acme") -> dict:
    event = copy.deepcopy(load_event("exporter_job_message.json"))
    event["Records"][0]["body"] = json.dumps({"jobId": job_id, "tenant": tenant})
    return event


def context(name: str) -> LocalLambdaContext:
    return LocalLambdaContext(name, timeout_seconds=60)


def test_the_importer_claims_the_job_of_an_uploaded_file_once(api, put_dataset, stack, store):
    # Given an import job and its upload
    put_dataset()
    created = api.call("POST", "/imports", body={"dataset": "customers", "fileName": "my people.csv"}).json()
    key = created["upload"]["key"]
    boto3.client("s3").put_object(Bucket=stack.physical["FilesBucket"], Key=key, Body=b"email\na@b.c\n")
    importer = load_function("importer")
    event = s3_upload_event(stack.physical["FilesBucket"], key)
    # When the upload event arrives twice
    first = importer.lambda_handler(event, context("importer"))
    second = importer.lambda_handler(event, context("importer"))
    # Then the job was claimed exactly once and no record failed
    job = store.get(created["job"]["id"])
    assert job.attempts == 1 and job.started_at is not None
    assert first == second == {"batchItemFailures": []}


def test_the_importer_ignores_objects_it_does_not_own(stack):
    importer = load_function("importer")
    event = s3_upload_event(stack.physical["FilesBucket"], "exports/acme/x/readme.txt")
    assert importer.lambda_handler(event, context("importer")) == {"batchItemFailures": []}


def test_a_malformed_import_message_is_reported_as_a_batch_item_failure(stack):
    importer = load_function("importer")
    event = copy.deepcopy(load_event("importer_s3_upload.json"))
    event["Records"][0]["body"] = "this is not json"
    response = importer.lambda_handler(event, context("importer"))
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}


def test_the_exporter_claims_the_job_of_a_message_once(api, put_dataset, store):
    put_dataset()
    job_id = api.call("POST", "/exports", body={"dataset": "customers", "format": "csv"}).json()["job"]["id"]
    exporter = load_function("exporter")
    exporter.lambda_handler(export_event(job_id), context("exporter"))
    exporter.lambda_handler(export_event(job_id), context("exporter"))
    job = store.get(job_id)
    assert job.attempts == 1 and job.started_at is not None


def test_the_exporter_ignores_a_message_for_another_tenants_job(api, put_dataset, store):
    put_dataset()
    job_id = api.call("POST", "/exports", body={"dataset": "customers", "format": "csv"}).json()["job"]["id"]
    exporter = load_function("exporter")
    exporter.lambda_handler(export_event(job_id, tenant="globex"), context("exporter"))
    assert store.get(job_id).attempts == 0


def test_the_sweeper_takes_the_scheduled_event(stack):
    sweeper = load_function("sweeper")
    result = sweeper.lambda_handler(load_event("sweeper_schedule.json"), context("sweeper"))
    assert isinstance(result, dict)
