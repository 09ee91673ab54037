"""The mapping from a stored job to the seed's status response."""

from impex.api.models import JobStatusResponse
from impex.jobs.model import FileRef, Job, JobStatus, JobType
from tests.conftest import SEED_REQUIRED_FIELDS, SEED_STATUS_FIELDS


def a_job(**changes) -> Job:
    base = Job(
        id="01JDZ8Q4N6X3V2C8Y7T5R9K1MB",
        type=JobType.EXPORT,
        tenant="acme",
        dataset="customers",
        format="csv",
        created_at="2026-11-29T05:00:00.000Z",
        updated_at="2026-11-29T05:00:01.000Z",
    )
    return base.model_copy(update=changes)


def test_a_finished_export_fills_every_seed_field_in_camel_case():
    # Given a completed export with every field set
    job = a_job(
        status=JobStatus.COMPLETED,
        progress=100,
        total_rows=10,
        processed_rows=10,
        error_message="none",
        result={"rows": 10},
        file=FileRef(bucket="b", key="exports/acme/x/customers.csv", name="customers.csv", size=123),
        started_at="2026-11-29T05:00:00.500Z",
        completed_at="2026-11-29T05:00:01.000Z",
    )
    # When it is mapped with a freshly signed URL
    body = JobStatusResponse.from_job(job, file_url="https://signed").model_dump(by_alias=True, mode="json")
    # Then the keys are exactly the seed's, with the values carried over
    assert set(body) == SEED_STATUS_FIELDS
    assert body["fileUrl"] == "https://signed"
    assert body["fileName"] == "customers.csv"
    assert body["fileSize"] == 123
    assert body["totalRows"] == 10
    assert body["type"] == "export"
    assert body["status"] == "COMPLETED"


def test_absent_optional_fields_are_left_out_not_null():
    body = JobStatusResponse.from_job(a_job(), file_url=None).model_dump(by_alias=True, mode="json")
    assert set(body) == SEED_REQUIRED_FIELDS
    assert None not in body.values()


def test_internal_fields_never_leak_into_the_status():
    job = a_job(checkpoint={"offset": 5}, attempts=2, heartbeat_at="2026-11-29T05:00:01.000Z")
    body = JobStatusResponse.from_job(job, file_url=None).model_dump(by_alias=True, mode="json")
    assert set(body) <= SEED_STATUS_FIELDS
    assert "tenant" not in body
