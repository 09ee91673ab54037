"""A constant-memory S3 multipart upload whose state fits in a checkpoint.

Parts are 8 MB (S3 needs at least 5 MB for all but the last). A file that never fills one part is
written with a single PutObject instead. On failure or cancel the upload is aborted, so no orphan
parts are left behind.
"""

from __future__ import annotations

import contextlib
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
        self._part_size = part_size
        state = state or {}
        self.upload_id: str | None = state.get("uploadId")
        self.parts: list[dict[str, Any]] = list(state.get("parts", []))
        self.size: int = int(state.get("size", 0))
        self._buffer = bytearray(pending)

    def write(self, data: bytes) -> None:
        """Buffer ``data``; upload a part whenever a full one is ready."""
        self._buffer += data
        self.size += len(data)
        while len(self._buffer) >= self._part_size:
            chunk = bytes(self._buffer[: self._part_size])
            del self._buffer[: self._part_size]
            self._upload_part(chunk)

    def _upload_part(self, chunk: bytes) -> None:
        if self.upload_id is None:
            self.upload_id = self._client.create_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                ContentType=self._content_type,
                ContentDisposition=content_disposition(self._file_name),
            )["UploadId"]
        number = len(self.parts) + 1
        response = self._client.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=chunk
        )
        self.parts.append({"PartNumber": number, "ETag": response["ETag"]})

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps (the pending bytes are kept separately)."""
        return {"uploadId": self.upload_id, "parts": self.parts, "size": self.size}

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
