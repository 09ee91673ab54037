"""The sweeper: finds jobs whose heartbeat went quiet, through the sparse active-jobs index."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from impex.aws import clients
from impex.clock import iso, utc_now
from impex.jobs.model import JobStatus
from impex.jobs.store import JobStore
from impex.observability import logger
from impex.settings import SweeperSettings

STALE_AFTER = timedelta(minutes=5)


@dataclass
class SweepReport:
    """What one sweep found."""

    stale: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, list[str]]:
        """JSON-able summary, returned by the handler."""
        return dict(self.stale)


class Sweeper:
    """Looks for PENDING and PROCESSING jobs whose heartbeat is older than a threshold."""

    def __init__(self, jobs: JobStore) -> None:
        self._jobs = jobs

    def sweep(self, now: datetime | str | None = None) -> SweepReport:
        """One pass over the active-jobs index."""
        moment = utc_now() if now is None else now if isinstance(now, datetime) else _parse(now)
        cutoff = iso(moment - STALE_AFTER)
        report = SweepReport()
        for status in (JobStatus.PENDING, JobStatus.PROCESSING):
            stale = self._jobs.list_active(status, heartbeat_before=cutoff)
            report.stale[status.value] = [job.id for job in stale]
            for job in stale:
                logger.warning("job heartbeat is stale", extra={"job_id": job.id, "status": status.value})
        return report


def _parse(text: str) -> datetime:
    from impex.clock import parse_iso

    return parse_iso(text)


def build_sweeper(settings: SweeperSettings) -> Sweeper:
    """The sweeper, wired to AWS from the function's settings."""
    jobs = JobStore(clients.dynamodb().Table(settings.jobs_table), retention_days=settings.job_retention_days)
    return Sweeper(jobs)
