"""Job messages on SQS: a message names a job; the job record holds everything else."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from impex.errors import BadRequest

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient


@dataclass(frozen=True)
class JobMessage:
    """The one message impex puts on its queues: a job (exports, commits, retries, continuations)."""

    job_id: str
    tenant: str
    continuation: bool = False

    def body(self) -> str:
        """The message body: {"jobId", "tenant"} and, for a continuation, "continuation": true."""
        payload: dict[str, Any] = {"jobId": self.job_id, "tenant": self.tenant}
        if self.continuation:
            payload["continuation"] = True
        return json.dumps(payload, separators=(",", ":"))

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> JobMessage:
        """Parse a decoded body; a malformed one raises BadRequest (it will land in the DLQ)."""
        job_id, tenant = payload.get("jobId"), payload.get("tenant")
        if not isinstance(job_id, str) or not isinstance(tenant, str):
            raise BadRequest(f"not a job message: {json.dumps(payload)[:200]!r}")
        return cls(job_id=job_id, tenant=tenant, continuation=payload.get("continuation") is True)


class JobQueue:
    """Puts job messages on one SQS queue."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self.url = queue_url

    def send(self, message: JobMessage, *, delay_seconds: int = 0) -> None:
        """Send one job message, optionally delayed (at most 15 minutes)."""
        self._client.send_message(QueueUrl=self.url, MessageBody=message.body(), DelaySeconds=delay_seconds)


class PriorityQueues:
    """One queue per priority; high-priority work never waits behind a backlog of normal work."""

    def __init__(self, client: SQSClient, *, high: str, normal: str, low: str) -> None:
        self._queues = {
            "high": JobQueue(client, high),
            "normal": JobQueue(client, normal),
            "low": JobQueue(client, low),
        }

    def for_priority(self, priority: str) -> JobQueue:
        """The queue for ``priority`` (high, normal or low)."""
        return self._queues.get(priority, self._queues["normal"])

    def send(self, message: JobMessage, *, priority: str, delay_seconds: int = 0) -> None:
        """Send a job message to the queue of its priority."""
        self.for_priority(priority).send(message, delay_seconds=delay_seconds)


class DeadLetters:
    """Reads and deletes the messages of a dead-letter queue."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self.url = queue_url

    def receive(self) -> list[tuple[str, str]]:
        """Up to 10 messages as (body, receipt handle)."""
        messages = self._client.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", [])
        return [(m["Body"], m["ReceiptHandle"]) for m in messages]

    def delete(self, receipt_handle: str) -> None:
        """Remove a handled message."""
        self._client.delete_message(QueueUrl=self.url, ReceiptHandle=receipt_handle)
