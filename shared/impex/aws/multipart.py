"""A constant-memory S3 multipart upload whose state fits in a checkpoint.

Parts are 8 MB (S3 needs at least 5 MB for all but the last). A file that never fills one part is
written with a single PutObject instead. On failure or cancel the upload is aborted, so no orphan
parts are left behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from impex.aws.files import content_disposition

PART_SIZE = 8 * 1024 * 1024


class MultipartUpload:
    """Write bytes; parts go to S3 as they fill."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        key: str,
        *,
        content_type: str,
        file_name: str,
        part_size: int = PART_SIZE,
        state: dict[str, Any] | None = None,
        pending: bytes = b"",
    ) -> None:
        if part_size < 5 * 1024 * 1024:
            raise ValueError("S3 parts are at least 5 MB")
        self._client = client
        self.bucket = bucket
        self.key = key
        self._content_type = content_type
        self._file_name = file_name
        self.part_size = part_size
        state = state or {}
        self.upload_id: str | None = state.get("uploadId")
        self.parts: list[dict[str, Any]] = list(state.get("parts", []))
        self.size: int = int(state.get("size", 0))
        self._buffer = bytearray(pending)

    def write(self, data: bytes) -> None:
        """Buffer ``data``; upload a part whenever a full one is ready."""
        self._buffer += data
        self.size += len(data)
        while len(self._buffer) >= self.part_size:
            chunk = bytes(self._buffer[: self.part_size])
            del self._buffer[: self.part_size]
            self._upload_part(chunk)

    def copy(self, source_key: str, first: int, last: int) -> None:
        """Append bytes ``first``..``last`` (inclusive) of another object of the bucket as one part,
        copied by S3 itself; nothing may be buffered (all but the last part are at least 5 MB)."""
        if self._buffer:
            raise ValueError("a copied part cannot follow bytes not yet uploaded")
        number = self._next_part()
        response = self._client.upload_part_copy(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            CopySource={"Bucket": self.bucket, "Key": source_key},
            CopySourceRange=f"bytes={first}-{last}",
        )
        self.parts.append({"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]})
        self.size += last - first + 1

    def _next_part(self) -> int:
        if self.upload_id is None:
            self.upload_id = self._client.create_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                ContentType=self._content_type,
                ContentDisposition=content_disposition(self._file_name),
            )["UploadId"]
        return len(self.parts) + 1

    def _upload_part(self, chunk: bytes) -> None:
        number = self._next_part()
        response = self._client.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=chunk
        )
        self.parts.append({"PartNumber": number, "ETag": response["ETag"]})

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps (the pending bytes are kept separately)."""
        return {"uploadId": self.upload_id, "parts": self.parts, "size": self.size}

    @property
    def buffered(self) -> int:
        """How many bytes are written but not yet uploaded."""
        return len(self._buffer)

    def pending(self) -> bytes:
        """Bytes written but not yet uploaded as a part."""
        return bytes(self._buffer)

    def complete(self) -> int:
        """Finish the object; its size."""
        if self.upload_id is None:
            self._client.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=bytes(self._buffer),
                ContentType=self._content_type,
                ContentDisposition=content_disposition(self._file_name),
            )
        else:
            if self._buffer or not self.parts:
                self._upload_part(bytes(self._buffer))
            self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": self.parts},
            )
        self._buffer.clear()
        return self.size

    def abort(self) -> None:
        """Drop every uploaded part (idempotent)."""
        if self.upload_id is not None:
            with contextlib.suppress(self._client.exceptions.NoSuchUpload):
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
            self.upload_id = None
        self._buffer.clear()


MIN_PART = 5 * 1024 * 1024  # S3's smallest part but the last
MAX_COPIED_PART = 5 * 1024**3  # S3's largest part


def compose(
    upload: MultipartUpload, sources: list[tuple[str, int]], read: Callable[[str, int, int], bytes]
) -> int:
    """Write the objects ``sources`` (key, size), one after the other, into ``upload`` and finish it:
    every stretch of at least 5 MB is a part S3 copies itself; only the bytes around a smaller
    object are read (``read(key, first, last)``) and uploaded, so that every part but the last is
    at least 5 MB. Returns the size."""
    for key, size in sources:
        position = 0
        while position < size:
            if not upload.buffered and size - position >= MIN_PART:
                last = min(size, position + MAX_COPIED_PART) - 1
                upload.copy(key, position, last)
                position = last + 1
                continue
            # Fill the buffer up to a whole part (the write uploads it once full).
            take = min(size - position, upload.part_size - upload.buffered)
            upload.write(read(key, position, position + take - 1))
            position += take
    return upload.complete()
