"""Job messages on SQS: a message names a job; the job record holds everything else."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient


class JobQueue:
    """Puts job messages on one SQS queue."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self.url = queue_url

    def send(self, message: dict[str, Any], *, delay_seconds: int = 0) -> None:
        """Send one JSON message."""
        self._client.send_message(
            QueueUrl=self.url,
            MessageBody=json.dumps(message, separators=(",", ":")),
            DelaySeconds=delay_seconds,
        )


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

    def send(self, message: dict[str, Any], *, priority: str, delay_seconds: int = 0) -> None:
        """Send a job message to the queue of its priority."""
        self.for_priority(priority).send(message, delay_seconds=delay_seconds)
