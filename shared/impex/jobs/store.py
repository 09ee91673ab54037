"""The jobs table: every status change is one conditional UpdateItem built from the state machine.

Callers say what happened (claim, record progress, complete, fail, requeue, cancel, retry...); this
module alone knows the item's attribute names and how each change is written.

Terminal means terminal: every write is conditional on a non-terminal status, so once a job is
COMPLETED, FAILED or CANCELLED nothing changes it (not a counter, not updatedAt) but a retry of a
FAILED job. A cancel of a job a worker may hold is therefore a request: the worker ends the job
CANCELLED itself, with its exact counts, mapping and error report, in one conditional write.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from impex.aws.tables import DocumentTable, Expression
from impex.clock import iso, utc_now
from impex.errors import BadRequest, IllegalTransition, JobExists, JobNotFound
from impex.jobs.model import (
    ALLOWED_SOURCES,
    CHUNK_ALLOWED_SOURCES,
    FanOut,
    Job,
    JobOutcome,
    JobStatus,
    JobType,
)

if TYPE_CHECKING:
    from impex.aws.events import JobEvents

TENANT_INDEX = "ByTenant"
ACTIVE_INDEX = "Active"
ACTIVE_BY_TENANT_INDEX = "ActiveByTenant"
_CHANGE_BY_TARGET = {
    JobStatus.PROCESSING: "started",
    JobStatus.PENDING: "requeued",
    JobStatus.COMPLETED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "cancelled",
}
_STATUS = {"#status": "status"}
_ONLY_PROCESSING = frozenset({JobStatus.PROCESSING})
# A worker's writes while it runs: the job is still PROCESSING and nobody asked it to stop.
_STILL_RUNNING = Expression(
    "#status = :processing AND attribute_not_exists(cancelRequestedAt)",
    _STATUS,
    {":processing": "PROCESSING"},
)


class JobNotProcessing(IllegalTransition):
    """A worker tried to report progress on a job that is no longer PROCESSING (cancelled, failed...)."""

    code = "job_not_processing"

    def __init__(self, job_id: str, status: JobStatus | None) -> None:
        super().__init__(f"job {job_id} is {status or 'gone'}, not PROCESSING")
        self.status = status


@dataclass(frozen=True)
class JobPage:
    """One page of a tenant's jobs, newest first, and the cursor for the next page (None at the end)."""

    jobs: list[Job]
    next_cursor: str | None


@dataclass
class _Change:
    """One status change: the target, where it may come from, and what else it sets or removes."""

    target: JobStatus
    allowed_from: frozenset[JobStatus] | None = None
    sets: dict[str, Any] = field(default_factory=dict)
    removes: tuple[str, ...] = ()
    tenant: str | None = None
    expected_heartbeat: str | None = None
    increment_attempts: bool = False
    cancel_requested: bool = False  # only if a cancel was requested (a worker ending it CANCELLED)
    chunk_only: bool = False  # a chunk's own transition (CHUNK_ALLOWED_SOURCES), refused for any other job


class JobStore:
    """Reads and writes job records. Safe for any number of concurrent workers."""

    def __init__(self, table: DocumentTable, *, retention_days: int, events: JobEvents | None = None) -> None:
        self._table = table
        self._retention = timedelta(days=retention_days)
        self._events = events

    # --- reads -------------------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        """The job with this id, or None."""
        item = self._table.get({"id": job_id})
        return Job.model_validate(item) if item else None

    def get_for_tenant(self, tenant: str, job_id: str, job_type: JobType | None = None) -> Job:
        """The tenant's job; another tenant's job, or a type mismatch, is reported as not found."""
        job = self.get(job_id)
        if job is None or job.tenant != tenant or (job_type is not None and job.type != job_type):
            raise JobNotFound(f"job {job_id} was not found")
        if job.chunk is not None:  # a fanned-out import's chunk is its parent's business alone
            raise JobNotFound(f"job {job_id} was not found")
        return job

    def stop_signal(self, job_id: str) -> JobStatus | None:
        """What a worker holding the job should do, from one cheap read: PROCESSING to go on, CANCELLED
        if a cancel was requested, otherwise the status the job left PROCESSING for (None: gone)."""
        item = self._table.get({"id": job_id}, attributes=["status", "cancelRequestedAt"])
        if not item:
            return None
        status = JobStatus(str(item["status"]))
        if status is JobStatus.PROCESSING and item.get("cancelRequestedAt"):
            return JobStatus.CANCELLED
        return status

    def list_for_tenant(
        self,
        tenant: str,
        *,
        job_type: JobType | None = None,
        status: JobStatus | None = None,
        limit: int = 25,
        cursor: str | None = None,
    ) -> JobPage:
        """The tenant's jobs newest first, filtered, through the tenant index (never a Scan)."""
        filters = _job_filter(job_type, status, not_chunks=True)
        start_key: dict[str, Any] | None = _decode_cursor(cursor, tenant) if cursor else None
        jobs: list[Job] = []
        key = Expression("#tenant = :tenant", {"#tenant": "tenant"}, {":tenant": tenant})
        while True:
            page = self._table.query(
                key,
                index=TENANT_INDEX,
                filter_expression=filters,
                limit=limit - len(jobs) if filters is None else max(limit, 25),
                start_key=start_key,
                newest_first=True,
            )
            for position, item in enumerate(page.items):
                jobs.append(Job.model_validate(item))
                if len(jobs) == limit:
                    # Resume exactly after the last job returned, even mid-page.
                    more = page.last_key is not None or position < len(page.items) - 1
                    return JobPage(jobs, _encode_cursor(jobs[-1]) if more else None)
            start_key = page.last_key
            if not start_key:
                return JobPage(jobs, None)

    def list_active(self, status: JobStatus, *, heartbeat_before: str, limit: int = 100) -> list[Job]:
        """Non-terminal jobs in ``status`` whose heartbeat is older than the given time (sparse index)."""
        key = Expression(
            "activeStatus = :status AND heartbeatAt < :before",
            {},
            {":status": status.value, ":before": heartbeat_before},
        )
        return self._collect(key, ACTIVE_INDEX, None, limit)

    def list_active_for_tenant(
        self, tenant: str, status: JobStatus, *, heartbeat_before: str, limit: int = 100
    ) -> list[Job]:
        """The tenant's ``status`` jobs whose heartbeat is older than the given time (sparse index)."""
        key = Expression(
            "activeTenant = :tenant AND heartbeatAt < :before",
            {},
            {":tenant": tenant, ":before": heartbeat_before},
        )
        return self._collect(key, ACTIVE_BY_TENANT_INDEX, _job_filter(None, status), limit)

    def count_processing(self, tenant: str) -> int:
        """How many of the tenant's jobs are PROCESSING now (for the per-tenant concurrency cap)."""
        # A fanned-out import's parent holds no worker while its chunks run; the chunks count.
        return self._count_active(tenant, _job_filter(None, JobStatus.PROCESSING, not_fanned_out=True))

    def _count_active(self, tenant: str, filters: Expression | None, *, at_least: int | None = None) -> int:
        """How many of the tenant's active jobs match ``filters`` (counting stops at ``at_least``)."""
        key = Expression("activeTenant = :tenant", {}, {":tenant": tenant})
        count, start_key = 0, None
        while True:
            page = self._table.query(
                key,
                index=ACTIVE_BY_TENANT_INDEX,
                filter_expression=filters,
                start_key=start_key,
                count_only=True,
            )
            count += page.count
            start_key = page.last_key
            if not start_key or (at_least is not None and count >= at_least):
                return count

    def _collect(self, key: Expression, index: str, filters: Expression | None, limit: int) -> list[Job]:
        jobs: list[Job] = []
        start_key = None
        while len(jobs) < limit:
            page = self._table.query(
                key,
                index=index,
                filter_expression=filters,
                limit=None if filters else limit,
                start_key=start_key,
            )
            jobs.extend(Job.model_validate(item) for item in page.items)
            start_key = page.last_key
            if not start_key:
                break
        return jobs[:limit]

    # --- creation and claims -------------------------------------------------------------------------

    def create(self, job: Job) -> Job:
        """Store a new job; raise JobExists if its id is taken (a duplicate event created it first)."""
        item = job.model_dump(by_alias=True, mode="json", exclude_none=True)
        item["heartbeatAt"] = item.get("heartbeatAt", job.created_at)
        if job.status.is_terminal:
            item["expiresAt"] = self._expiry()
        else:
            item["activeStatus"] = job.status.value
            item["activeTenant"] = job.tenant
        if not self._table.put(item, condition=Expression("attribute_not_exists(id)", {}, {})):
            raise JobExists(f"job {job.id} exists already")
        created = Job.model_validate(item)
        self._publish(created, "created")
        return created

    def claim(self, job_id: str, *, new_attempt: bool = True) -> Job | None:
        """PENDING -> PROCESSING for one worker. Returns None when another worker (or a cancel) won.

        A continuation (the same attempt carrying on in a fresh invocation) does not count an attempt.
        """
        change = _Change(
            JobStatus.PROCESSING,
            sets={"errorMessage": None, "deferredAt": None},
            increment_attempts=new_attempt,
        )
        try:
            return self._apply(job_id, change)
        except (IllegalTransition, JobNotFound):
            return None

    # --- while a worker runs ---------------------------------------------------------------------------

    def pin_file_version(self, job_id: str, version_id: str) -> None:
        """Record the upload's version on a PROCESSING job, so every later read is of that version."""
        changed = self._table.update(
            {"id": job_id},
            update=Expression("SET #file.versionId = :version", {"#file": "file"}, {":version": version_id}),
            condition=_STILL_RUNNING,
        )
        if changed is None:
            raise JobNotProcessing(job_id, self.stop_signal(job_id))

    def record_progress(
        self,
        job_id: str,
        *,
        processed_rows: int,
        total_rows: int | None = None,
        checkpoint: dict[str, Any] | None = None,
    ) -> None:
        """Record progress and a heartbeat on a PROCESSING job; raise JobNotProcessing if it is not, or
        if a cancel was requested (its status then says CANCELLED)."""
        now = iso(utc_now())
        sets = ["processedRows = :processed", "updatedAt = :now", "heartbeatAt = :now"]
        values: dict[str, Any] = {":processed": processed_rows, ":now": now}
        if total_rows is not None:
            # 100 only once the job is COMPLETED: a running job is at most 99 % done.
            progress = min(99, processed_rows * 100 // max(total_rows, 1))
            sets += ["totalRows = :total", "progress = :progress"]
            values[":total"], values[":progress"] = total_rows, progress
        if checkpoint is not None:
            sets.append("checkpoint = :checkpoint")
            values[":checkpoint"] = checkpoint
        changed = self._table.update(
            {"id": job_id}, update=Expression("SET " + ", ".join(sets), {}, values), condition=_STILL_RUNNING
        )
        if changed is None:
            raise JobNotProcessing(job_id, self.stop_signal(job_id))
        if self._events is not None:
            self._publish(Job.model_validate(changed), "progress")

    def defer(self, job_id: str, *, high_priority: bool) -> None:
        """A PENDING job the tenant cap turned away: refresh its heartbeat (its message was re-sent);
        a high-priority one is marked, so the tenant's other jobs yield to it until it is claimed."""
        update = "SET heartbeatAt = :now" + (", deferredAt = :now" if high_priority else "")
        self._table.update(
            {"id": job_id},
            update=Expression(update, {}, {":now": iso(utc_now())}),
            condition=Expression("#status = :status", dict(_STATUS), {":status": JobStatus.PENDING.value}),
        )

    def high_priority_deferred(self, tenant: str) -> bool:
        """Whether a high-priority job of the tenant is waiting after the cap turned it away."""
        filters = Expression(
            "#status = :pending AND #priority = :high AND attribute_exists(deferredAt)",
            {**_STATUS, "#priority": "priority"},
            {":pending": JobStatus.PENDING.value, ":high": "high"},
        )
        return self._count_active(tenant, filters, at_least=1) > 0

    def touch(self, job_id: str, status: JobStatus) -> None:
        """Refresh the heartbeat of a job still in ``status`` (after re-sending its message)."""
        if status.is_terminal:
            raise ValueError("a terminal job is never touched")
        self._table.update(
            {"id": job_id},
            update=Expression("SET heartbeatAt = :now", {}, {":now": iso(utc_now())}),
            condition=Expression("#status = :status", dict(_STATUS), {":status": status.value}),
        )

    def fan_out(self, job_id: str, fanout: FanOut, checkpoint: dict[str, Any]) -> Job:
        """Record on a PROCESSING job that its work is split into chunks (their jobs come next)."""
        now = iso(utc_now())
        values: dict[str, Any] = {
            ":fanout": fanout.model_dump(by_alias=True, mode="json", exclude_none=True),
            ":checkpoint": checkpoint,
            ":now": now,
        }
        sets = "SET fanout = :fanout, checkpoint = :checkpoint, updatedAt = :now, heartbeatAt = :now"
        if fanout.total_rows is not None:
            sets += ", totalRows = :total"
            values[":total"] = fanout.total_rows
        changed = self._table.update(
            {"id": job_id},
            update=Expression(sets, {}, values),
            condition=_STILL_RUNNING,
        )
        if changed is None:
            raise JobNotProcessing(job_id, self.stop_signal(job_id))
        return Job.model_validate(changed)

    def record_chunk_progress(self, parent_id: str, index: int, *, processed: int, failed: int) -> Job | None:
        """Note a chunk's counts (as of its checkpoint) on its PROCESSING parent, which is alive while
        its chunks are: the parent as it is now, or None once it has left PROCESSING."""
        now = iso(utc_now())
        changed = self._table.update(
            {"id": parent_id},
            update=Expression(
                "SET fanout.#processed.#chunk = :processed, fanout.#failed.#chunk = :failed, "
                "updatedAt = :now, heartbeatAt = :now",
                {"#processed": "processed", "#failed": "failed", "#chunk": str(index)},
                {":processed": processed, ":failed": failed, ":now": now},
            ),
            condition=Expression("#status = :processing", dict(_STATUS), {":processing": "PROCESSING"}),
        )
        if changed is None:
            return None
        job = Job.model_validate(changed)
        if self._events is not None:
            self._publish(job, "progress")
        return job

    def hand_over(self, job_id: str) -> Job:
        """PROCESSING -> PENDING for a continuation: the same attempt carries on in a fresh invocation."""
        return self._apply(job_id, _Change(JobStatus.PENDING, allowed_from=_ONLY_PROCESSING))

    # --- endings ---------------------------------------------------------------------------------------

    def complete(self, job_id: str, outcome: JobOutcome) -> Job:
        """PROCESSING -> COMPLETED with what the worker made; IllegalTransition if it is no longer ours."""
        sets = {**_outcome_fields(outcome), "progress": 100, "checkpoint": None}
        return self._apply(job_id, _Change(JobStatus.COMPLETED, sets=sets))

    def fail(
        self,
        job_id: str,
        message: str,
        *,
        outcome: JobOutcome | None = None,
        last_error: str | None = None,
        tenant: str | None = None,
        allowed_from: frozenset[JobStatus] | None = None,
        expected_heartbeat: str | None = None,
        forget_checkpoint: bool = False,
    ) -> Job:
        """-> FAILED with a message a person can act on (and what was done before, if known); with
        ``forget_checkpoint``, a retry starts it again from the start."""
        sets: dict[str, Any] = {"errorMessage": message, **_outcome_fields(outcome)}
        if forget_checkpoint:
            sets["checkpoint"] = None
        if last_error is not None:
            sets["lastError"] = last_error
        change = _Change(
            JobStatus.FAILED,
            allowed_from=allowed_from,
            sets=sets,
            tenant=tenant,
            expected_heartbeat=expected_heartbeat,
        )
        return self._apply(job_id, change)

    def requeue(
        self, job_id: str, *, reason: str, message: str | None = None, expected_heartbeat: str | None = None
    ) -> Job:
        """PROCESSING -> PENDING to run again from the checkpoint (a transient failure, a stalled worker)."""
        sets: dict[str, Any] = {"lastError": reason}
        if message is not None:
            sets["errorMessage"] = message
        change = _Change(
            JobStatus.PENDING, allowed_from=_ONLY_PROCESSING, sets=sets, expected_heartbeat=expected_heartbeat
        )
        return self._apply(job_id, change)

    def cancel(self, job_id: str, *, tenant: str) -> Job:
        """Cancel the tenant's PENDING or PROCESSING job: a job no worker has started -> CANCELLED at
        once; any other gets a cancel request, and its worker ends it CANCELLED at its next batch."""
        untouched = _Change(JobStatus.CANCELLED, allowed_from=frozenset({JobStatus.PENDING}), tenant=tenant)
        try:
            return self._apply(job_id, untouched, extra_condition="attribute_not_exists(checkpoint)")
        except IllegalTransition:
            pass  # started before (a checkpoint), or PROCESSING: a worker must end it with its counts
        request = Expression(
            "SET cancelRequestedAt = if_not_exists(cancelRequestedAt, :now)", {}, {":now": iso(utc_now())}
        )
        names = {**_STATUS, "#tenant": "tenant"}
        values = {":tenant": tenant, ":pending": "PENDING", ":processing": "PROCESSING"}
        changed = self._table.update(
            {"id": job_id},
            update=request,
            condition=Expression("#status IN (:pending, :processing) AND #tenant = :tenant", names, values),
        )
        if changed is None:
            self._raise_refused(job_id, JobStatus.CANCELLED, tenant)
        job = Job.model_validate(changed)
        self._publish(job, "cancel_requested")
        self.cancel_chunks(job)
        return job

    def cancel_chunks(self, parent: Job) -> None:
        """Pass a fanned-out import's cancel on to its chunks: each not yet started is CANCELLED at
        once, each running one ends itself CANCELLED with its counts at its next batch."""
        if parent.fanout is None:
            return
        for chunk_id in parent.fanout.chunk_ids(parent.id):
            try:
                self.cancel(chunk_id, tenant=parent.tenant)
            except (IllegalTransition, JobNotFound):
                continue  # ended already, or not created yet (its parent's worker then cancels it)

    def end_cancelled(self, job_id: str, outcome: JobOutcome) -> Job:
        """A cancel-requested PROCESSING job -> CANCELLED with what its worker did, in one write."""
        change = _Change(JobStatus.CANCELLED, allowed_from=_ONLY_PROCESSING, cancel_requested=True)
        change.sets.update({**_outcome_fields(outcome), "checkpoint": None})
        return self._apply(job_id, change)

    def retry(self, job_id: str, *, tenant: str, max_attempts: int, resume_chunks: bool = False) -> Job:
        """The tenant's FAILED job -> PENDING, as a new attempt from its checkpoint (a fanned-out one
        marked resume-pending: ``resume_chunks``)."""
        change = _Change(
            JobStatus.PENDING,
            allowed_from=frozenset({JobStatus.FAILED}),
            sets={"errorMessage": None, "maxAttempts": max_attempts, "resumePending": resume_chunks or None},
            removes=("expiresAt", "completedAt", "cancelRequestedAt"),
            tenant=tenant,
        )
        return self._apply(job_id, change)

    def resumed(self, job_id: str) -> Job:
        """Clear a PROCESSING retried parent's resume-pending mark (its chunks are all on their way)."""
        changed = self._table.update(
            {"id": job_id},
            update=Expression(
                "REMOVE resumePending SET updatedAt = :now, heartbeatAt = :now", {}, {":now": iso(utc_now())}
            ),
            condition=Expression("#status = :processing", dict(_STATUS), {":processing": "PROCESSING"}),
        )
        if changed is None:
            self._raise_refused(job_id, JobStatus.PROCESSING, None)
        return Job.model_validate(changed)

    def resume_chunk(self, chunk: Job, *, checkpoint: dict[str, Any] | None) -> Job:
        """A FAILED or CANCELLED chunk of a retried parent -> PENDING, to carry on from ``checkpoint``
        (None: from its start) with at least one more attempt; IllegalTransition for any other job."""
        change = _Change(
            JobStatus.PENDING,
            allowed_from=frozenset({JobStatus.FAILED, JobStatus.CANCELLED}),
            sets={
                "checkpoint": checkpoint,
                "result": None,
                "errorMessage": None,
                "lastError": None,
                "maxAttempts": max(chunk.max_attempts, chunk.attempts + 1),
            },
            removes=("expiresAt", "completedAt", "cancelRequestedAt"),
            chunk_only=True,
        )
        return self._apply(chunk.id, change)

    # --- plumbing --------------------------------------------------------------------------------------

    def _apply(self, job_id: str, change: _Change, *, extra_condition: str | None = None) -> Job:
        """Move a job to ``change.target`` if its status allows it; otherwise raise, changing nothing."""
        target = change.target
        sources = (CHUNK_ALLOWED_SOURCES if change.chunk_only else ALLOWED_SOURCES)[target]
        if change.allowed_from is not None:
            sources = change.allowed_from & sources
        update = self._update_of(change)
        condition = _condition_of(sources, change)
        if extra_condition is not None:
            condition = replace(condition, text=f"{condition.text} AND {extra_condition}")
        changed = self._table.update({"id": job_id}, update=update, condition=condition)
        if changed is None:
            self._raise_refused(job_id, target, change.tenant)
        job = Job.model_validate(changed)
        self._publish(job, _CHANGE_BY_TARGET[target])
        return job

    def _raise_refused(self, job_id: str, target: JobStatus, tenant: str | None) -> NoReturn:
        """Say why a conditional change did not apply: the job is gone (or another tenant's), or its
        status does not allow it."""
        current = self.get(job_id)
        if current is None or (tenant is not None and current.tenant != tenant):
            raise JobNotFound(f"job {job_id} was not found")
        raise IllegalTransition(
            f"job {job_id} is {current.status.value} and cannot become {target.value}",
            details={"status": current.status.value},
        )

    def _update_of(self, change: _Change) -> Expression:
        target = change.target
        names: dict[str, str] = dict(_STATUS)
        values: dict[str, Any] = {":target": target.value, ":now": iso(utc_now())}
        sets = ["#status = :target", "updatedAt = :now", "heartbeatAt = :now"]
        removes = list(change.removes)
        if target.is_terminal:
            sets += ["completedAt = :now", "expiresAt = :expires"]
            values[":expires"] = self._expiry()
            removes += ["activeStatus", "activeTenant"]
        else:
            sets += ["activeStatus = :target", "activeTenant = tenant"]
        if target is JobStatus.PROCESSING:
            sets.append("startedAt = if_not_exists(startedAt, :now)")
        if change.increment_attempts:
            sets.append("attempts = if_not_exists(attempts, :zero) + :one")
            values[":zero"], values[":one"] = 0, 1
        for index, (name, value) in enumerate(change.sets.items()):
            names[f"#f{index}"] = name
            if value is None:
                removes.append(f"#f{index}")
            else:
                values[f":f{index}"] = value
                sets.append(f"#f{index} = :f{index}")
        text = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        return Expression(text, names, values)

    def _publish(self, job: Job, change: str) -> None:
        # A chunk job is its parent's business: subscribers see the parent's changes (its progress
        # included), never the chunks'.
        if self._events is not None and job.chunk is None:
            self._events.publish(job.id, change, _event_detail(job))

    def _expiry(self) -> int:
        return int((utc_now() + self._retention).timestamp())


def _event_detail(job: Job) -> dict[str, Any]:
    """What a `Job State Change` event says about the job."""
    return {
        "jobId": job.id,
        "type": job.type.value,
        "tenant": job.tenant,
        "dataset": job.dataset,
        "status": job.status.value,
        "progress": job.progress,
        "processedRows": job.processed_rows,
        "totalRows": job.total_rows,
        "priority": job.priority.value,
        "attempts": job.attempts,
        "errorMessage": job.error_message,
        "updatedAt": job.updated_at,
    }


def _condition_of(sources: frozenset[JobStatus], change: _Change) -> Expression:
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    tokens = []
    for index, source in enumerate(sorted(sources)):
        values[f":s{index}"] = source.value
        tokens.append(f":s{index}")
    text = f"attribute_exists(id) AND #status IN ({', '.join(tokens)})"
    if change.tenant is not None:
        names["#tenant"] = "tenant"
        values[":tenant"] = change.tenant
        text += " AND #tenant = :tenant"
    if change.cancel_requested:
        text += " AND attribute_exists(cancelRequestedAt)"
    if change.chunk_only:
        text += " AND attribute_exists(chunk)"
    if change.expected_heartbeat is not None:
        # Only if no worker has shown a sign of life since the caller looked (the sweeper's guard).
        values[":heartbeat"] = change.expected_heartbeat
        text += " AND heartbeatAt = :heartbeat"
    return Expression(text, names, values)


def _outcome_fields(outcome: JobOutcome | None) -> dict[str, Any]:
    """The job attributes an outcome sets (only what the worker knows)."""
    if outcome is None:
        return {}
    fields: dict[str, Any] = {}
    if outcome.result is not None:
        fields["result"] = outcome.result
    if outcome.processed_rows is not None:
        fields["processedRows"] = outcome.processed_rows
    if outcome.total_rows is not None:
        fields["totalRows"] = outcome.total_rows
    if outcome.error_report is not None:
        fields["errorReport"] = outcome.error_report.model_dump(by_alias=True, exclude_none=True)
    if outcome.file is not None:
        fields["file"] = outcome.file.model_dump(by_alias=True, exclude_none=True)
    return fields


def _job_filter(
    job_type: JobType | None,
    status: JobStatus | None,
    *,
    not_chunks: bool = False,
    not_fanned_out: bool = False,
) -> Expression | None:
    parts, names, values = [], {}, {}
    if not_chunks:
        parts.append("attribute_not_exists(chunk)")
    if not_fanned_out:
        parts.append("attribute_not_exists(fanout)")
    if job_type is not None:
        parts.append("#type = :type")
        names["#type"], values[":type"] = "type", job_type.value
    if status is not None:
        parts.append("#status = :status")
        names["#status"], values[":status"] = "status", status.value
    return Expression(" AND ".join(parts), names, values) if parts else None


def _encode_cursor(job: Job) -> str:
    raw = json.dumps({"id": job.id, "tenant": job.tenant}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, tenant: str) -> dict[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest("the cursor is not one this API returned") from None
    if not isinstance(key, dict) or set(key) != {"id", "tenant"} or key["tenant"] != tenant:
        raise BadRequest("the cursor is not one this API returned")
    if not all(isinstance(v, str) for v in key.values()):
        raise BadRequest("the cursor is not one this API returned")
    return {"id": key["id"], "tenant": key["tenant"]}
