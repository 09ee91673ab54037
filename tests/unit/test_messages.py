"""Worker messages: S3 notifications (from events/) and job messages."""

import json

import pytest

from impex.errors import BadRequest
from impex.pipelines.messages import (
    DroppedFile,
    JobMessage,
    UploadForJob,
    classify,
    import_message,
    job_message,
)
from tests.conftest import load_event


def test_an_s3_notification_in_an_sqs_record_yields_the_decoded_key():
    body = load_event("importer_s3_upload.json")["Records"][0]["body"]
    objects = import_message(body)
    assert isinstance(objects, list)
    assert objects[0].key == "uploads/acme/01JDZ8Q4N6X3V2C8Y7T5R9K1MB/customer list (2026).csv"
    assert objects[0].size == 1024
    assert objects[0].bucket == "impex-files-example"


def test_the_s3_test_event_carries_no_objects():
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"})
    assert import_message(body) == []


def test_a_continuation_message_names_its_job():
    assert import_message('{"jobId": "J", "tenant": "acme"}') == JobMessage("J", "acme")


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (
            "uploads/acme/01JDZ8Q4N6X3V2C8Y7T5R9K1MB/a.csv",
            UploadForJob("acme", "01JDZ8Q4N6X3V2C8Y7T5R9K1MB", "a.csv"),
        ),
        ("incoming/acme/customers/2026/jan.csv", DroppedFile("acme", "customers", "2026/jan.csv")),
        ("exports/acme/x/file.csv", None),
        ("uploads/acme/not-a-job-id/a.csv", None),
        ("random.txt", None),
    ],
)
def test_keys_are_classified(key, expected):
    assert classify(key) == expected


def test_an_export_message_from_events_parses():
    body = load_event("exporter_job_message.json")["Records"][0]["body"]
    assert job_message(body) == JobMessage("01JDZ8Q4N6X3V2C8Y7T5R9K1MC", "acme")


@pytest.mark.parametrize("body", ["not json", "[]", '{"jobId": 1}', '{"tenant": "a"}'])
def test_a_malformed_job_message_is_a_typed_error(body):
    with pytest.raises(BadRequest):
        job_message(body)
