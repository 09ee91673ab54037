"""Fairness between tenants: a cap on each tenant's PROCESSING jobs.

A job over the cap is not claimed: its message goes back on its queue with a delay, so one tenant's
thousand queued exports cannot take every worker. A high-priority job turned away is marked, and
until it is claimed the tenant's other jobs leave the slots that free up to it. Two workers
checking at the same instant may let a tenant run one job over the cap; the cap is a brake, not a
lock.
"""

from __future__ import annotations

import random

from impex.aws.queues import JobMessage, PriorityQueues
from impex.jobs.model import Job, Priority
from impex.jobs.store import JobStore
from impex.observability import logger

DEFER_SECONDS = 30


class TenantCap:
    """Admits a job when its tenant has fewer than ``limit`` jobs PROCESSING; defers it otherwise."""

    def __init__(self, jobs: JobStore, queues: PriorityQueues, limit: int) -> None:
        self._jobs = jobs
        self._queues = queues
        self.limit = limit

    def admit(self, job: Job, *, continuation: bool = False) -> bool:
        """True to go ahead; False when the job was deferred (its message re-sent with a delay)."""
        running = self._jobs.count_processing(job.tenant)
        if running < self.limit and not self._yields(job):
            return True
        message = JobMessage(job.id, job.tenant, continuation=continuation)
        delay = DEFER_SECONDS + random.randint(0, DEFER_SECONDS)  # noqa: S311 - jitter
        self._queues.send(message, priority=job.priority.value, delay_seconds=delay)
        self._jobs.defer(job.id, high_priority=job.priority is Priority.HIGH)
        logger.info(
            "tenant at its concurrency cap (or a high-priority job of its waits); job deferred",
            extra={"job_id": job.id, "running": running, "cap": self.limit, "delay_seconds": delay},
        )
        return False

    def _yields(self, job: Job) -> bool:
        """A job below high priority leaves a free slot to the tenant's high-priority jobs the cap
        turned away: otherwise, with many workers, the backlog's next normal job would take it."""
        return job.priority is not Priority.HIGH and self._jobs.high_priority_deferred(job.tenant)
