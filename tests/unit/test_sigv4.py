"""The lean client's SigV4 signer signs exactly as botocore's signer does."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from impex.aws.dynamo_http import SigV4Signer, host_header

MOMENT = datetime(2026, 11, 29, 7, 45, 12, tzinfo=UTC)
BODY = b'{"RequestItems":{"records":[{"PutRequest":{"Item":{"pk":{"S":"t#d"},"sk":{"S":"caf\xc3\xa9"}}}}]}}'


def botocore_headers(
    url: str, credentials: ReadOnlyCredentials, monkeypatch: pytest.MonkeyPatch, moment: datetime = MOMENT
) -> dict:
    """The headers botocore's own signer gives the request, signed at ``moment``."""
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: moment.replace(tzinfo=None))
    request = AWSRequest(
        method="POST",
        url=url,
        data=BODY,
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.BatchWriteItem",
        },
    )
    botocore.auth.SigV4Auth(credentials, "dynamodb", "eu-west-1").add_auth(request)
    return {name.lower(): value for name, value in request.headers.items()}


@pytest.mark.parametrize(
    "url",
    [
        "https://dynamodb.eu-west-1.amazonaws.com",
        "https://dynamodb.eu-west-1.amazonaws.com:443/",
        "http://127.0.0.1:4566",
    ],
)
@pytest.mark.parametrize("token", [None, "session-token/with+odd=chars"])
def test_the_signature_is_botocores(url, token, monkeypatch):
    # Given credentials, an endpoint and a request body
    credentials = ReadOnlyCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    # When both signers sign the same request at the same moment
    expected = botocore_headers(url, credentials, monkeypatch)
    signer = SigV4Signer(host_header(urlsplit(url)), "eu-west-1")
    ours = signer.headers(credentials, "DynamoDB_20120810.BatchWriteItem", BODY, now=MOMENT)
    # Then the Authorization header (and every signed header) is the same
    assert ours["authorization"] == expected["authorization"]
    assert ours["x-amz-date"] == expected["x-amz-date"] == "20261129T074512Z"
    assert ours.get("x-amz-security-token") == expected.get("x-amz-security-token")


def test_the_signing_key_is_kept_for_the_day_and_renewed_the_next(monkeypatch):
    credentials = ReadOnlyCredentials("AKIDEXAMPLE", "secret", None)
    signer = SigV4Signer("dynamodb.eu-west-1.amazonaws.com", "eu-west-1")
    url = "https://dynamodb.eu-west-1.amazonaws.com"
    # Given a signature made today
    signer.headers(credentials, "DynamoDB_20120810.BatchWriteItem", BODY, now=MOMENT)
    # When the next request is signed the following day
    tomorrow = MOMENT.replace(day=30)
    ours = signer.headers(credentials, "DynamoDB_20120810.BatchWriteItem", BODY, now=tomorrow)
    # Then it is still botocore's signature (the new day's key, not yesterday's)
    assert ours["authorization"] == botocore_headers(url, credentials, monkeypatch, tomorrow)["authorization"]


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://dynamodb.us-east-1.amazonaws.com", "dynamodb.us-east-1.amazonaws.com"),
        ("https://dynamodb.us-east-1.amazonaws.com:443", "dynamodb.us-east-1.amazonaws.com"),
        ("http://localhost:8000", "localhost:8000"),
        ("http://[::1]:8000", "[::1]:8000"),
    ],
)
def test_the_host_header_drops_default_ports(url, host):
    assert host_header(urlsplit(url)) == host
