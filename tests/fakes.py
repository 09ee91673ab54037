"""Fakes that enter through the adapters' seams (the wiring's records, jobs and files parameters).

Each is the real adapter on moto with one behaviour added, so a test injects a fault (a crash mid
batch, a throttled request, a failing read, a cancel at a chosen moment) without patching anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from impex.aws import clients
from impex.aws.files import FilesBucket
from impex.aws.records import RecordTable
from impex.aws.tables import DocumentTable
from impex.jobs.model import Job, JobStatus
from impex.jobs.store import JobStore

PutMany = Callable[[list[dict[str, Any]]], None]
Page = Callable[..., tuple[list[Any], Any]]


class HookedRecordTable(RecordTable):
    """A record table whose batch writes and pages go through test hooks."""

    def __init__(
        self,
        name: str,
        *,
        around_put: Callable[[PutMany, list[dict[str, Any]]], None] | None = None,
        around_page: Callable[..., tuple[list[Any], Any]] | None = None,
        client: Any = None,
        backoff: Callable[[int], float] | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {} if backoff is None else {"backoff": backoff}
        super().__init__(client or clients.dynamodb_fast(), name, **kwargs)
        self._around_put = around_put
        self._around_page = around_page

    def put_many(self, items: Any) -> None:
        if self._around_put is None:
            super().put_many(items)
        else:
            self._around_put(super().put_many, list(items))

    def page(self, request: dict[str, Any], **kwargs: Any) -> tuple[list[Any], Any]:
        if self._around_page is None:
            return super().page(request, **kwargs)
        return self._around_page(lambda: super(HookedRecordTable, self).page(request, **kwargs))


def hooked_records(**hooks: Any) -> Callable[[str], RecordTable]:
    """A record-table factory for the wiring: every table it makes has these hooks."""
    return lambda name: HookedRecordTable(name, **hooks)


class ThrottlingDynamoDB:
    """A low-level DynamoDB client that throttles, then half-processes, the first batch writes."""

    def __init__(self, inner: Any, *, throttled: int = 1, partial: int = 1) -> None:
        self._inner = inner
        self._throttled = throttled
        self._partial = partial
        self.batch_writes = 0

    def batch_write_item(self, **request: Any) -> dict[str, Any]:
        self.batch_writes += 1
        if self.batch_writes <= self._throttled:
            error: Any = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}
            raise ClientError(error, "BatchWriteItem")
        if self.batch_writes <= self._throttled + self._partial:
            table, writes = next(iter(request["RequestItems"].items()))
            self._inner.batch_write_item(RequestItems={table: writes[:3]})
            return {"UnprocessedItems": {table: writes[3:]}}
        return self._inner.batch_write_item(**request)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class HookedJobStore(JobStore):
    """The real job store, with hooks before status checks and progress writes, and a frozen view."""

    def __init__(
        self,
        jobs_table: str,
        *,
        before_status_check: Callable[[str], None] | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        active_view: list[Job] | None = None,
    ) -> None:
        super().__init__(DocumentTable(clients.documents(), jobs_table), retention_days=1)
        self._before_status_check = before_status_check
        self._on_progress = on_progress
        self._active_view = active_view

    def stop_signal(self, job_id: str) -> JobStatus | None:
        if self._before_status_check is not None:
            self._before_status_check(job_id)
        return super().stop_signal(job_id)

    def record_progress(self, job_id: str, **fields: Any) -> None:
        if self._on_progress is not None:
            self._on_progress(fields)
        super().record_progress(job_id, **fields)

    def list_active(self, status: JobStatus, *, heartbeat_before: str, limit: int = 100) -> list[Job]:
        if self._active_view is None:
            return super().list_active(status, heartbeat_before=heartbeat_before, limit=limit)
        return [job for job in self._active_view if job.status is status]


class FlakyFilesBucket(FilesBucket):
    """The files bucket, whose first streaming read fails as S3 sometimes does."""

    def __init__(self, bucket: str, *, failures: int = 1) -> None:
        super().__init__(clients.s3(), bucket)
        self._failures = failures
        self.opens = 0

    def open(self, key: str, **kwargs: Any) -> Any:
        self.opens += 1
        if self.opens <= self._failures:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "S3 hiccup"}}, "GetObject")
        return super().open(key, **kwargs)
