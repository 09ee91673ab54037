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
