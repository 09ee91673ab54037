"""What the import and export pipelines share: stopping, deadlines and retries with backoff."""

from __future__ import annotations

import gc
import random
import threading
import time
from enum import StrEnum
from types import TracebackType
from typing import Protocol

from impex.aws.queues import JobMessage, JobQueue
from impex.errors import ImpexError
from impex.formats.errors import FileProblem
from impex.jobs.model import Job, JobStatus
from impex.jobs.store import JobStore
from impex.observability import logger

MAX_RETRY_DELAY_SECONDS = 900  # SQS's longest message delay


class RemainingTime(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


class RunOutcome(StrEnum):
    """How one invocation's run of a job ended."""

    COMPLETED = "completed"
    CONTINUED = "continued"  # handed over to a fresh invocation before the time ran out
    STOPPED = "stopped"  # the job left PROCESSING meanwhile (a cancel, or the sweeper took it back)
    FAILED = "failed"
    RETRYING = "retrying"  # a transient failure: requeued from the checkpoint after a backoff
    FANNED_OUT = "fanned_out"  # split into chunk jobs, which carry on in parallel


class Stopped(Exception):
    """The job left PROCESSING while we worked (a cancel, or the sweeper took it back)."""

    def __init__(self, status: JobStatus | None) -> None:
        super().__init__(f"job is {status}")
        self.status = status


class Deadline:
    """When to hand over: the reserve is a minute, or a quarter of the invocation for short timeouts."""

    def __init__(self, context: RemainingTime | None, reserve_seconds: float) -> None:
        self._context = context
        total = context.get_remaining_time_in_millis() / 1000 if context else 0
        self._reserve_ms = 1000 * min(reserve_seconds, total / 4)
        self.working_seconds = max(total - self._reserve_ms / 1000, 0.0)  # the time before the reserve

    def near(self) -> bool:
        """True once the remaining time is inside the reserve, or gone (an invocation that started with
        no time left has no reserve, and must still hand over rather than run on past its timeout)."""
        if self._context is None:
            return False
        remaining = self._context.get_remaining_time_in_millis()
        return remaining < self._reserve_ms or remaining <= 0


class CatchUp:
    """How long an invocation took to get back to where the last one stopped, for a file it reads
    again from its start (gzip, UTF-16, a chunk's segments: no byte offset to resume from). One that
    spent over half its working time doing so would leave the next less, and a file of blank lines
    none at all: its continuations would re-read the same lines for ever. Such a file fails instead,
    saying what to do."""

    def __init__(self, deadline: Deadline, resumable: bool, resume_row: int) -> None:
        self._deadline = deadline
        self._started = time.monotonic()
        self._resume_row = resume_row
        self._caught_up_at: float | None = self._started if resumable or resume_row == 0 else None

    def reached(self, row_number: int) -> None:
        """Note the row (or mark) the reader is at."""
        if self._caught_up_at is None and row_number > self._resume_row:
            self._caught_up_at = time.monotonic()

    def check(self) -> None:
        """At the deadline: FileProblem when getting back took over half the invocation's working time."""
        spent = (self._caught_up_at or time.monotonic()) - self._started
        working = self._deadline.working_seconds
        if spent > working / 2:
            where = "got back" if self._caught_up_at is not None else "had not got back"
            raise FileProblem(
                f"the file cannot be imported in parts: each invocation reads it again from its start "
                f"(it is gzip-compressed or not UTF-8), and this one {where} to row {self._resume_row:,} "
                f"after {spent:.1f} s of its {working:.1f} s; upload it uncompressed (as UTF-8), or split "
                "it into smaller files"
            )


class BulkAllocations:
    """Garbage collection tuned for a job that allocates millions of short-lived dicts and lists.

    With the default thresholds CPython collects every 700 new containers, and every so often walks
    every object in the process (boto3 and the rest, loaded at cold start) though almost nothing a
    job allocates lives in a reference cycle. While any job runs, what existed before it is frozen
    out of collections and the youngest generation is collected less often; the last job to finish
    puts both back. Jobs may run concurrently in one process (the local runtime), hence the count.
    """

    YOUNGEST_THRESHOLD = 50_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._saved: tuple[int, int, int] | None = None

    def __enter__(self) -> None:
        with self._lock:
            self._running += 1
            if self._running == 1:
                self._saved = gc.get_threshold()
                gc.freeze()
                gc.set_threshold(self.YOUNGEST_THRESHOLD, *self._saved[1:])

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        with self._lock:
            self._running -= 1
            if self._running == 0 and self._saved is not None:
                gc.set_threshold(*self._saved)
                gc.unfreeze()
                self._saved = None


bulk_allocations = BulkAllocations()


def retry_delay(attempts: int, base_seconds: float) -> int:
    """Exponential backoff with jitter, capped at SQS's 15-minute delay."""
    return min(MAX_RETRY_DELAY_SECONDS, int(base_seconds * 2**attempts * random.uniform(0.5, 1.5)))  # noqa: S311


def requeue_after_failure(
    jobs: JobStore, queue: JobQueue, job: Job, error: Exception, *, base_seconds: float
) -> bool:
    """A transient failure: back to PENDING with a delayed message, keeping the checkpoint.

    Returns False when the job has used up its attempts (the caller then fails it) or is no longer
    ours to retry (cancelled or taken over meanwhile).
    """
    reason = f"{type(error).__name__}: {error}"[:500]
    if job.attempts >= job.max_attempts:
        return False
    delay = retry_delay(job.attempts, base_seconds)
    try:
        jobs.requeue(
            job.id, reason=reason, message=f"attempt {job.attempts} failed ({reason}); retrying in {delay}s"
        )
    except ImpexError:
        return True  # cancelled or requeued by someone else: nothing more to do here
    queue.send(JobMessage(job.id, job.tenant), delay_seconds=delay)
    logger.info("job requeued after a transient failure", extra={"delay_seconds": delay, "reason": reason})
    return True


def failure_message(job: Job, error: Exception) -> str:
    """The message of a job that failed on its last attempt."""
    return f"failed after {job.attempts} attempts; last error: {type(error).__name__}: {error}"[:1000]
