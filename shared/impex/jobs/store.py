"""The jobs table: every status change is one conditional UpdateItem built from the state machine."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Attr, ConditionBase, Key
from botocore.exceptions import ClientError

from impex.clock import iso, utc_now
from impex.errors import BadRequest, IllegalTransition, JobNotFound
from impex.jobs.model import ALLOWED_SOURCES, Job, JobStatus, JobType

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

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


def to_plain(value: Any) -> Any:
    """Turn what the DynamoDB resource layer returns (Decimal, sets) into plain JSON-able Python."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [to_plain(v) for v in value]
    return value


def to_dynamo(value: Any) -> Any:
    """Turn plain Python into what the DynamoDB resource layer accepts (floats become Decimals)."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [to_dynamo(v) for v in value]
    return value


class JobStore:
    """Reads and writes job records. Safe for any number of concurrent workers."""

    def __init__(self, table: Table, *, retention_days: int, events: JobEvents | None = None) -> None:
        self._table = table
        self._retention = timedelta(days=retention_days)
        self._events = events

    def _publish(self, job: Job, change: str) -> None:
        if self._events is not None:
            self._events.publish(job, change)

    # --- reads -------------------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        """The job with this id, or None."""
        item = self._table.get_item(Key={"id": job_id}, ConsistentRead=True).get("Item")
        return Job.model_validate(to_plain(item)) if item else None

    def get_for_tenant(self, tenant: str, job_id: str, job_type: JobType | None = None) -> Job:
        """The tenant's job; another tenant's job, or a type mismatch, is reported as not found."""
        job = self.get(job_id)
        if job is None or job.tenant != tenant or (job_type is not None and job.type != job_type):
            raise JobNotFound(f"job {job_id} was not found")
        return job

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
        filters: ConditionBase | None = None
        if job_type is not None:
            filters = Attr("type").eq(job_type.value)
        if status is not None:
            by_status = Attr("status").eq(status.value)
            filters = by_status if filters is None else filters & by_status
        start_key: dict[str, Any] | None = _decode_cursor(cursor, tenant) if cursor else None
        jobs: list[Job] = []
        while True:
            kwargs: dict[str, Any] = {
                "IndexName": TENANT_INDEX,
                "KeyConditionExpression": Key("tenant").eq(tenant),
                "ScanIndexForward": False,
                "Limit": limit - len(jobs) if filters is None else max(limit, 25),
            }
            if filters is not None:
                kwargs["FilterExpression"] = filters
            if start_key:
                kwargs["ExclusiveStartKey"] = start_key
            page = self._table.query(**kwargs)
            for item in page.get("Items", []):
                jobs.append(Job.model_validate(to_plain(item)))
                if len(jobs) == limit:
                    # Resume exactly after the last job returned, even mid-page.
                    last = jobs[-1]
                    more = bool(page.get("LastEvaluatedKey")) or item is not page["Items"][-1]
                    return JobPage(jobs, _encode_cursor(last) if more else None)
            start_key = page.get("LastEvaluatedKey")
            if not start_key:
                return JobPage(jobs, None)

    def list_active(self, status: JobStatus, *, heartbeat_before: str, limit: int = 100) -> list[Job]:
        """Non-terminal jobs in ``status`` whose heartbeat is older than the given time (sparse index)."""
        jobs: list[Job] = []
        kwargs: dict[str, Any] = {
            "IndexName": ACTIVE_INDEX,
            "KeyConditionExpression": Key("activeStatus").eq(status.value)
            & Key("heartbeatAt").lt(heartbeat_before),
            "Limit": limit,
        }
        while len(jobs) < limit:
            page = self._table.query(**kwargs)
            jobs.extend(Job.model_validate(to_plain(item)) for item in page.get("Items", []))
            if not page.get("LastEvaluatedKey"):
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return jobs[:limit]

    # --- writes ------------------------------------------------------------------------------------

    def create(self, job: Job) -> Job:
        """Store a new job; its id must not exist yet."""
        item = to_dynamo(job.model_dump(by_alias=True, mode="json", exclude_none=True))
        item["heartbeatAt"] = item.get("heartbeatAt", job.created_at)
        if job.status.is_terminal:
            item["expiresAt"] = self._expiry()
        else:
            item["activeStatus"] = job.status.value
            item["activeTenant"] = job.tenant
        self._table.put_item(Item=item, ConditionExpression=Attr("id").not_exists())
        created = Job.model_validate(to_plain(item))
        self._publish(created, "created")
        return created

    def transition(
        self,
        job_id: str,
        target: JobStatus,
        *,
        tenant: str | None = None,
        allowed_from: frozenset[JobStatus] | None = None,
        set_fields: dict[str, Any] | None = None,
        remove_fields: tuple[str, ...] = (),
        increment_attempts: bool = False,
        expected_heartbeat: str | None = None,
    ) -> Job:
        """Move a job to ``target`` if its current status allows it; otherwise raise and change nothing."""
        sources = ALLOWED_SOURCES[target] if allowed_from is None else allowed_from & ALLOWED_SOURCES[target]
        now = iso(utc_now())
        names: dict[str, str] = {"#status": "status"}
        values: dict[str, Any] = {":target": target.value, ":now": now}
        sets = ["#status = :target", "updatedAt = :now", "heartbeatAt = :now"]
        removes = list(remove_fields)
        if target.is_terminal:
            sets += ["completedAt = :now", "expiresAt = :expires"]
            values[":expires"] = self._expiry()
            removes += ["activeStatus", "activeTenant"]
        else:
            sets += ["activeStatus = :target", "activeTenant = tenant"]
        if target is JobStatus.PROCESSING:
            sets.append("startedAt = if_not_exists(startedAt, :now)")
        if increment_attempts:
            sets.append("attempts = if_not_exists(attempts, :zero) + :one")
            values[":zero"], values[":one"] = 0, 1
        for index, (field, value) in enumerate((set_fields or {}).items()):
            names[f"#f{index}"] = field
            if value is None:
                removes.append(f"#f{index}")
            else:
                values[f":f{index}"] = to_dynamo(value)
                sets.append(f"#f{index} = :f{index}")
        source_tokens = []
        for index, source in enumerate(sorted(sources)):
            values[f":s{index}"] = source.value
            source_tokens.append(f":s{index}")
        condition = f"attribute_exists(id) AND #status IN ({', '.join(source_tokens)})"
        if tenant is not None:
            names["#tenant"] = "tenant"
            values[":tenant"] = tenant
            condition += " AND #tenant = :tenant"
        if expected_heartbeat is not None:
            # Only if no worker has shown a sign of life since the caller looked (the sweeper's guard).
            values[":heartbeat"] = expected_heartbeat
            condition += " AND heartbeatAt = :heartbeat"
        expression = "SET " + ", ".join(sets)
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        try:
            response = self._table.update_item(
                Key={"id": job_id},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            current = self.get(job_id)
            if current is None or (tenant is not None and current.tenant != tenant):
                raise JobNotFound(f"job {job_id} was not found") from None
            raise IllegalTransition(
                f"job {job_id} is {current.status.value} and cannot become {target.value}",
                details={"status": current.status.value},
            ) from None
        changed = Job.model_validate(to_plain(response["Attributes"]))
        self._publish(changed, _CHANGE_BY_TARGET[target])
        return changed

    def claim(self, job_id: str, *, new_attempt: bool = True) -> Job | None:
        """PENDING -> PROCESSING for one worker. Returns None when another worker (or a cancel) won.

        A continuation (the same attempt carrying on in a fresh invocation) does not count an attempt.
        """
        try:
            return self.transition(
                job_id,
                JobStatus.PROCESSING,
                set_fields={"errorMessage": None},
                increment_attempts=new_attempt,
            )
        except (IllegalTransition, JobNotFound):
            return None

    def update_progress(
        self,
        job_id: str,
        *,
        processed_rows: int,
        total_rows: int | None = None,
        checkpoint: dict[str, Any] | None = None,
    ) -> None:
        """Record progress and a heartbeat on a PROCESSING job; raise JobNotProcessing if it is not."""
        now = iso(utc_now())
        sets = ["processedRows = :processed", "updatedAt = :now", "heartbeatAt = :now"]
        values: dict[str, Any] = {":processed": processed_rows, ":now": now, ":processing": "PROCESSING"}
        if total_rows is not None:
            progress = 100 if total_rows == 0 else min(99, processed_rows * 100 // max(total_rows, 1))
            sets += ["totalRows = :total", "progress = :progress"]
            values[":total"], values[":progress"] = total_rows, progress
        if checkpoint is not None:
            sets.append("checkpoint = :checkpoint")
            values[":checkpoint"] = to_dynamo(checkpoint)
        try:
            response = self._table.update_item(
                Key={"id": job_id},
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression="#status = :processing",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            current = self.get(job_id)
            raise JobNotProcessing(job_id, current.status if current else None) from None
        if self._events is not None:
            self._publish(Job.model_validate(to_plain(response["Attributes"])), "progress")

    def list_active_for_tenant(
        self, tenant: str, status: JobStatus, *, heartbeat_before: str, limit: int = 100
    ) -> list[Job]:
        """The tenant's ``status`` jobs whose heartbeat is older than the given time (sparse index)."""
        jobs: list[Job] = []
        kwargs: dict[str, Any] = {
            "IndexName": ACTIVE_BY_TENANT_INDEX,
            "KeyConditionExpression": Key("activeTenant").eq(tenant)
            & Key("heartbeatAt").lt(heartbeat_before),
            "FilterExpression": Attr("status").eq(status.value),
        }
        while len(jobs) < limit:
            page = self._table.query(**kwargs)
            jobs.extend(Job.model_validate(to_plain(item)) for item in page.get("Items", []))
            if not page.get("LastEvaluatedKey"):
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return jobs[:limit]

    def count_processing(self, tenant: str) -> int:
        """How many of the tenant's jobs are PROCESSING now (for the per-tenant concurrency cap)."""
        count = 0
        kwargs: dict[str, Any] = {
            "IndexName": ACTIVE_BY_TENANT_INDEX,
            "KeyConditionExpression": Key("activeTenant").eq(tenant),
            "FilterExpression": Attr("status").eq(JobStatus.PROCESSING.value),
            "Select": "COUNT",
        }
        while True:
            page = self._table.query(**kwargs)
            count += int(page.get("Count", 0))
            if not page.get("LastEvaluatedKey"):
                return count
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def touch(self, job_id: str, status: JobStatus) -> None:
        """Refresh the heartbeat of a job still in ``status`` (after re-sending its message)."""
        try:
            self._table.update_item(
                Key={"id": job_id},
                UpdateExpression="SET heartbeatAt = :now",
                ConditionExpression="#status = :status",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":now": iso(utc_now()), ":status": status.value},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def current_status(self, job_id: str) -> JobStatus | None:
        """Just the status (a cheap strongly consistent read): workers check it for a cancel."""
        item = self._table.get_item(
            Key={"id": job_id},
            ProjectionExpression="#status",
            ExpressionAttributeNames={"#status": "status"},
            ConsistentRead=True,
        ).get("Item")
        return JobStatus(str(item["status"])) if item else None

    def annotate_ended(self, job_id: str, status: JobStatus, fields: dict[str, Any]) -> None:
        """Add what a worker knows (result, error report) to a job that already ended as ``status``.

        Used when a cancel lands while a worker is running: the status stays as the cancel left it.
        """
        names = {"#status": "status"}
        values: dict[str, Any] = {":status": status.value, ":now": iso(utc_now())}
        sets = ["updatedAt = :now"]
        for index, (field, value) in enumerate(fields.items()):
            names[f"#f{index}"] = field
            values[f":f{index}"] = to_dynamo(value)
            sets.append(f"#f{index} = :f{index}")
        try:
            self._table.update_item(
                Key={"id": job_id},
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression="#status = :status",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def _expiry(self) -> int:
        return int((utc_now() + self._retention).timestamp())


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
