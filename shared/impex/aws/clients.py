"""boto3 clients and resources, configured once per process, each made on its first use.

Making a client reads its service model (JSON) and builds its classes: tens of milliseconds each.
The api function wires five at cold start; a status request needs one. So each is a stand-in that
makes the real client when first called, once per process (the workers make theirs on their first
job, as before).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, cast

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_sqs.client import SQSClient

Made = TypeVar("Made")


class OnFirstUse(Generic[Made]):
    """Stands in for what ``make()`` returns, and makes it on the first attribute asked of it."""

    def __init__(self, make: Callable[[], Made]) -> None:
        self._make = make
        self._made: Made | None = None
        self._lock = threading.Lock()

    def made(self) -> Made:
        """The real object, made now if it was not yet (once, whichever thread asks first)."""
        if self._made is None:
            with self._lock:
                if self._made is None:
                    self._made = self._make()
        return self._made

    def __getattr__(self, name: str) -> Any:
        return getattr(self.made(), name)


def _on_first_use(make: Callable[[], Made]) -> Made:
    return cast("Made", OnFirstUse(make))


_RETRIES_PER_CALL = 4
_RETRIES: Config = Config(
    retries={"mode": "standard", "max_attempts": _RETRIES_PER_CALL + 1}, connect_timeout=5, read_timeout=30
)


@cache
def documents() -> Any:
    """The client for the jobs and datasets tables (impex.aws.tables), made on first use: the lean
    client, retrying throttles, 5xx and broken connections itself as botocore's standard mode does (4
    retries), or botocore's client under moto's in-process mock."""
    return _on_first_use(lambda: _dynamodb_low_level(retries=_RETRIES_PER_CALL))


@cache
def dynamodb_client() -> DynamoDBClient:
    """The low-level DynamoDB client (the idempotency records: Powertools speaks DynamoDB JSON; the
    resource's own client would serialise its values a second time)."""
    return _on_first_use(lambda: boto3.client("dynamodb", config=_RETRIES))


@cache
def dynamodb_fast() -> Any:
    """The client for record batches: the lean HTTP client (see aws.dynamo_http), or, when
    DYNAMODB_RAW_HTTP=false (moto's in-process mock), botocore's low-level client with parameter
    validation off (we build the requests ourselves) and pooled connections for the writer threads."""
    return _dynamodb_low_level(retries=0)


def _dynamodb_low_level(*, retries: int) -> Any:
    raw = os.environ.get("DYNAMODB_RAW_HTTP", "true").lower() != "false"
    if raw:
        from impex.aws.dynamo_http import raw_client_from_environment

        # Without botocore's service model (~0.08 s to load) when the endpoint is a plain one.
        lean = raw_client_from_environment(boto3.Session(), retries=retries)
        if lean is not None:
            return lean
    config = _RETRIES.merge(Config(parameter_validation=False, max_pool_connections=32))
    client = boto3.client("dynamodb", config=config)
    if not raw:
        return client
    from impex.aws.dynamo_http import raw_client_like

    return raw_client_like(client, retries=retries)


@cache
def s3(addressing_style: Literal["auto", "virtual", "path"] = "auto") -> S3Client:
    """An S3 client that signs with SigV4 (required for presigned POST policies)."""
    config = _RETRIES.merge(Config(signature_version="s3v4", s3={"addressing_style": addressing_style}))
    return _on_first_use(lambda: boto3.client("s3", config=config))


@cache
def events() -> Any:
    """The EventBridge client."""
    return _on_first_use(lambda: boto3.client("events", config=_RETRIES))


@cache
def sqs() -> SQSClient:
    """The SQS client."""
    return _on_first_use(lambda: boto3.client("sqs", config=_RETRIES))


def reset() -> None:
    """Forget cached clients (after the endpoint or credentials in the environment change)."""
    for factory in (documents, dynamodb_client, dynamodb_fast, s3, sqs, events):
        factory.cache_clear()
