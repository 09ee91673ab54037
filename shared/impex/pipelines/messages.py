"""What workers receive: S3 object notifications and job messages, parsed with Powertools data classes."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event
from ulid import ULID

from impex.aws.queues import JobMessage
from impex.clock import parse_iso, utc_now
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


def import_message(body: str) -> list[StoredObject] | JobMessage:
    """An import-queue message: the objects of an S3 notification, or a job (continuation) message."""
    payload = _json_object(body)
    if "jobId" in payload:
        return JobMessage.from_payload(payload)
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
    if match := _UPLOAD_KEY.fullmatch(key):
        return UploadForJob(**match.groupdict())
    if match := _INCOMING_KEY.fullmatch(key):
        return DroppedFile(**match.groupdict())
    return None


def job_message(body: str) -> JobMessage:
    """Parse a job message; a malformed one raises BadRequest (it will land in the DLQ)."""
    return JobMessage.from_payload(_json_object(body))


def _json_object(body: str) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except json.JSONDecodeError:
        raise BadRequest(f"the message body is not JSON: {body[:200]!r}") from None
    if not isinstance(payload, dict):
        raise BadRequest(f"the message body is not a JSON object: {body[:200]!r}")
    return payload


def dropped_job_id(stored: StoredObject) -> str:
    """The same object event always names the same job, so a duplicate event creates nothing."""
    seed = hashlib.sha256(f"{stored.bucket}/{stored.key}/{stored.sequencer}".encode()).digest()
    try:
        moment = parse_iso(stored.event_time) if stored.event_time else utc_now()
    except ValueError:
        moment = utc_now()
    milliseconds = int(moment.timestamp() * 1000)
    return str(ULID.from_bytes(milliseconds.to_bytes(6, "big") + seed[:10]))


def job_ids_in(body: str) -> list[tuple[str, str]]:
    """(job id, tenant) of every job a queue message concerns (for dead letters)."""
    try:
        message = import_message(body)
    except BadRequest:
        return []
    if isinstance(message, JobMessage):
        return [(message.job_id, message.tenant)]
    found = []
    for stored in message:
        target = classify(stored.key)
        if isinstance(target, UploadForJob):
            found.append((target.job_id, target.tenant))
        elif isinstance(target, DroppedFile):
            found.append((dropped_job_id(stored), target.tenant))
    return found
