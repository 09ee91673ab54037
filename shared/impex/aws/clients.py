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

if TYPE_CHECKING:
    from botocore.config import Config
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


def _config(**options: Any) -> Config:
    """botocore's standard retries (4 per call) and timeouts, with ``options``. boto3 and botocore are
    imported here, by the first client made, not at cold start (~0.14 s that a status request, served
    by the lean client, never needs)."""
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "max_attempts": _RETRIES_PER_CALL + 1},
        connect_timeout=5,
        read_timeout=30,
        **options,
    )


def _boto3_client(service: str, config: Config) -> Any:
    import boto3

    return boto3.client(service, config=config)  # type: ignore[call-overload]


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
    return cast("DynamoDBClient", _on_first_use(lambda: _boto3_client("dynamodb", _config())))


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
        lean = raw_client_from_environment(retries=retries)
        if lean is not None:
            return lean
    client = _boto3_client("dynamodb", _config(parameter_validation=False, max_pool_connections=32))
    if not raw:
        return client
    from impex.aws.dynamo_http import raw_client_like

    return raw_client_like(client, retries=retries)


@cache
def s3(addressing_style: Literal["auto", "virtual", "path"] = "auto") -> S3Client:
    """An S3 client that signs with SigV4 (required for presigned POST policies)."""
    config = {"signature_version": "s3v4", "s3": {"addressing_style": addressing_style}}
    return cast("S3Client", _on_first_use(lambda: _boto3_client("s3", _config(**config))))


@cache
def events() -> Any:
    """The EventBridge client."""
    return _on_first_use(lambda: _boto3_client("events", _config()))


@cache
def sqs() -> SQSClient:
    """The SQS client."""
    return cast("SQSClient", _on_first_use(lambda: _boto3_client("sqs", _config())))


def reset() -> None:
    """Forget cached clients (after the endpoint or credentials in the environment change)."""
    for factory in (documents, dynamodb_client, dynamodb_fast, s3, sqs, events):
        factory.cache_clear()
