"""Job state changes published to EventBridge, so apps can subscribe instead of polling."""

from __future__ import annotations

import json
import time
from typing import Any

from impex.observability import logger

SOURCE = "impex"
DETAIL_TYPE = "Job State Change"


class JobEvents:
    """Publishes one `Job State Change` event per change; a failure to publish never fails a job."""

    def __init__(self, client: Any, bus_name: str, *, progress_every_seconds: float = 5.0) -> None:
        self._client = client
        self.bus_name = bus_name
        self._every = progress_every_seconds
        self._last_progress: dict[str, float] = {}

    def publish(self, job_id: str, change: str, detail: dict[str, Any]) -> None:
        """change: created, started, progress (at most every few seconds a job), requeued, completed,
        failed or cancelled; ``detail`` is the event's detail besides the change."""
        if change == "progress":
            now = time.monotonic()
            if now - self._last_progress.get(job_id, 0.0) < self._every:
                return
            self._last_progress[job_id] = now
        try:
            response = self._client.put_events(
                Entries=[
                    {
                        "Source": SOURCE,
                        "DetailType": DETAIL_TYPE,
                        "EventBusName": self.bus_name,
                        "Detail": json.dumps({"change": change, **detail}, default=str),
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
            logger.warning("could not publish a job event", extra={"job_id": job_id, "reason": reason})
