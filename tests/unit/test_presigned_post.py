"""The POST policy we sign. moto does not enforce policy conditions, so the policy itself is asserted."""

import base64
import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.config import Config

from impex.aws.files import FilesBucket, upload_key

MAX_BYTES = 10 * 1024 * 1024


def signed_policy(ttl_seconds: int = 900, file_name: str = "people.csv") -> tuple[dict, dict, datetime]:
    client = boto3.client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(signature_version="s3v4"),
    )
    before = datetime.now(UTC)
    ticket = FilesBucket(client, "impex-files-test").presign_upload(
        upload_key("acme", "01JDZ8Q4N6X3V2C8Y7T5R9K1MB", file_name),
        max_bytes=MAX_BYTES,
        ttl_seconds=ttl_seconds,
    )
    policy = json.loads(base64.b64decode(ticket.fields["policy"]))
    return policy, ticket.fields, before


def test_the_key_is_pinned_to_the_jobs_upload_path():
    policy, fields, _ = signed_policy()
    expected = "uploads/acme/01JDZ8Q4N6X3V2C8Y7T5R9K1MB/people.csv"
    assert {"key": expected} in policy["conditions"]
    assert fields["key"] == expected
    # no starts-with on the key: the client cannot choose another name
    assert not any(
        isinstance(c, list) and c[0] == "starts-with" and c[1] == "$key" for c in policy["conditions"]
    )


def test_the_size_is_capped_by_content_length_range():
    policy, _, _ = signed_policy()
    ranges = [c for c in policy["conditions"] if isinstance(c, list) and c[0] == "content-length-range"]
    assert ranges == [["content-length-range", 1, MAX_BYTES]]


def test_the_bucket_is_pinned():
    policy, _, _ = signed_policy()
    assert {"bucket": "impex-files-test"} in policy["conditions"]


def test_the_policy_expires_within_fifteen_minutes():
    policy, fields, before = signed_policy(ttl_seconds=900)
    expires = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert expires <= before + timedelta(seconds=901)
    assert expires >= before + timedelta(seconds=890)
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    assert "x-amz-signature" in fields


def test_a_shorter_lifetime_is_honoured():
    policy, _, before = signed_policy(ttl_seconds=120)
    expires = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert expires <= before + timedelta(seconds=121)


@pytest.mark.parametrize("file_name", ["${filename}", "a${filename}b.csv", "cost $5.csv", "${x}"])
def test_a_name_holding_a_form_variable_is_still_an_exact_key(file_name):
    # Given a file name S3 or botocore would read as a POST form variable
    policy, fields, _ = signed_policy(file_name=file_name)
    # Then the signed key is exactly the form's key, holds no variable, and has no starts-with
    assert "${" not in fields["key"] and fields["key"].endswith(file_name.replace("$", "%24"))
    assert {"key": fields["key"]} in policy["conditions"]
    assert not any(isinstance(c, list) and c[0] == "starts-with" for c in policy["conditions"])


def test_a_key_with_a_form_variable_is_never_signed():
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="A", aws_secret_access_key="s")
    with pytest.raises(ValueError, match="POST form variable"):
        FilesBucket(client, "b").presign_upload("uploads/a/b/${filename}", max_bytes=1, ttl_seconds=60)


def head_failing_with(code: str):
    from botocore.stub import Stubber

    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="A", aws_secret_access_key="s")
    stubber = Stubber(client)
    stubber.add_client_error("head_object", service_error_code=code, http_status_code=int(code))
    stubber.activate()
    return FilesBucket(client, "b")


def test_a_400_to_a_versioned_head_is_a_missing_version_but_otherwise_an_error():
    from botocore.exceptions import ClientError

    assert head_failing_with("400").find("uploads/k", version_id="v1") is None
    with pytest.raises(ClientError):
        head_failing_with("400").find("uploads/k")
    assert head_failing_with("404").find("uploads/k") is None
