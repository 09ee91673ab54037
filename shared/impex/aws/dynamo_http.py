"""A lean DynamoDB client for record traffic (BatchWriteItem, BatchGetItem, Query, Scan, PutItem,
UpdateItem): requests are signed with botocore's own SigV4 signer, but bodies are built and parsed
with orjson instead of botocore's model-driven serializer and parser, which dominate the cost of
large batches. It speaks the same low-level JSON as the botocore client and raises the same
ClientError, so RecordTable works with either.

Under moto's in-process mock (unit and integration tests) only botocore's client is intercepted, so
those tests use the botocore client (DYNAMODB_RAW_HTTP=false); the local stack and the benchmarks
exercise this one against real HTTP endpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError

_TARGET_PREFIX = "DynamoDB_20120810."


def _operation_name(method: str) -> str:
    return "".join(part.title() for part in method.split("_"))


class RawDynamoDB:
    """Call DynamoDB's JSON API directly: `client.batch_write_item(RequestItems=…)` and friends."""

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        credentials: Callable[[], Any],
        *,
        max_connections: int = 32,
        timeout: float = 30.0,
    ) -> None:
        self._url = endpoint_url.rstrip("/") + "/"
        self._region = region
        self._credentials = credentials
        self._http = urllib3.PoolManager(
            maxsize=max_connections,
            block=False,
            retries=False,
            timeout=urllib3.Timeout(connect=5, read=timeout),
        )

    def __getattr__(self, method: str) -> Callable[..., dict[str, Any]]:
        if method.startswith("_"):
            raise AttributeError(method)
        operation = _operation_name(method)

        def call(**request: Any) -> dict[str, Any]:
            return self.call(operation, request)

        return call

    def call(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        """One signed JSON request; an error response becomes botocore's ClientError."""
        body = orjson.dumps(request)
        aws_request = AWSRequest(
            method="POST",
            url=self._url,
            data=body,
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": _TARGET_PREFIX + operation,
            },
        )
        SigV4Auth(self._credentials(), "dynamodb", self._region).add_auth(aws_request)
        response = self._http.request("POST", self._url, body=body, headers=dict(aws_request.headers.items()))
        payload: dict[str, Any] = orjson.loads(response.data) if response.data else {}
        if response.status >= 300:
            code = str(payload.get("__type", f"HTTP{response.status}")).rsplit("#", 1)[-1]
            message = payload.get("message") or payload.get("Message") or ""
            error: Any = {
                "Error": {"Code": code, "Message": message},
                "ResponseMetadata": {"HTTPStatusCode": response.status},
            }
            raise ClientError(error, operation)
        return payload


def raw_client_like(botocore_client: Any) -> RawDynamoDB:
    """A RawDynamoDB for the same endpoint, region and credentials as a boto3 DynamoDB client."""
    import boto3

    session = boto3.Session()
    credentials = session.get_credentials()
    if credentials is None:
        raise RuntimeError("no AWS credentials")
    return RawDynamoDB(
        botocore_client.meta.endpoint_url,
        botocore_client.meta.region_name,
        credentials.get_frozen_credentials,
    )
