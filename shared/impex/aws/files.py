"""The files bucket: presigned uploads and downloads, and the key layout of every object impex owns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import IO, TYPE_CHECKING, Any, cast
from urllib.parse import quote

from botocore.exceptions import ClientError

from impex.clock import iso, utc_now

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

    from impex.aws.multipart import MultipartUpload


_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
# A version id that is not (or no longer) the object's is a 400 to HeadObject: missing only when a
# version was asked for (any other 400 is a real error, not an absent object).
_MISSING_VERSION = _MISSING | {"400", "InvalidArgument", "NoSuchVersion"}


def upload_key(tenant: str, job_id: str, file_name: str) -> str:
    """Where the upload of an import job goes: the importer derives the job from this key.

    A "$" in the name is written %24: S3 replaces ${filename} in a POST form's key with whatever
    name the uploader's client sends, and botocore signs a key ending in it as a starts-with
    prefix, so a name holding it would let the upload land under another key. The job keeps
    the name as given."""
    return f"uploads/{tenant}/{job_id}/{file_name.replace('$', '%24')}"


def export_key(tenant: str, job_id: str, file_name: str) -> str:
    """Where an export job writes its file."""
    return f"exports/{tenant}/{job_id}/{file_name}"


def export_part_key(tenant: str, job_id: str, chunk: int) -> str:
    """Where one chunk of a fanned-out export writes its share, until the file is assembled."""
    return f"exports/{tenant}/{job_id}/parts/{chunk:03d}"


def error_report_key(tenant: str, job_id: str) -> str:
    """Where an import job writes its row-error report."""
    return f"errors/{tenant}/{job_id}/errors.csv"


def error_part_key(tenant: str, job_id: str, part: int) -> str:
    """Where one invocation's share of an import's row errors waits until the report is assembled."""
    return f"errors/{tenant}/{job_id}/parts/{part:05d}.csv"


def chunk_key(tenant: str, job_id: str, chunk: int, segment: int) -> str:
    """Where one segment of a fanned-out import's chunk waits for its worker (expired by lifecycle)."""
    return f"chunks/{tenant}/{job_id}/{chunk:03d}/{segment:06d}.jsonl.gz"


def content_disposition(file_name: str) -> str:
    """An attachment disposition that survives non-ASCII file names."""
    ascii_name = file_name.encode("ascii", "replace").decode().replace('"', "'")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(file_name)}"


@dataclass(frozen=True)
class ObjectInfo:
    """What HeadObject says about an object."""

    size: int
    metadata: dict[str, str]
    etag: str
    version_id: str | None = None  # in a versioned bucket


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
        if "${" in key:
            raise ValueError(f"an upload key must not hold a POST form variable: {key}")
        expires_at = iso(utc_now() + timedelta(seconds=ttl_seconds))
        post: dict[str, Any] = self._client.generate_presigned_post(
            Bucket=self.name,
            Key=key,
            Conditions=[{"key": key}, ["content-length-range", 1, max_bytes]],
            ExpiresIn=ttl_seconds,
        )
        return PresignedUpload(
            url=post["url"], fields=dict(post["fields"]), key=key, max_bytes=max_bytes, expires_at=expires_at
        )

    def presign_download(self, key: str, *, file_name: str, ttl_seconds: int) -> str:
        """A fresh presigned GET that makes browsers save the object under ``file_name``."""
        return self._client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.name,
                "Key": key,
                "ResponseContentDisposition": content_disposition(file_name),
            },
            ExpiresIn=ttl_seconds,
        )

    def find(
        self, key: str, bucket: str | None = None, *, version_id: str | None = None
    ) -> ObjectInfo | None:
        """Size, user metadata, ETag and version of an object (or of that version of it); None when
        there is no such object or version."""
        request: dict[str, Any] = {"Bucket": bucket or self.name, "Key": key}
        if version_id is not None:
            request["VersionId"] = version_id
        try:
            response = self._client.head_object(**request)
        except ClientError as error:
            if error.response["Error"]["Code"] in (_MISSING if version_id is None else _MISSING_VERSION):
                return None
            raise
        return ObjectInfo(
            size=int(response["ContentLength"]),
            metadata=dict(response.get("Metadata", {})),
            etag=response["ETag"],
            version_id=response.get("VersionId"),
        )

    def open(
        self,
        key: str,
        *,
        start: int = 0,
        end: int | None = None,
        bucket: str | None = None,
        version_id: str | None = None,
    ) -> IO[bytes]:
        """A streaming read of an object (or of that version of it), from byte ``start`` (to ``end``
        inclusive)."""
        request: dict[str, Any] = {"Bucket": bucket or self.name, "Key": key}
        if version_id is not None:
            request["VersionId"] = version_id
        if start or end is not None:
            request["Range"] = f"bytes={start}-{'' if end is None else end}"
        return cast(IO[bytes], self._client.get_object(**request)["Body"])

    def multipart(
        self,
        key: str,
        *,
        content_type: str,
        file_name: str,
        state: dict[str, Any] | None = None,
        pending: bytes = b"",
    ) -> MultipartUpload:
        """A multipart upload to ``key``, new or carried on from a checkpoint's ``state`` and bytes."""
        from impex.aws.multipart import MultipartUpload

        return MultipartUpload(
            self._client,
            self.name,
            key,
            content_type=content_type,
            file_name=file_name,
            state=state,
            pending=pending,
        )

    def compose(self, key: str, sources: list[str], *, content_type: str, file_name: str) -> int:
        """Write the objects ``sources`` one after the other into ``key`` (S3 copies every stretch of
        5 MB or more itself); its size."""
        from impex.aws.multipart import compose

        sized = []
        for source in sources:
            info = self.find(source)
            if info is None:
                raise FileNotFoundError(f"s3://{self.name}/{source} is gone")
            sized.append((source, info.size))
        upload = self.multipart(key, content_type=content_type, file_name=file_name)
        try:
            return compose(upload, sized, lambda source, first, last: self._range(source, first, last))
        except BaseException:
            upload.abort()
            raise

    def _range(self, key: str, first: int, last: int) -> bytes:
        return self._client.get_object(Bucket=self.name, Key=key, Range=f"bytes={first}-{last}")[
            "Body"
        ].read()

    def abort_uploads_under(self, prefix: str) -> int:
        """Abort every unfinished multipart upload under ``prefix`` (left by a crashed attempt)."""
        aborted = 0
        response = self._client.list_multipart_uploads(Bucket=self.name, Prefix=prefix)
        for upload in response.get("Uploads", []):
            self._client.abort_multipart_upload(
                Bucket=self.name, Key=upload["Key"], UploadId=upload["UploadId"]
            )
            aborted += 1
        return aborted

    def put_bytes(self, key: str, body: bytes, *, content_type: str) -> None:
        """Write a small object."""
        self._client.put_object(Bucket=self.name, Key=key, Body=body, ContentType=content_type)

    def read_bytes(self, key: str) -> bytes:
        """Read a small object whole."""
        return self._client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def delete(self, keys: list[str]) -> None:
        """Delete objects (up to 1000 per request)."""
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            if chunk:
                objects: list[Any] = [{"Key": key} for key in chunk]
                self._client.delete_objects(Bucket=self.name, Delete={"Objects": objects, "Quiet": True})
