"""Job state changes published to EventBridge, so apps can subscribe instead of polling."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from impex.jobs.model import Job

SOURCE = "impex"
DETAIL_TYPE = "Job State Change"


class JobEvents:
    """Publishes one `Job State Change` event per change; a failure to publish never fails a job."""

    def __init__(self, client: Any, bus_name: str, *, progress_every_seconds: float = 5.0) -> None:
        self._client = client
        self.bus_name = bus_name
        self._every = progress_every_seconds
        self._last_progress: dict[str, float] = {}

    def publish(self, job: Job, change: str) -> None:
        """change: created, started, progress, requeued, completed, failed or cancelled."""
        if change == "progress":
            now = time.monotonic()
            if now - self._last_progress.get(job.id, 0.0) < self._every:
                return
            self._last_progress[job.id] = now
        detail = {
            "change": change,
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
        try:
            response = self._client.put_events(
                Entries=[
                    {
                        "Source": SOURCE,
                        "DetailType": DETAIL_TYPE,
                        "EventBusName": self.bus_name,
                        "Detail": json.dumps(detail, default=str),
                        "Resources": [],
                    }
                ]
            )
            failed = response.get("FailedEntryCount", 0)
        except Exception as error:  # events are a side channel
            failed, reason = 1, str(error)
        else:
            reason = "rejected by EventBridge"
        if failed:
            from impex.observability import logger

            logger.warning("could not publish a job event", extra={"job_id": job.id, "reason": reason})
