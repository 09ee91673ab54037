"""Jobs: the record, the state machine and the DynamoDB store."""

from impex.jobs.model import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    FileRef,
    Job,
    JobStatus,
    JobType,
    Priority,
    can_transition,
)

__all__ = [
    "ACTIVE_STATUSES",
    "TERMINAL_STATUSES",
    "FileRef",
    "Job",
    "JobStatus",
    "JobType",
    "Priority",
    "can_transition",
]
