"""boto3 clients and resources, configured once per process."""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import DynamoDBServiceResource
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_sqs.client import SQSClient

_RETRIES: Config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)


@cache
def dynamodb() -> DynamoDBServiceResource:
    """The DynamoDB resource for the jobs, datasets and idempotency tables."""
    return boto3.resource("dynamodb", config=_RETRIES)


@cache
def dynamodb_fast() -> Any:
    """The client for record batches: the lean HTTP client (see aws.dynamo_http), or, when
    DYNAMODB_RAW_HTTP=false (moto's in-process mock), botocore's low-level client with parameter
    validation off (we build the requests ourselves) and pooled connections for the writer threads."""
    config = _RETRIES.merge(Config(parameter_validation=False, max_pool_connections=32))
    client = boto3.client("dynamodb", config=config)
    if os.environ.get("DYNAMODB_RAW_HTTP", "true").lower() == "false":
        return client
    from impex.aws.dynamo_http import raw_client_like

    return raw_client_like(client)


@cache
def s3(addressing_style: Literal["auto", "virtual", "path"] = "auto") -> S3Client:
    """An S3 client that signs with SigV4 (required for presigned POST policies)."""
    config = _RETRIES.merge(Config(signature_version="s3v4", s3={"addressing_style": addressing_style}))
    return boto3.client("s3", config=config)


@cache
def events() -> Any:
    """The EventBridge client."""
    return boto3.client("events", config=_RETRIES)


@cache
def sqs() -> SQSClient:
    """The SQS client."""
    return boto3.client("sqs", config=_RETRIES)


def reset() -> None:
    """Forget cached clients (after the endpoint or credentials in the environment change)."""
    for factory in (dynamodb, dynamodb_fast, s3, sqs, events):
        factory.cache_clear()
