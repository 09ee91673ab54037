"""What workers receive: S3 object notifications and job messages, parsed with Powertools data classes."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event

from impex.errors import BadRequest

_UPLOAD_KEY = re.compile(r"^uploads/(?P<tenant>[^/]+)/(?P<job_id>[0-9A-Z]{26})/(?P<file_name>[^/]+)$")
_INCOMING_KEY = re.compile(r"^incoming/(?P<tenant>[^/]+)/(?P<dataset>[^/]+)/(?P<file_name>.+)$")


@dataclass(frozen=True)
class StoredObject:
    """An object S3 reported as created."""

    bucket: str
    key: str
    size: int | None
    event_time: str = ""
    sequencer: str = ""


@dataclass(frozen=True)
class UploadForJob:
    """The upload of an import job created through the API."""

    tenant: str
    job_id: str
    file_name: str


@dataclass(frozen=True)
class DroppedFile:
    """A file dropped under incoming/{tenant}/{dataset}/ with no API call."""

    tenant: str
    dataset: str
    file_name: str


@dataclass(frozen=True)
class JobMessage:
    """An SQS message that names a job (exports, continuations, requeues)."""

    job_id: str
    tenant: str
    continuation: bool = False


def import_message(body: str) -> list[StoredObject] | JobMessage:
    """An import-queue message: the objects of an S3 notification, or a job (continuation) message."""
    payload = _json_object(body)
    if "jobId" in payload:
        return job_message(body)
    return created_objects(payload)


def created_objects(payload: dict[str, Any]) -> list[StoredObject]:
    """The objects in an S3 event notification (none for s3:TestEvent)."""
    if "Records" not in payload:
        return []  # s3:TestEvent and other non-record notifications carry no objects
    event = S3Event(payload)
    objects = []
    for record in event.records:
        if not record.event_name.startswith("ObjectCreated"):
            continue
        # Keys arrive URL-encoded (spaces as '+'), from S3 and from moto alike.
        key = unquote_plus(record.s3.get_object.key)
        size: Any = record.s3.get_object.raw_event.get("size")
        sequencer = str(record.s3.get_object.raw_event.get("sequencer", ""))
        objects.append(
            StoredObject(
                bucket=record.s3.bucket.name,
                key=key,
                size=int(size) if size else None,
                event_time=record.event_time,
                sequencer=sequencer,
            )
        )
    return objects


def classify(key: str) -> UploadForJob | DroppedFile | None:
    """What an object key means to the importer; None for keys it does not own."""
    if match := _UPLOAD_KEY.match(key):
        return UploadForJob(**match.groupdict())
    if match := _INCOMING_KEY.match(key):
        return DroppedFile(**match.groupdict())
    return None


def job_message(body: str) -> JobMessage:
    """Parse a job message; a malformed one raises BadRequest (it will land in the DLQ)."""
    payload = _json_object(body)
    job_id, tenant = payload.get("jobId"), payload.get("tenant")
    if not isinstance(job_id, str) or not isinstance(tenant, str):
        raise BadRequest(f"not a job message: {body[:200]!r}")
    return JobMessage(job_id=job_id, tenant=tenant, continuation=payload.get("continuation") is True)


def _json_object(body: str) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except json.JSONDecodeError:
        raise BadRequest(f"the message body is not JSON: {body[:200]!r}") from None
    if not isinstance(payload, dict):
        raise BadRequest(f"the message body is not a JSON object: {body[:200]!r}")
    return payload
