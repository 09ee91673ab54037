"""One large import, many workers: the splitting pass, the chunk jobs, and the parent's ending.

A text import (CSV, TSV, JSON Lines; plain or gzip) at least ``threshold_bytes`` long is split by one
streaming pass of impex's own reader, so row numbers stay exact through quoted newlines. Each row
goes to the chunk its key hashes to: every occurrence of a key lands in one chunk, in file order,
so the first occurrence in the file wins exactly as it does for one worker (rows with no readable
key, which are row errors anyway, and the rows of a keyless dataset go by row number). Chunks are
written as gzip JSON Lines segments under ``chunks/`` (expired by lifecycle) and run as chunk jobs:
ordinary import jobs with their own claims, checkpoints, continuations, retries, sweeps and dead
letters, never listed or shown. Each notes its counts on the parent at every checkpoint (the
parent's progress and the shared error tolerance); the chunk that ends last ends the parent, with
the counts summed and the chunks' row errors merged into one report in row order.
"""

from __future__ import annotations

import csv
import heapq
import io
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from impex.aws.files import FilesBucket, chunk_key, error_part_key
from impex.aws.queues import JobMessage, PriorityQueues
from impex.datasets.mapping import RowConverter
from impex.datasets.records import RecordLayout
from impex.errors import ImpexError, JobExists
from impex.formats.chunks import ChunkEncoder, chunk_rows
from impex.formats.columns import SourceRow
from impex.formats.errors import FileProblem
from impex.formats.jsonlines import bad_line_reason
from impex.formats.source import Source
from impex.jobs.model import ChunkRef, FanOut, FileRef, Job, JobOutcome, JobStatus
from impex.jobs.store import JobNotProcessing, JobStore
from impex.observability import logger, metrics
from impex.pipelines.common import CatchUp, Deadline, Stopped
from impex.pipelines.error_report import ErrorReport, report_header
from impex.pipelines.import_batches import FIRST_ERRORS, ImportProgress, tolerance_message

_COUNTS = ("processed", "created", "updated", "skipped", "failed", "written")
_SPLIT = "split"  # the checkpoint's entry for the splitting pass
_CHECK_EVERY_ROWS = 256  # how often the split looks at the clock
# How long the chunks' files are kept (the template's ExpireImportChunks rule): a failed import can be
# retried until then.
CHUNK_RETENTION_DAYS = 2


@dataclass(frozen=True)
class FanOutLimits:
    """When an import fans out, and over how many chunks (each is one worker at a time)."""

    threshold_bytes: int
    workers: int
    segment_bytes: int = 8 * 1024 * 1024

    def applies(self, job: Job, size: int) -> bool:
        """Whether this job's file is split: a text import, large enough, and fan-out allowed."""
        return (
            self.workers > 1
            and job.chunk is None
            and not job.format.spreadsheet
            and size >= self.threshold_bytes
        )


# For whatever only ends fanned-out imports (the sweeper): it never splits one.
NO_SPLITTING = FanOutLimits(threshold_bytes=2**63, workers=1)


@dataclass
class SplitState:
    """How far the splitting pass got: each chunk's segments written and rows routed."""

    segments: list[int]
    rows: list[int]

    @classmethod
    def from_checkpoint(cls, checkpoint: dict[str, Any] | None, chunks: int) -> SplitState:
        """The state an earlier invocation saved, or a fresh one."""
        saved = (checkpoint or {}).get(_SPLIT)
        if saved:
            return cls(segments=list(saved["segments"]), rows=list(saved["rows"]))
        return cls(segments=[0] * chunks, rows=[0] * chunks)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able, for the checkpoint."""
        return {"segments": self.segments, "rows": self.rows}


def chunk_of(parent: Job, chunk_id: str, ref: ChunkRef, **changes: Any) -> Job:
    """A new chunk job of ``parent``: its options, priority and tenant, and a fresh start."""
    fresh: dict[str, Any] = {
        "id": chunk_id,
        "status": JobStatus.PENDING,
        "fanout": None,
        "chunk": ref,
        "checkpoint": None,
        "attempts": 0,
        "processed_rows": 0,
        "total_rows": None,
        "progress": 0,
        "heartbeat_at": None,
        "started_at": None,
        "error_message": None,
        "last_error": None,
        "cancel_requested_at": None,
    }
    return parent.model_copy(update={**fresh, **changes})


def row_router(layout: RecordLayout, converter: RowConverter, chunks: int) -> Callable[[SourceRow], int]:
    """The chunk of each row: by its key's hash, or by row number when it has no key to read."""
    keys = list(layout.dataset.keys)
    if not keys:
        return lambda row: (row.number // 1000) % chunks
    read_keys = converter.key_reader(keys)

    def route(row: SourceRow) -> int:
        values = read_keys(row.cells) if bad_line_reason(row.cells) is None else None
        if values is None:
            return row.number % chunks  # a row error whichever chunk has it
        identity = layout.identity(values, "", row.number)
        return zlib.crc32(identity.encode()) % chunks

    return route


class ChunkedJobs(ABC):
    """What every fanned-out job shares: its chunk jobs stop together, and the last to end ends the
    parent (how it is ended, and how chunks are made, is the import's or the export's own)."""

    def __init__(self, *, jobs: JobStore, files: FilesBucket, queues: PriorityQueues) -> None:
        self.jobs = jobs
        self.files = files
        self.queues = queues

    @abstractmethod
    def start_chunks(self, parent: Job) -> None:
        """Create the parent's chunk jobs that do not exist yet, and send each new one to its queue."""

    @abstractmethod
    def _end_parent(self, parent: Job, chunks: list[Job]) -> None:
        """End the parent, every chunk having ended."""

    def settle(self, parent_id: str) -> None:
        """After a chunk ended (or the sweeper looked): stop the others if one failed or the parent was
        cancelled, and end the parent once every chunk has ended. Safe to call any number of times."""
        parent = self.jobs.get(parent_id)
        if parent is None or parent.fanout is None or parent.status is not JobStatus.PROCESSING:
            return
        if parent.resume_pending:
            return  # a retry is putting its chunks back on their way: its worker settles after that
        found = self._chunks_of(parent, parent.fanout)
        if found is None:
            self.start_chunks(parent)  # the parent's worker stopped before creating them all
            return
        running = [chunk for chunk in found if not chunk.status.is_terminal]
        if not running:
            self._end_parent(parent, found)
        elif parent.cancel_requested_at or any(chunk.status is JobStatus.FAILED for chunk in found):
            for chunk in running:
                self._cancel(chunk)  # each ends CANCELLED with its exact counts

    def resume(self, parent: Job) -> bool:
        """Carry on a retried parent (claimed again): every chunk that failed, or was stopped by another's
        failure, runs again from where it stopped; completed chunks stay as they are. False when the
        files the chunks need have expired (the parent is then FAILED again, saying so).

        Safe to run again over a resume that stopped half-way (the sweeper does, for a worker that
        died in one): chunks already PENDING are sent again, and a chunk's message is only ever
        claimed once.
        """
        assert parent.fanout is not None
        chunks = [self.jobs.get(chunk_id) for chunk_id in parent.fanout.chunk_ids(parent.id)]
        found = [chunk for chunk in chunks if chunk is not None]
        again = [chunk for chunk in found if chunk.status in (JobStatus.FAILED, JobStatus.CANCELLED)]
        missing = self._missing_files(parent, found, again)
        if missing is not None:
            self._fail_retry(parent, f"{missing}; create the job again")
            return False
        # Every chunk is PENDING (or done) before any runs, and the parent stays resume-pending until
        # then: a chunk that ended at once must not find another still stopped and end the parent.
        waiting = [chunk for chunk in found if chunk.status is JobStatus.PENDING]
        for chunk in again:
            try:
                waiting.append(self.jobs.resume_chunk(chunk, checkpoint=self._resume_point(chunk)))
            except ImpexError as error:
                logger.info("could not resume the chunk", extra={"reason": str(error)})
        if len(found) < len(chunks):
            self.start_chunks(parent)  # the parent's worker stopped before creating them all
        for chunk in waiting:
            self.queues.send(JobMessage(chunk.id, parent.tenant), priority=parent.priority.value)
        try:
            self.jobs.resumed(parent.id)
        except ImpexError as error:  # ended meanwhile (a cancel is still PROCESSING until its chunks stop)
            logger.info("the retried job was ended while it resumed", extra={"reason": str(error)})
            return True
        logger.info("fanned-out job resumed", extra={"chunks": len(waiting)})
        self._after_creating_chunks(parent)
        self.settle(parent.id)  # every chunk had completed already: end it now
        return True

    def _fail_retry(self, parent: Job, message: str) -> None:
        try:
            # No outcome: the counts and report of the run that failed stay as they were.
            self.jobs.fail(parent.id, message)
        except ImpexError as error:
            logger.info("could not fail the retried job", extra={"reason": str(error)})

    @abstractmethod
    def _missing_files(self, parent: Job, chunks: list[Job], again: list[Job]) -> str | None:
        """What a resume of ``again`` (and the ending of ``chunks``) needs that is gone, if anything."""

    @abstractmethod
    def _resume_point(self, chunk: Job) -> dict[str, Any] | None:
        """Where a resumed chunk carries on: a checkpoint, or None for its start."""

    @staticmethod
    def _failed_chunks(parent: Job, chunks: list[Job]) -> list[Job]:
        """The ended chunks that fail their parent: those that failed; if none did and no cancel was
        asked for, any that was stopped (a retry's resume that never finished, from before resumes
        were marked): completing the parent would lose that chunk's rows."""
        failed = [chunk for chunk in chunks if chunk.status is JobStatus.FAILED]
        if failed or parent.cancel_requested_at:
            return failed
        return [chunk for chunk in chunks if chunk.status is JobStatus.CANCELLED]

    def cancel_chunks(self, parent: Job) -> None:
        """Pass a cancel of the parent on to its chunks (each ends itself with its exact counts)."""
        self.jobs.cancel_chunks(parent)
        self.settle(parent.id)

    def note_progress(self, chunk: Job, *, processed: int, failed: int = 0) -> tuple[int, int]:
        """Note a chunk's checkpointed counts on its parent; the other chunks' processed and failed
        rows. Stopped(CANCELLED) once the parent has ended."""
        ref = chunk.chunk
        assert ref is not None
        parent = self.jobs.record_chunk_progress(ref.parent_id, ref.index, processed=processed, failed=failed)
        if parent is None or parent.fanout is None:
            self._cancel(chunk)
            raise Stopped(JobStatus.CANCELLED)
        return parent.fanout.others_than(chunk)

    def _create_chunk(self, chunk: Job, parent: Job, queues: PriorityQueues) -> None:
        try:
            self.jobs.create(chunk)
        except JobExists:
            return  # created by an earlier attempt (its message was sent then)
        queues.send(JobMessage(chunk.id, parent.tenant), priority=parent.priority.value)

    def _after_creating_chunks(self, parent: Job) -> None:
        current = self.jobs.get(parent.id)
        if current is not None and current.cancel_requested_at:  # cancelled while the chunks were made
            self.cancel_chunks(current)

    def _chunks_of(self, parent: Job, fanout: FanOut) -> list[Job] | None:
        """The parent's chunk jobs (read consistently), or None while some do not exist yet."""
        chunks = [self.jobs.get(chunk_id) for chunk_id in fanout.chunk_ids(parent.id)]
        found = [chunk for chunk in chunks if chunk is not None]
        return found if len(found) == len(chunks) else None

    def _cancel(self, chunk: Job) -> None:
        try:
            self.jobs.cancel(chunk.id, tenant=chunk.tenant)
        except ImpexError as error:
            logger.info("could not cancel the chunk", extra={"reason": str(error)})


class FanOutImports(ChunkedJobs):
    """Splits large imports, starts their chunk jobs, and ends the parent when its chunks have ended."""

    def __init__(
        self, *, jobs: JobStore, files: FilesBucket, queues: PriorityQueues, limits: FanOutLimits
    ) -> None:
        super().__init__(jobs=jobs, files=files, queues=queues)
        self.limits = limits

    # ---- the splitting pass (the parent's worker) ----------------------------------------------------

    def chunk_count(self, job: Job) -> int:
        """How many chunks the job's split makes: as many as it began with, if it has begun (the
        setting may have changed since), else FanOutWorkers."""
        return len(SplitState.from_checkpoint(job.checkpoint, self.limits.workers).rows)

    def split(
        self,
        job: Job,
        progress: ImportProgress,
        source: Source,
        route: Callable[[SourceRow], int],
        *,
        deadline: Deadline,
        max_rows: int,
        progress_every_seconds: float,
    ) -> bool:
        """Split the file into chunks and start their jobs: True once fanned out, False when the time
        ran out first (the split's checkpoint is saved, and the caller hands over to a continuation)."""
        state = SplitState.from_checkpoint(job.checkpoint, self.limits.workers)
        chunks = len(state.rows)
        encoders = [ChunkEncoder(self.limits.segment_bytes) for _ in range(chunks)]
        last_check = time.monotonic()
        routed, seen = sum(state.rows), 0
        catching_up = CatchUp(deadline, source.resumable, progress.last_row)
        for row in source.rows(after_row=progress.last_row):
            catching_up.reached(row.number)
            if row.cells:
                if routed >= max_rows:
                    raise FileProblem(f"the file has more than {max_rows:,} rows, the limit")
                chunk = route(row)
                segment = encoders[chunk].add(row)
                if segment is not None:
                    self._put_segment(job, chunk, state, segment)
                state.rows[chunk] += 1
                routed += 1
            progress.last_row = max(progress.last_row, row.number)
            progress.offset = row.end_offset if source.resumable else None
            seen += 1
            if seen % _CHECK_EVERY_ROWS:
                continue
            if deadline.near():
                catching_up.check()
                self._save_split(job, progress, source, encoders, state)
                return False
            # A heartbeat (and a look for a cancel) at most once a second: the split writes nothing else.
            if time.monotonic() - last_check >= max(progress_every_seconds, 1.0):
                last_check = time.monotonic()
                self._heartbeat(job)
        for chunk, encoder in enumerate(encoders):
            segment = encoder.finish()
            if segment is not None:
                self._put_segment(job, chunk, state, segment)
        progress.note_unknown_keys(*source.take_unknown_keys())
        checkpoint = {**progress.as_checkpoint(), _SPLIT: state.as_dict()}
        try:
            parent = self.jobs.fan_out(job.id, FanOut(chunks=chunks, total_rows=routed), checkpoint)
        except JobNotProcessing as gone:
            raise Stopped(gone.status) from None
        logger.info(
            "import fanned out", extra={"chunks": chunks, "rows": routed, "rows_by_chunk": state.rows}
        )
        metrics.add_metric(name="ImportsFannedOut", unit="Count", value=1)
        self.start_chunks(parent)
        return True

    def _put_segment(self, job: Job, chunk: int, state: SplitState, data: bytes) -> None:
        key = chunk_key(job.tenant, job.id, chunk, state.segments[chunk])
        self.files.put_bytes(key, data, content_type="application/gzip")
        state.segments[chunk] += 1

    def _save_split(
        self,
        job: Job,
        progress: ImportProgress,
        source: Source,
        encoders: list[ChunkEncoder],
        state: SplitState,
    ) -> None:
        """Close every chunk's open segment and checkpoint the split, so a continuation carries on."""
        for chunk, encoder in enumerate(encoders):
            segment = encoder.finish()
            if segment is not None:
                self._put_segment(job, chunk, state, segment)
        progress.note_unknown_keys(*source.take_unknown_keys())
        try:
            self.jobs.record_progress(
                job.id, processed_rows=0, checkpoint={**progress.as_checkpoint(), _SPLIT: state.as_dict()}
            )
        except JobNotProcessing as gone:
            raise Stopped(gone.status) from None

    def _heartbeat(self, job: Job) -> None:
        """Show the split is alive, and stop it if the job was cancelled meanwhile."""
        status = self.jobs.stop_signal(job.id)
        if status is not JobStatus.PROCESSING:
            raise Stopped(status)
        self.jobs.touch(job.id, JobStatus.PROCESSING)

    # ---- chunk jobs -------------------------------------------------------------------------------

    def start_chunks(self, parent: Job) -> None:
        """Create the parent's chunk jobs that do not exist yet, and send each new one to the queue."""
        assert parent.fanout is not None
        state = SplitState.from_checkpoint(parent.checkpoint, parent.fanout.chunks)
        for index, chunk_id in enumerate(parent.fanout.chunk_ids(parent.id)):
            ref = ChunkRef(
                parent_id=parent.id, index=index, segments=state.segments[index], rows=state.rows[index]
            )
            chunk = chunk_of(parent, chunk_id, ref, total_rows=state.rows[index])
            self._create_chunk(chunk, parent, self.queues)
        self._after_creating_chunks(parent)

    def chunk_source(self, chunk: Job, header: list[str]) -> Source:
        """A chunk's rows as a Source (re-read from its first segment: gzip cannot be entered mid-way)."""
        ref = chunk.chunk
        assert ref is not None
        keys = [chunk_key(chunk.tenant, ref.parent_id, ref.index, n) for n in range(ref.segments)]

        def rows() -> Iterator[SourceRow]:
            return chunk_rows(self.files.open(key) for key in keys)

        return Source(
            header, rows, resumable=False, total_rows=ref.rows, fraction=lambda: 0.0, resources=ExitStack()
        )

    def _missing_files(self, parent: Job, chunks: list[Job], again: list[Job]) -> str | None:
        for chunk in again:
            ref = chunk.chunk
            assert ref is not None
            for segment in range(ref.segments):
                if self.files.find(chunk_key(parent.tenant, parent.id, ref.index, segment)) is None:
                    return (
                        f"the split file's chunk {ref.index + 1} has expired (split files are kept "
                        f"for {CHUNK_RETENTION_DAYS} days)"
                    )
        for chunk in chunks:
            for part in range(_progress_of(chunk).error_parts):
                if self.files.find(error_part_key(chunk.tenant, chunk.id, part)) is None:
                    return "the row errors of an earlier run have expired"
        return None

    def _resume_point(self, chunk: Job) -> dict[str, Any] | None:
        # A chunk's ending result is its progress then (a checkpoint, and a later one than its last);
        # one the sweeper failed has only its checkpoint. Rows after it are done again, as in a retry.
        return chunk.result or chunk.checkpoint

    def _end_parent(self, parent: Job, chunks: list[Job]) -> None:
        totals = _Totals.of(parent, chunks)
        report = self._merge_reports(parent, chunks, totals.header)
        result = totals.progress.result(parent.import_options, totals.progress.mapping).as_dict()
        outcome = JobOutcome(result=result, processed_rows=totals.progress.processed, error_report=report)
        failed = self._failed_chunks(parent, chunks)
        try:
            if failed:
                self.jobs.fail(
                    parent.id, totals.failure_message(parent, failed, len(chunks)), outcome=outcome
                )
                metrics.add_metric(name="ImportsFailed", unit="Count", value=1)
            elif any(chunk.status is JobStatus.CANCELLED for chunk in chunks) and parent.cancel_requested_at:
                self.jobs.end_cancelled(parent.id, outcome)
            else:
                completed = JobOutcome(
                    result=result,
                    processed_rows=totals.progress.processed,
                    total_rows=totals.progress.processed,
                    error_report=report,
                )
                self.jobs.complete(parent.id, completed)
                metrics.add_metric(name="ImportsCompleted", unit="Count", value=1)
                metrics.add_metric(name="RowsImported", unit="Count", value=totals.progress.written)
        except ImpexError as error:  # another chunk's worker ended it first
            logger.info("the fanned-out import was ended already", extra={"reason": str(error)})
            return
        if not failed:  # a failed import keeps its chunks' files for a retry (lifecycle expires them)
            self._clean_up(parent, chunks)

    def _merge_reports(self, parent: Job, chunks: list[Job], header: list[str]) -> FileRef | None:
        """The chunks' row-error parts merged into one report in row order (as one worker writes it)."""
        parts = [(chunk, _progress_of(chunk).error_parts) for chunk in chunks]
        if not any(count for _, count in parts):
            return None
        buffer = io.StringIO()
        buffer.write(report_header(header))
        writer = csv.writer(buffer)
        streams = [self._error_rows(chunk, count) for chunk, count in parts if count]
        for record in heapq.merge(*streams, key=lambda fields: int(fields[0])):
            writer.writerow(record)
        return ErrorReport(self.files, parent).store(buffer.getvalue().encode("utf-8"))

    def _error_rows(self, chunk: Job, parts: int) -> Iterator[list[str]]:
        for part in range(parts):
            data = self.files.read_bytes(error_part_key(chunk.tenant, chunk.id, part))
            yield from csv.reader(io.StringIO(data.decode("utf-8"), newline=""))

    def _clean_up(self, parent: Job, chunks: list[Job]) -> None:
        """Delete the chunks' segments and error parts (lifecycle rules catch what this misses)."""
        keys: list[str] = []
        for chunk in chunks:
            ref = chunk.chunk
            assert ref is not None
            keys += [chunk_key(parent.tenant, parent.id, ref.index, n) for n in range(ref.segments)]
            keys += [
                error_part_key(chunk.tenant, chunk.id, n) for n in range(_progress_of(chunk).error_parts)
            ]
        try:
            for start in range(0, len(keys), 1000):
                self.files.delete(keys[start : start + 1000])
        except Exception:
            logger.exception("could not delete a fanned-out import's chunk files")


def _progress_of(chunk: Job) -> ImportProgress:
    """What a chunk counted: its ending's counts, or (failed by the sweeper) its last checkpoint's."""
    return ImportProgress.from_checkpoint(chunk.result if chunk.result else chunk.checkpoint)


@dataclass
class _Totals:
    """The parent's counts: the chunks' summed, the split's header, mapping and unknown keys."""

    progress: ImportProgress
    header: list[str]
    uncounted: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, parent: Job, chunks: list[Job]) -> _Totals:
        split = ImportProgress.from_checkpoint(parent.checkpoint)
        total = ImportProgress(
            header=split.header,
            mapping=split.mapping,
            unknown_columns=split.unknown_columns,
            unknown_keys=split.unknown_keys,
            unknown_key_sample=split.unknown_key_sample,
        )
        errors: list[dict[str, Any]] = []
        uncounted = []
        for chunk in chunks:
            counted = _progress_of(chunk)
            for name in _COUNTS:
                setattr(total, name, getattr(total, name) + getattr(counted, name))
            errors += counted.first_errors
            if chunk.status is JobStatus.FAILED and not chunk.result:
                uncounted.append(f"row {counted.last_row}")
        # Stable: a row's several issues keep their order.
        total.first_errors = sorted(errors, key=lambda error: int(error["row"]))[:FIRST_ERRORS]
        return cls(total, split.header or [], uncounted)

    def failure_message(self, parent: Job, failed: list[Job], chunks: int) -> str:
        """Why the parent failed: the shared tolerance, or the first failed chunk's reason."""
        progress = self.progress
        exceeded = tolerance_message(
            parent.import_options, progress.failed, progress.processed, progress.written
        )
        if exceeded is not None:
            return exceeded
        written = f"{progress.written} rows were written before it stopped"
        first = failed[0]
        assert first.chunk is not None
        reason = first.error_message or "it was stopped before it ended; retry the job"
        message = f"chunk {first.chunk.index + 1} of {chunks} failed: {reason}; {written}"
        if self.uncounted:
            message += (
                "; a chunk that stopped without ending counts only up to its last checkpoint "
                f"({', '.join(self.uncounted)}): rows it wrote after that are not counted"
            )
        return message
