"""The job record, its five statuses and the transitions between them. This is the one place they live."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from impex.formats.file_format import FileFormat
from impex.jobs.options import ExportJobOptions, ImportOptions

# A tenant name becomes part of S3 keys and index keys, so it is held to a safe alphabet.
# Matched with fullmatch: "$" alone would accept a trailing newline ("acme\n").
TENANT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}")


class JobType(StrEnum):
    IMPORT = "import"
    EXPORT = "export"


class JobStatus(StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        """True for statuses a worker never moves out of on its own."""
        return self in TERMINAL_STATUSES


class Priority(StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
ACTIVE_STATUSES = frozenset({JobStatus.PENDING, JobStatus.PROCESSING})

# target status -> the statuses it may be reached from. Every conditional write is built from this table.
ALLOWED_SOURCES: dict[JobStatus, frozenset[JobStatus]] = {
    # a claim, or a requeue from a checkpoint (the sweeper) / a retry of a failed job
    JobStatus.PROCESSING: frozenset({JobStatus.PENDING}),
    JobStatus.PENDING: frozenset({JobStatus.PROCESSING, JobStatus.FAILED}),
    JobStatus.COMPLETED: frozenset({JobStatus.PROCESSING}),
    JobStatus.FAILED: frozenset({JobStatus.PENDING, JobStatus.PROCESSING}),
    JobStatus.CANCELLED: frozenset({JobStatus.PENDING, JobStatus.PROCESSING}),
}
# A chunk of a fanned-out job (never shown) may also go back from CANCELLED to PENDING: a retry of
# its FAILED parent resumes the chunks that another chunk's failure stopped.
CHUNK_ALLOWED_SOURCES: dict[JobStatus, frozenset[JobStatus]] = {
    **ALLOWED_SOURCES,
    JobStatus.PENDING: ALLOWED_SOURCES[JobStatus.PENDING] | {JobStatus.CANCELLED},
}


def can_transition(current: JobStatus, target: JobStatus) -> bool:
    """Whether the state machine allows moving a job from ``current`` to ``target``."""
    return current in ALLOWED_SOURCES[target]


class _CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class FileRef(_CamelModel):
    """An object in the files bucket that belongs to a job (the upload, an export, an error report)."""

    bucket: str
    key: str
    name: str
    size: int | None = None
    content_type: str | None = None
    # The object version (in the versioned bucket) the job's first read saw; every later read, and
    # the commit of a dry run, is of exactly that version.
    version_id: str | None = None


class ChunkRef(_CamelModel):
    """What makes a job one chunk of a fanned-out import: its parent, its place and its rows."""

    parent_id: str
    index: int
    # An import's chunk: its segment objects and rows. An export's: how many chunks share the
    # dataset's partitions (chunk i reads every partition whose number is i modulo that).
    segments: int = 0
    rows: int = 0
    of: int = 1


class FanOut(_CamelModel):
    """A fanned-out import's chunks and what each has counted at its last checkpoint."""

    chunks: int
    total_rows: int | None = None  # an import's, known once split; an export's is known at its end
    # chunk index (as text) -> the chunk's processed and failed rows at its last checkpoint
    processed: dict[str, int] = Field(default_factory=dict)
    failed: dict[str, int] = Field(default_factory=dict)

    def others_than(self, chunk: Job) -> tuple[int, int]:
        """The processed and failed rows of every chunk but this one, as of their last checkpoints."""
        own = str(chunk.chunk.index) if chunk.chunk is not None else None
        processed = sum(count for index, count in self.processed.items() if index != own)
        failed = sum(count for index, count in self.failed.items() if index != own)
        return processed, failed

    def chunk_ids(self, parent_id: str) -> list[str]:
        """The ids of the parent's chunk jobs."""
        return [chunk_job_id(parent_id, index) for index in range(self.chunks)]


def chunk_job_id(parent_id: str, index: int) -> str:
    """The id of a fanned-out import's chunk job (the parent's id, then the chunk's number)."""
    return f"{parent_id}-{index:03d}"


class Job(_CamelModel):
    """A job record as stored in the jobs table (camelCase attribute names)."""

    id: str
    type: JobType
    tenant: str
    dataset: str
    format: FileFormat
    options: ImportOptions | ExportJobOptions = Field(default_factory=ImportOptions)
    priority: Priority = Priority.NORMAL

    status: JobStatus = JobStatus.PENDING
    progress: int = 0
    total_rows: int | None = None
    processed_rows: int = 0
    error_message: str | None = None
    result: dict[str, Any] | None = None

    file: FileRef | None = None
    error_report: FileRef | None = None
    attempts: int = 0
    max_attempts: int = 3
    heartbeat_at: str | None = None
    checkpoint: dict[str, Any] | None = None
    last_error: str | None = None
    # Set by a cancel of a job a worker may hold; the worker ends it CANCELLED with what it did.
    cancel_requested_at: str | None = None
    # A fanned-out import (the parent) and its chunks (the children, never listed or shown).
    fanout: FanOut | None = None
    chunk: ChunkRef | None = None
    # A retried fanned-out job whose chunks are still being put back on their way: set by the retry,
    # removed once every chunk that stopped is PENDING again and sent. Until then nothing ends the
    # job from its chunks' states (some are PENDING, others still stopped), and if the worker
    # resuming it dies the sweeper finishes the resume.
    resume_pending: bool | None = None

    created_at: str
    updated_at: str
    started_at: str | None = None
    completed_at: str | None = None
    expires_at: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _options_of_its_type(cls, data: Any) -> Any:
        """Stored options are parsed as the options of the job's type."""
        if isinstance(data, dict) and isinstance(data.get("options"), dict):
            model = ExportJobOptions if str(data.get("type")) == JobType.EXPORT.value else ImportOptions
            data = {**data, "options": model.model_validate(data["options"])}
        return data

    @model_validator(mode="after")
    def _progress_of_its_chunks(self) -> Job:
        """A running fanned-out import has done what its chunks have (each as of its checkpoint)."""
        if self.fanout is not None and not self.status.is_terminal:
            self.processed_rows = sum(self.fanout.processed.values())
            if self.fanout.total_rows is not None:
                self.total_rows = self.fanout.total_rows
                self.progress = min(99, self.processed_rows * 100 // max(self.fanout.total_rows, 1))
        return self

    @property
    def import_options(self) -> ImportOptions:
        """The options of an import job."""
        if not isinstance(self.options, ImportOptions):
            raise TypeError(f"job {self.id} is not an import")
        return self.options

    @property
    def export_options(self) -> ExportJobOptions:
        """The options of an export job."""
        if not isinstance(self.options, ExportJobOptions):
            raise TypeError(f"job {self.id} is not an export")
        return self.options


@dataclass(frozen=True)
class JobOutcome:
    """What a worker knows when a job ends (or a cancel ends it): its result, counts and files."""

    result: dict[str, Any] | None = None
    processed_rows: int | None = None
    total_rows: int | None = None
    error_report: FileRef | None = None
    file: FileRef | None = None
