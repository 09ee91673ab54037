"""The import pipeline: stream a file, map and validate its rows, write them to DynamoDB in batches.

Per-row work (parsing, conversion) happens in impex.formats and impex.datasets; the per-batch work
(duplicate checks, the existence read, the writes) in import_batches. This module runs one job:
its progress, cancel checks, checkpoints, continuations and how it ends.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path

from impex.aws.files import FilesBucket
from impex.aws.queues import JobMessage, PriorityQueues
from impex.aws.records import RecordTable
from impex.datasets.mapping import ColumnMapping, RowConverter, map_columns
from impex.datasets.records import RecordLayout
from impex.datasets.store import DatasetStore
from impex.errors import DatasetNotFound, IllegalTransition, ImpexError, InvalidInput
from impex.formats.columns import SourceRow
from impex.formats.errors import FileProblem
from impex.formats.source import HEAD_BYTES, ReadOptions, Source, SourceSpec, open_source
from impex.formats.xlsx import ArchiveLimits
from impex.jobs.model import Job, JobOutcome, JobStatus
from impex.jobs.options import ImportOptions
from impex.jobs.store import JobNotProcessing, JobStore
from impex.observability import logger, metrics
from impex.pipelines.common import (
    CatchUp,
    Deadline,
    RemainingTime,
    RunOutcome,
    Stopped,
    bulk_allocations,
    failure_message,
    requeue_after_failure,
)
from impex.pipelines.error_report import ErrorReport, ErrorRows
from impex.pipelines.fanout import FanOutImports, row_router
from impex.pipelines.import_batches import BatchWriter, ImportProgress, tolerance_message
from impex.pipelines.workers import job_duration
from impex.settings import ExternalTable

RecordTables = Callable[[str], RecordTable]
# How a chunk's run can end for good (a continuation or a retry carries on later).
_CHUNK_ENDINGS = frozenset({RunOutcome.COMPLETED, RunOutcome.FAILED, RunOutcome.STOPPED})


@dataclass(frozen=True)
class RowSplit:
    """What routing rows to chunks needs: the record layout (keys) and the row converter."""

    layout: RecordLayout
    converter: RowConverter


@dataclass(frozen=True)
class ImportLimits:
    """Limits on what one import may be, and how it paces itself."""

    max_file_bytes: int
    max_columns: int = 1000
    max_rows: int = 10_000_000
    max_cell_chars: int = 32_767
    batch_rows: int = 1000
    # The most batches whose existence reads and writes run at once (BatchDepth starts at 3 and grows
    # while the worker waits on them): at ~6 ms a request one batch's I/O takes about as long as
    # converting the next, so with one in flight a worker waits half the time.
    batches_in_flight: int = 6
    # The fast path (ColumnarConverter); off, every row is converted the exact way.
    columnar_conversion: bool = True
    continuation_reserve_seconds: float = 60.0
    retry_base_seconds: float = 5.0
    progress_every_seconds: float = 2.0
    archive: ArchiveLimits = field(default_factory=ArchiveLimits)


class TooManyErrors(ImpexError):
    """More rows failed than the job's maxErrors / maxErrorRate allow."""

    code = "too_many_errors"


@dataclass
class _Run:
    """One invocation's run of a job: what it reads, what it has done, and where the errors go."""

    job: Job
    options: ImportOptions
    progress: ImportProgress
    report: ErrorReport
    errors: ErrorRows
    source: Source
    mapping: ColumnMapping
    writer: BatchWriter
    # For a chunk of a fanned-out import: the other chunks' processed and failed rows, as of their
    # last checkpoints (the error tolerance is the whole file's).
    others: tuple[int, int] = (0, 0)
    # The (decompressed) byte after the last row processed, when the reader knows it: progress
    # estimates use it rather than the bytes read ahead.
    position: int | None = None


class ImportPipeline:
    """Runs claimed import jobs."""

    def __init__(
        self,
        *,
        jobs: JobStore,
        datasets: DatasetStore,
        files: FilesBucket,
        records: RecordTables,
        queues: PriorityQueues,
        limits: ImportLimits,
        records_table: str,
        external_tables: dict[str, ExternalTable],
        tmp_dir: Path | None = None,
        fanout: FanOutImports | None = None,
    ) -> None:
        self.jobs = jobs
        self.datasets = datasets
        self.files = files
        self._records = records
        self.queues = queues
        self.limits = limits
        self._records_table = records_table
        self._external = external_tables
        self._tmp = tmp_dir or Path(tempfile.gettempdir())
        self.fanout = fanout

    def run(self, job: Job, context: RemainingTime | None = None) -> RunOutcome:
        """Run one claimed (PROCESSING) job until it ends, hands over to a continuation, or stops."""
        outcome = self._run_job(job, context)
        if job.chunk is not None and self.fanout is not None and outcome in _CHUNK_ENDINGS:
            self.fanout.settle(job.chunk.parent_id)  # the last chunk to end ends its parent
        return outcome

    def _run_job(self, job: Job, context: RemainingTime | None) -> RunOutcome:
        logger.append_keys(job_id=job.id, tenant=job.tenant)
        if job.fanout is not None and self.fanout is not None:
            # A retried fanned-out import: its chunks carry on (a cancel since is passed on to them).
            return RunOutcome.FANNED_OUT if self.fanout.resume(job) else RunOutcome.FAILED
        started = time.monotonic()
        progress = ImportProgress.from_checkpoint(job.checkpoint)
        if job.cancel_requested_at is not None:
            # Cancelled between invocations (a continuation, a requeue): end it from the checkpoint.
            self._after_stop(job, progress, JobStatus.CANCELLED)
            return RunOutcome.STOPPED
        try:
            with bulk_allocations:
                outcome = self._run(job, progress, context)
        except Stopped as stopped:
            self._after_stop(job, progress, stopped.status)
            return RunOutcome.STOPPED
        except TooManyErrors as problem:
            self._fail(job, progress, problem.message)  # it already says what was written
            return RunOutcome.FAILED
        except (FileProblem, InvalidInput, DatasetNotFound) as problem:
            self._fail(job, progress, problem.message + _written_before_stopping(progress))
            return RunOutcome.FAILED
        except Exception as error:
            return self._retry_or_fail(job, error)
        if outcome is RunOutcome.COMPLETED and job.chunk is None:
            metrics.add_metric(name="ImportSeconds", unit="Seconds", value=time.monotonic() - started)
        return outcome

    # ---- the run -------------------------------------------------------------------------------

    def _run(self, job: Job, progress: ImportProgress, context: RemainingTime | None) -> RunOutcome:
        options = job.import_options
        dataset = self.datasets.get(job.tenant, job.dataset)
        layout = RecordLayout.for_dataset(
            dataset, records_table=self._records_table, external_tables=self._external
        )
        parent = self._parent_of(job)
        with ExitStack() as cleanup:
            source, size = self._open_chunk(job, parent) if parent else self._open(job, options, progress)
            cleanup.callback(source.close)
            header = progress.header if progress.header is not None else source.header
            if len(header) > self.limits.max_columns:
                raise FileProblem(
                    f"the file has {len(header)} columns; the limit is {self.limits.max_columns}"
                )
            mapping = map_columns(header, dataset, options.mapping)
            if progress.header is None:
                progress.header = header
                progress.unknown_columns = mapping.unknown_columns
            converter = RowConverter(
                dataset,
                header,
                mapping,
                day_first=options.day_first,
                max_cell_chars=self.limits.max_cell_chars,
            )
            progress.mapping = mapping.used
            deadline = Deadline(context, self.limits.continuation_reserve_seconds)
            if self._fans_out(job, progress, size):
                return self._split(job, progress, source, RowSplit(layout, converter), deadline)
            table = self._records(layout.table_name)
            cleanup.callback(table.close)
            errors = ErrorRows(self._tmp)
            cleanup.callback(errors.close)
            # A chunk writes as its parent: the records carry the parent's id, as one worker's would.
            writer = BatchWriter(
                parent or job,
                options,
                layout,
                table,
                progress,
                errors,
                batches_in_flight=self.limits.batches_in_flight,
                columnar=self.limits.columnar_conversion,
            )
            cleanup.callback(writer.close)
            run = _Run(job, options, progress, ErrorReport(self.files, job), errors, source, mapping, writer)
            if parent is not None and parent.fanout is not None:
                run.others = parent.fanout.others_than(job)
            return self._import_rows(run, converter, deadline)

    # ---- fanned-out imports ----------------------------------------------------------------------

    def _parent_of(self, chunk: Job) -> Job | None:
        """A chunk's parent (the job it imports for); Stopped if the parent no longer runs."""
        if chunk.chunk is None:
            return None
        parent = self.jobs.get(chunk.chunk.parent_id)
        if parent is None or parent.status is not JobStatus.PROCESSING or parent.fanout is None:
            with suppress(ImpexError):
                self.jobs.cancel(chunk.id, tenant=chunk.tenant)
            raise Stopped(JobStatus.CANCELLED)
        return parent

    def _open_chunk(self, chunk: Job, parent: Job) -> tuple[Source, int]:
        assert self.fanout is not None
        header = ImportProgress.from_checkpoint(parent.checkpoint).header
        if header is None:
            raise FileProblem("the import was split without its header; retry it")
        return self.fanout.chunk_source(chunk, header), 0

    def _fans_out(self, job: Job, progress: ImportProgress, size: int) -> bool:
        return (
            self.fanout is not None
            and job.fanout is None
            and progress.processed == 0
            and self.fanout.limits.applies(job, size)
        )

    def _split(
        self, job: Job, progress: ImportProgress, source: Source, split: RowSplit, deadline: Deadline
    ) -> RunOutcome:
        assert self.fanout is not None
        route = row_router(split.layout, split.converter, self.fanout.chunk_count(job))
        if self.fanout.split(
            job,
            progress,
            source,
            route,
            deadline=deadline,
            max_rows=self.limits.max_rows,
            progress_every_seconds=self.limits.progress_every_seconds,
        ):
            return RunOutcome.FANNED_OUT
        self._continue(job)
        return RunOutcome.CONTINUED

    def _open(self, job: Job, options: ImportOptions, progress: ImportProgress) -> tuple[Source, int]:
        assert job.file is not None
        file = job.file
        info = self.files.find(file.key, bucket=file.bucket, version_id=file.version_id)
        if info is None and file.version_id is not None:
            raise FileProblem(
                f"the version of {file.name} this job read first (or its dry run checked) no longer exists; "
                "create a new import"
            )
        if info is None:
            raise FileProblem(f"the file {file.name} was never uploaded, or has expired; create a new import")
        version = file.version_id or info.version_id
        if file.version_id is None and version is not None:
            try:
                self.jobs.pin_file_version(job.id, version)
            except JobNotProcessing as gone:
                raise Stopped(gone.status) from None
        if info.size == 0:
            raise FileProblem("the file is empty")
        if info.size > self.limits.max_file_bytes:
            raise FileProblem(
                f"the file is {info.size:,} bytes; the limit is {self.limits.max_file_bytes:,} bytes"
            )
        head = self.files.open(
            file.key, start=0, end=HEAD_BYTES - 1, bucket=file.bucket, version_id=version
        ).read()
        spec = SourceSpec(
            size=info.size,
            expected=job.format,
            options=ReadOptions(encoding=options.encoding, delimiter=options.delimiter, sheet=options.sheet),
            resume=progress.resume_point(),
            spool_dir=self._tmp,
            archive_limits=self.limits.archive,
        )
        source = open_source(
            head,
            lambda start: self.files.open(file.key, start=start, bucket=file.bucket, version_id=version),
            spec,
        )
        return source, info.size

    def _import_rows(self, run: _Run, converter: RowConverter, deadline: Deadline) -> RunOutcome:
        progress, writer = run.progress, run.writer
        last_checkpoint = time.monotonic()
        catching_up = CatchUp(deadline, run.source.resumable, progress.last_row)
        rows = run.source.rows(after_row=progress.last_row)
        # Marks of blank and skipped records end a batch early at least this often, so the checks below
        # run every couple of seconds of work, whatever the file holds.
        tick = min(1.0, self.limits.progress_every_seconds)
        try:
            for batch, position in _batches(rows, self.limits.batch_rows, tick):
                catching_up.reached(position.number)
                self._process(run, batch, converter)
                if position.number > progress.last_row:
                    progress.last_row = position.number
                    progress.offset = position.end_offset if run.source.resumable else None
                    run.position = position.end_offset
                _check_tolerance(run.options, progress, run.others, before_failing=writer.drain)
                if deadline.near():
                    catching_up.check()
                    writer.drain()
                    self._checkpoint(run)
                    self._continue(run.job)
                    return RunOutcome.CONTINUED
                if time.monotonic() - last_checkpoint >= self.limits.progress_every_seconds:
                    writer.drain()  # a checkpoint only ever covers rows whose writes have finished
                    self._checkpoint(run)
                    last_checkpoint = time.monotonic()
                else:
                    # Checked on the writer thread after this batch's write; seen before the next one
                    # (at once when there was no batch: only blank or skipped records).
                    writer.watch(lambda: self.jobs.stop_signal(run.job.id))
                    if not batch:
                        writer.drain()
            writer.drain()
            if run.job.chunk is not None and self.fanout is not None:
                # The chunk's last counts go on its parent now (its progress, the others' tolerance).
                run.others = self.fanout.note_progress(
                    run.job, processed=progress.processed, failed=progress.failed
                )
            # The last batch's row errors are counted only now.
            _check_tolerance(run.options, progress, run.others, before_failing=writer.drain)
            self._flush_errors(run)
        except (FileProblem, InvalidInput, TooManyErrors):
            # The failure's result and error report cover everything done so far: what the batch in
            # flight wrote, and the row errors since the last checkpoint.
            with suppress(Stopped):
                writer.drain()
            self._flush_errors(run)
            raise
        except Stopped as stopped:
            if stopped.status is JobStatus.CANCELLED:
                self._flush_errors(run)  # the cancelled job's error report has every row error so far
            raise
        self._complete(run)
        return RunOutcome.COMPLETED

    def _process(self, run: _Run, batch: list[SourceRow], converter: RowConverter) -> None:
        if not batch:
            return
        if run.progress.processed + len(batch) > self.limits.max_rows:
            raise FileProblem(f"the file has more than {self.limits.max_rows:,} rows, the limit")
        run.writer.process(batch, converter)

    # ---- checkpoints, endings ------------------------------------------------------------------

    def _checkpoint(self, run: _Run) -> None:
        self._flush_errors(run)
        progress = run.progress
        try:
            self.jobs.record_progress(
                run.job.id,
                processed_rows=progress.processed,
                total_rows=run.source.estimated_total(progress.processed, position=run.position),
                checkpoint=progress.as_checkpoint(),
            )
        except JobNotProcessing as gone:
            raise Stopped(gone.status) from None
        if run.job.chunk is not None and self.fanout is not None:
            run.others = self.fanout.note_progress(
                run.job, processed=progress.processed, failed=progress.failed
            )

    def _flush_errors(self, run: _Run) -> None:
        """Bring the progress up to date with what is only counted per invocation: the row errors
        spooled since the last checkpoint (uploaded as a part) and keys outside the header."""
        if run.report.upload_part(run.errors, run.progress.error_parts):
            run.progress.error_parts += 1
        run.progress.note_unknown_keys(*run.source.take_unknown_keys())

    def _continue(self, job: Job) -> None:
        """Hand over to a fresh invocation before this one times out."""
        self.jobs.hand_over(job.id)
        self.queues.send(JobMessage(job.id, job.tenant, continuation=True), priority=job.priority.value)
        logger.info("handed over to a continuation", extra={"job_id": job.id})

    def _outcome(self, job: Job, progress: ImportProgress, mapping: dict[str, str] | None) -> JobOutcome:
        """A job's ending fields, whichever way it ends: the result, the counts and the error report."""
        if job.chunk is not None:
            # A chunk's counts and error parts are its parent's to sum and merge when the last ends.
            return JobOutcome(result=progress.as_checkpoint(), processed_rows=progress.processed)
        report = ErrorReport(self.files, job).assemble(progress.error_parts, progress.header or [])
        return JobOutcome(
            result=progress.result(job.import_options, mapping).as_dict(),
            processed_rows=progress.processed,
            error_report=report,
        )

    def _complete(self, run: _Run) -> None:
        job, progress = run.job, run.progress
        outcome = self._outcome(job, progress, run.mapping.used)
        # A cancel requested after the last batch comes too late: the job is COMPLETED, as it is.
        self.jobs.complete(job.id, replace(outcome, total_rows=progress.processed))
        if job.chunk is not None:
            return  # the parent counts as one import, when it ends
        metrics.add_metric(name="ImportsCompleted", unit="Count", value=1)
        metrics.add_metric(name="ImportDurationSeconds", unit="Seconds", value=job_duration(job))
        metrics.add_metric(name="RowsImported", unit="Count", value=progress.written)
        metrics.add_metric(name="RowsFailed", unit="Count", value=progress.failed)

    def _fail(self, job: Job, progress: ImportProgress, message: str) -> None:
        logger.info("import failed", extra={"reason": message})
        # A job that ended before its header was read has nothing to report but the message.
        outcome = self._outcome(job, progress, progress.mapping) if progress.header is not None else None
        try:
            self.jobs.fail(job.id, message, outcome=outcome)
        except ImpexError as error:  # e.g. cancelled meanwhile
            logger.info("could not mark the job failed", extra={"reason": str(error)})
        metrics.add_metric(name="ImportsFailed", unit="Count", value=1)

    def _after_stop(self, job: Job, progress: ImportProgress, status: JobStatus | None) -> None:
        if status is not JobStatus.CANCELLED:
            logger.info("job left PROCESSING while running; stopping", extra={"status": str(status)})
            return
        try:
            self.jobs.end_cancelled(job.id, self._outcome(job, progress, progress.mapping))
        except IllegalTransition as error:  # the sweeper took it back meanwhile; the next worker ends it
            logger.info("could not end the cancelled job", extra={"reason": str(error)})
            return
        logger.info("import cancelled", extra={"written": progress.written})

    def _retry_or_fail(self, job: Job, error: Exception) -> RunOutcome:
        """A transient failure: retry from the checkpoint after a backoff, or fail after maxAttempts."""
        logger.exception("import attempt failed")
        queue = self.queues.for_priority(job.priority.value)
        if requeue_after_failure(self.jobs, queue, job, error, base_seconds=self.limits.retry_base_seconds):
            return RunOutcome.RETRYING
        self._fail(job, ImportProgress.from_checkpoint(job.checkpoint), failure_message(job, error))
        return RunOutcome.FAILED


def _written_before_stopping(progress: ImportProgress) -> str:
    """What a failure's message adds when rows had already been written (none of them is undone)."""
    return f"; {progress.written:,} rows had been written before it stopped" if progress.written else ""


def _check_tolerance(
    options: ImportOptions,
    progress: ImportProgress,
    others: tuple[int, int],
    before_failing: Callable[[], None],
) -> None:
    """Stop once more rows failed than the job allows (in the whole file, for a chunk)."""
    failed, processed = progress.failed + others[1], progress.processed + others[0]
    if tolerance_message(options, failed, processed, 0) is None:
        return
    before_failing()  # so the message counts the rows whose writes were still in flight
    message = tolerance_message(options, failed, processed, progress.written)
    assert message is not None
    raise TooManyErrors(message)


def _batches(
    rows: Iterator[SourceRow], size: int, tick_seconds: float
) -> Iterator[tuple[list[SourceRow], SourceRow]]:
    """Batches of ``size`` rows, each with the position after it; a progress mark (a row with no
    cells: the reader went past blank or skipped records) ends a batch early, even an empty one,
    once ``tick_seconds`` have passed since the last."""
    batch: list[SourceRow] = []
    last = time.monotonic()
    for row in rows:
        if row.cells:
            batch.append(row)
            if len(batch) < size:
                continue
        elif time.monotonic() - last < tick_seconds:
            continue
        yield batch, row
        batch, last = [], time.monotonic()
    if batch:
        yield batch, batch[-1]
