"""The files bucket: presigned uploads and downloads, and the key layout of every object impex owns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from impex.clock import iso, utc_now

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


def upload_key(tenant: str, job_id: str, file_name: str) -> str:
    """Where the upload of an import job goes: the importer derives the job from this key."""
    return f"uploads/{tenant}/{job_id}/{file_name}"


def export_key(tenant: str, job_id: str, file_name: str) -> str:
    """Where an export job writes its file."""
    return f"exports/{tenant}/{job_id}/{file_name}"


def error_report_key(tenant: str, job_id: str) -> str:
    """Where an import job writes its row-error report."""
    return f"errors/{tenant}/{job_id}/errors.csv"


@dataclass(frozen=True)
class PresignedUpload:
    """A presigned S3 POST: the form's URL and fields, with the limits its policy enforces."""

    url: str
    fields: dict[str, str]
    key: str
    max_bytes: int
    expires_at: str


class FilesBucket:
    """Signs uploads and downloads for the one bucket impex keeps its files in."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self.name = bucket

    def presign_upload(self, key: str, *, max_bytes: int, ttl_seconds: int) -> PresignedUpload:
        """A POST policy pinned to exactly ``key``, capped at ``max_bytes``, valid ``ttl_seconds``.

        Only a POST policy can cap the size; a presigned PUT cannot.
        """
        expires_at = iso(utc_now() + timedelta(seconds=ttl_seconds))
        post: dict[str, Any] = self._client.generate_presigned_post(
            Bucket=self.name,
            Key=key,
            Conditions=[["content-length-range", 1, max_bytes]],
            ExpiresIn=ttl_seconds,
        )
        return PresignedUpload(
            url=post["url"], fields=dict(post["fields"]), key=key, max_bytes=max_bytes, expires_at=expires_at
        )

    def presign_download(self, key: str, *, file_name: str, ttl_seconds: int) -> str:
        """A fresh presigned GET that makes browsers save the object under ``file_name``."""
        disposition = f"attachment; filename*=UTF-8''{quote(file_name)}"
        return self._client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.name, "Key": key, "ResponseContentDisposition": disposition},
            ExpiresIn=ttl_seconds,
        )
