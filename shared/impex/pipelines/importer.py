"""The import pipeline: stream a file, map and validate its rows, write them to DynamoDB in batches.

Per-row work (parsing, conversion) happens in impex.formats and impex.datasets; this module does the
per-batch work: duplicate checks, writes, progress, cancel checks, checkpoints and continuations.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from impex.aws import clients
from impex.aws.events import JobEvents
from impex.aws.files import FilesBucket, error_part_key, error_report_key
from impex.aws.queues import PriorityQueues
from impex.aws.records import RecordTable
from impex.clock import iso, utc_now
from impex.datasets.mapping import RowConverter, map_columns
from impex.datasets.records import (
    RecordLayout,
)
from impex.datasets.store import DatasetStore, ExternalTable
from impex.errors import DatasetNotFound, IllegalTransition, ImpexError, InvalidInput
from impex.formats.detect import (
    detect_encoding,
    format_from_file_name,
    sniff_container,
    sniff_delimiter,
    text_kind,
)
from impex.formats.errors import FileProblem
from impex.formats.tabular import (
    CHUNK,
    DelimitedReader,
    JsonLinesReader,
    LineSource,
    SourceRow,
    first_lines_terminator,
)
from impex.formats.xlsx import ArchiveLimits, XlsxReader, check_archive
from impex.jobs.model import TENANT_PATTERN, FileRef, Job, JobStatus, JobType
from impex.jobs.options import ImportOptions
from impex.jobs.store import JobNotProcessing, JobStore
from impex.observability import logger, metrics
from impex.pipelines.common import (
    Deadline,
    RemainingTime,
    Stopped,
    bulk_allocations,
    failure_message,
    requeue_after_failure,
)
from impex.pipelines.fairness import TenantCap
from impex.pipelines.import_batches import BatchWriter, ErrorRows, ImportProgress
from impex.pipelines.messages import DroppedFile, StoredObject, dropped_job_id
from impex.pipelines.workers import ImportTrigger, job_duration
from impex.settings import CommonSettings, ImporterSettings

HEAD_BYTES = 64 * 1024
PROGRESS_EVERY_SECONDS = 2.0
METADATA_PREFIX = "impex-"


@dataclass(frozen=True)
class ImportLimits:
    """Limits on what one import may be, and how it paces itself."""

    max_file_bytes: int
    max_columns: int = 1000
    max_rows: int = 10_000_000
    max_cell_chars: int = 32_767
    batch_rows: int = 1000
    continuation_reserve_seconds: float = 60.0
    retry_base_seconds: float = 5.0
    archive: ArchiveLimits = field(default_factory=ArchiveLimits)


class TooManyErrors(ImpexError):
    code = "too_many_errors"


class ImportPipeline:
    """Runs claimed import jobs."""

    def __init__(
        self,
        *,
        jobs: JobStore,
        datasets: DatasetStore,
        files: FilesBucket,
        records: Callable[[str], RecordTable],
        queues: PriorityQueues,
        limits: ImportLimits,
        records_table: str,
        external_tables: dict[str, ExternalTable],
        tmp_dir: Path | None = None,
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

    # ---- entry points --------------------------------------------------------------------------

    def run(self, job: Job, context: RemainingTime | None = None) -> None:
        """Run one claimed (PROCESSING) job until it ends, hands over to a continuation, or stops."""
        logger.append_keys(job_id=job.id, tenant=job.tenant)
        started = time.monotonic()
        progress = ImportProgress.from_checkpoint(job.checkpoint)
        try:
            with bulk_allocations:
                outcome = self._run(job, progress, context)
        except Stopped as stopped:
            self._after_stop(job, progress, stopped.status)
            return
        except TooManyErrors as problem:
            self._fail(job, progress, problem.message)  # it already says what was written
            return
        except (FileProblem, InvalidInput, DatasetNotFound) as problem:
            self._fail(job, progress, problem.message + _written_before_stopping(progress))
            return
        except Exception as error:
            self._retry_or_fail(job, error)
            return
        if outcome == "continued":
            return
        metrics.add_metric(name="ImportSeconds", unit="Seconds", value=time.monotonic() - started)

    def start_dropped_file(self, stored: StoredObject, dropped: DroppedFile) -> Job | None:
        """Create (once) the import job of a file dropped under incoming/, and claim it."""
        if not TENANT_PATTERN.match(dropped.tenant):
            logger.warning("dropped file has an unusable tenant in its key", extra={"key": stored.key})
            return None
        job_id = dropped_job_id(stored)
        existing = self.jobs.get(job_id)
        if existing is None:
            existing = self._create_dropped_job(job_id, stored, dropped)
        if existing.status is not JobStatus.PENDING:
            return None
        return self.jobs.claim(job_id)

    def _create_dropped_job(self, job_id: str, stored: StoredObject, dropped: DroppedFile) -> Job:
        now = iso(utc_now())
        file_name = dropped.file_name.rsplit("/", 1)[-1]
        job = Job(
            id=job_id,
            type=JobType.IMPORT,
            tenant=dropped.tenant,
            dataset=dropped.dataset,
            format=_format_of_name(file_name),
            file=FileRef(bucket=stored.bucket, key=stored.key, name=file_name, size=stored.size),
            created_at=now,
            updated_at=now,
        )
        problem: str | None = None
        try:
            info = self.files.head(stored.key, bucket=stored.bucket)
            job.options = _options_from_metadata(info.metadata)
        except InvalidInput as error:
            problem = error.message
        try:
            self.datasets.get(dropped.tenant, dropped.dataset)
        except DatasetNotFound:
            problem = (
                f"dataset '{dropped.dataset}' does not exist for tenant '{dropped.tenant}'; create it first"
            )
        try:
            created = self.jobs.create(job)
        except ClientError as error:
            found = self.jobs.get(job_id)
            if found is None or error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return found  # a duplicate event created it first
        if problem is not None:
            return self.jobs.transition(job_id, JobStatus.FAILED, set_fields={"errorMessage": problem})
        return created

    # ---- the run -------------------------------------------------------------------------------

    def _run(self, job: Job, progress: ImportProgress, context: RemainingTime | None) -> str:
        options = ImportOptions.model_validate(job.options)
        dataset = self.datasets.get(job.tenant, job.dataset)
        layout = RecordLayout.for_dataset(
            dataset, records_table=self._records_table, external_tables=self._external
        )
        assert job.file is not None
        try:
            info = self.files.head(job.file.key, bucket=job.file.bucket)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                raise FileProblem(
                    f"the file {job.file.name} was never uploaded, or has expired; create a new import"
                ) from None
            raise
        if info.size == 0:
            raise FileProblem("the file is empty")
        if info.size > self.limits.max_file_bytes:
            raise FileProblem(
                f"the file is {info.size:,} bytes; the limit is {self.limits.max_file_bytes:,} bytes"
            )
        deadline = Deadline(context, self.limits.continuation_reserve_seconds)
        table = self._records(layout.table_name)
        errors = ErrorRows(self._tmp)
        with ExitStack() as cleanup:
            cleanup.callback(table.close)
            cleanup.callback(errors.close)
            source = self._open(job, options, info.size, progress, cleanup)
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
            batch_runner = BatchWriter(job, options, layout, table, progress, errors)
            cleanup.callback(batch_runner.close)
            last_checkpoint = time.monotonic()
            try:
                for batch in _batches(source.rows(after_row=progress.last_row), self.limits.batch_rows):
                    if progress.processed + len(batch) > self.limits.max_rows:
                        raise FileProblem(f"the file has more than {self.limits.max_rows:,} rows, the limit")
                    batch_runner.process(batch, converter)
                    progress.last_row = batch[-1].number
                    progress.offset = batch[-1].end_offset if source.resumable else None
                    _check_tolerance(options, progress, before_failing=batch_runner.drain)
                    if deadline.near():
                        batch_runner.drain()
                        self._checkpoint(job, progress, errors, source)
                        self._continue(job)
                        return "continued"
                    if time.monotonic() - last_checkpoint >= PROGRESS_EVERY_SECONDS:
                        # A checkpoint only ever covers rows whose writes have finished.
                        batch_runner.drain()
                        self._checkpoint(job, progress, errors, source)
                        last_checkpoint = time.monotonic()
                    else:
                        # Checked on the writer thread after this batch's write; seen before the next one.
                        batch_runner.watch(lambda: self.jobs.current_status(job.id))
                batch_runner.drain()
                # The last batch's row errors are counted only now.
                _check_tolerance(options, progress, before_failing=batch_runner.drain)
                self._flush_errors(job, progress, errors)
            except (FileProblem, InvalidInput, TooManyErrors):
                # The failure's result and error report cover everything done so far: what the
                # batch in flight wrote, and the row errors since the last checkpoint.
                with suppress(Stopped):
                    batch_runner.drain()
                self._flush_errors(job, progress, errors)
                raise
            self._complete(job, progress, options, mapping.used, source)
        return "completed"

    def _open(
        self, job: Job, options: ImportOptions, size: int, progress: ImportProgress, cleanup: ExitStack
    ) -> _Source:
        assert job.file is not None
        file = job.file
        head_stream = self.files.open(file.key, start=0, end=HEAD_BYTES - 1, bucket=file.bucket)
        head = head_stream.read()
        container = sniff_container(head)
        expected = job.format.removesuffix(".gz")
        if container == "zip":
            if expected != "xlsx":
                raise FileProblem(
                    f"the file is an Excel workbook, but the job expects {job.format}; "
                    "import it with format xlsx"
                )
            path = Path(cleanup.enter_context(tempfile.TemporaryDirectory(dir=self._tmp))) / "upload.xlsx"
            self.files.download(file.key, path, bucket=file.bucket)
            check_archive(path, self.limits.archive)
            reader = XlsxReader(path, sheet=options.sheet)
            return _Source(
                reader.header,
                reader.rows,
                resumable=False,
                total_rows=reader.total_rows - 1,
                fraction=lambda: 0.0,
            )
        if expected == "xlsx":
            raise FileProblem("the job expects an Excel workbook (.xlsx), but the file is not one")
        compressed = container == "gzip"
        if compressed:
            try:
                head = gzip.GzipFile(fileobj=io.BytesIO(head)).read1(HEAD_BYTES)
            except (OSError, EOFError):
                head = b""
            if not head:
                raise FileProblem("the file is gzip-compressed but could not be decompressed")
            sniff_container(head)
        encoding = detect_encoding(head, options.encoding)
        sample = head.decode(encoding, errors="replace")
        kind = text_kind(sample)
        if kind == "jsonl" and expected in ("csv", "tsv"):
            raise FileProblem(
                f"the file holds JSON Lines, but the job expects {job.format}; import it as jsonl"
            )
        if kind == "delimited" and expected == "jsonl":
            raise FileProblem("the job expects JSON Lines, but the file does not start with a JSON object")
        terminator = first_lines_terminator(head)
        # Resume exactly where the last checkpoint left off (a ranged GET), when the format allows it.
        resume = progress.offset is not None and progress.header is not None and not compressed
        start = progress.offset or 0 if resume else 0
        resume_rows = progress.last_row if resume else 0
        # A checkpoint taken after the last row points at the end of the file: nothing is left to read.
        body = io.BytesIO() if start >= size else self.files.open(file.key, start=start, bucket=file.bucket)
        counted = _CountingStream(body, already=start)
        cleanup.callback(counted.close)
        stream: IO[bytes] = (
            gzip.GzipFile(fileobj=counted)  # type: ignore[assignment]
            if compressed
            else io.BufferedReader(counted, CHUNK)
        )
        lines = LineSource(stream, encoding, start_offset=start, terminator=terminator)
        header = progress.header if start else None
        if kind == "jsonl":
            jsonl = JsonLinesReader(lines, header=header, rows_done=resume_rows)
            return _Source(
                jsonl.header,
                jsonl.rows,
                resumable=lines.byte_exact and not compressed,
                total_rows=None,
                fraction=lambda: counted.consumed / max(size, 1),
                jsonl=jsonl,
            )
        delimiter = options.delimiter or ("\t" if expected == "tsv" else sniff_delimiter(sample))
        delimited = DelimitedReader(lines, delimiter, header=header, rows_done=max(resume_rows - 1, 0))
        return _Source(
            delimited.header,
            delimited.rows,
            resumable=lines.byte_exact and not compressed,
            total_rows=None,
            fraction=lambda: counted.consumed / max(size, 1),
        )

    # ---- checkpoints, endings ------------------------------------------------------------------

    def _checkpoint(self, job: Job, progress: ImportProgress, errors: ErrorRows, source: _Source) -> None:
        self._flush_errors(job, progress, errors)
        try:
            self.jobs.update_progress(
                job.id,
                processed_rows=progress.processed,
                total_rows=source.estimated_total(progress.processed),
                checkpoint=progress.as_checkpoint(),
            )
        except JobNotProcessing as gone:
            raise Stopped(gone.status) from None

    def _flush_errors(self, job: Job, progress: ImportProgress, errors: ErrorRows) -> None:
        if errors.pending:
            key = error_part_key(job.tenant, job.id, progress.error_parts)
            self.files.put_bytes(key, errors.take(), content_type="text/csv")
            progress.error_parts += 1

    def _continue(self, job: Job) -> None:
        """Hand over to a fresh invocation before this one times out."""
        self.jobs.transition(job.id, JobStatus.PENDING, allowed_from=frozenset({JobStatus.PROCESSING}))
        self.queues.send(
            {"jobId": job.id, "tenant": job.tenant, "continuation": True}, priority=job.priority.value
        )
        logger.info("handed over to a continuation", extra={"job_id": job.id})

    def _result(
        self, progress: ImportProgress, options: ImportOptions, used: dict[str, str] | None
    ) -> dict[str, Any]:
        return {
            "rowsTotal": progress.processed,
            "created": progress.created,
            "updated": progress.updated,
            "skipped": progress.skipped,
            "failed": progress.failed,
            "written": progress.written,
            "unknownColumns": progress.unknown_columns,
            "mapping": used or {},
            "firstErrors": progress.first_errors,
            "mode": options.mode,
            "dryRun": options.dry_run,
        }

    def _error_report(self, job: Job, progress: ImportProgress) -> FileRef | None:
        """Assemble the parts into one CSV: row, error, then the row's original values."""
        if progress.error_parts == 0:
            return None
        header = ["row", "error", *(progress.header or [])]
        buffer = io.StringIO()
        csv.writer(buffer).writerow(header)
        body = bytearray(buffer.getvalue().encode("utf-8"))
        parts = [error_part_key(job.tenant, job.id, n) for n in range(progress.error_parts)]
        for key in parts:
            body += self.files.read_bytes(key)
        key = error_report_key(job.tenant, job.id)
        self.files.put_bytes(key, bytes(body), content_type="text/csv")
        self.files.delete(parts)
        return FileRef(
            bucket=self.files.name,
            key=key,
            name=f"{job.id}-errors.csv",
            size=len(body),
            content_type="text/csv",
        )

    def _complete(
        self,
        job: Job,
        progress: ImportProgress,
        options: ImportOptions,
        used: dict[str, str],
        source: _Source,
    ) -> None:
        report = self._error_report(job, progress)
        fields: dict[str, Any] = {
            "result": self._result(progress, options, used),
            "processedRows": progress.processed,
            "totalRows": progress.processed,
            "progress": 100,
            "checkpoint": None,
        }
        if report is not None:
            fields["errorReport"] = report.model_dump(by_alias=True, exclude_none=True)
        try:
            self.jobs.transition(job.id, JobStatus.COMPLETED, set_fields=fields)
        except IllegalTransition:
            status = self.jobs.current_status(job.id)
            if status is JobStatus.CANCELLED:
                self.jobs.annotate_ended(job.id, JobStatus.CANCELLED, {"result": fields["result"]})
                return
            raise
        metrics.add_metric(name="ImportsCompleted", unit="Count", value=1)
        metrics.add_metric(name="ImportDurationSeconds", unit="Seconds", value=job_duration(job))
        metrics.add_metric(name="RowsImported", unit="Count", value=progress.written)
        metrics.add_metric(name="RowsFailed", unit="Count", value=progress.failed)

    def _fail(self, job: Job, progress: ImportProgress, message: str) -> None:
        logger.info("import failed", extra={"reason": message})
        fields: dict[str, Any] = {"errorMessage": message}
        if progress.header is not None:
            options = ImportOptions.model_validate(job.options)
            fields["result"] = self._result(progress, options, None)
            fields["processedRows"] = progress.processed
            report = self._error_report(job, progress)
            if report is not None:
                fields["errorReport"] = report.model_dump(by_alias=True, exclude_none=True)
        try:
            self.jobs.transition(job.id, JobStatus.FAILED, set_fields=fields)
        except ImpexError as error:  # e.g. cancelled meanwhile
            logger.info("could not mark the job failed", extra={"reason": str(error)})
        metrics.add_metric(name="ImportsFailed", unit="Count", value=1)

    def _after_stop(self, job: Job, progress: ImportProgress, status: JobStatus | None) -> None:
        if status is JobStatus.CANCELLED:
            options = ImportOptions.model_validate(job.options)
            fields: dict[str, Any] = {
                "result": self._result(progress, options, None),
                "processedRows": progress.processed,
            }
            report = self._error_report(job, progress)
            if report is not None:
                fields["errorReport"] = report.model_dump(by_alias=True, exclude_none=True)
            self.jobs.annotate_ended(job.id, JobStatus.CANCELLED, fields)
            logger.info("import cancelled", extra={"written": progress.written})
        else:
            logger.info("job left PROCESSING while running; stopping", extra={"status": str(status)})

    def _retry_or_fail(self, job: Job, error: Exception) -> None:
        """A transient failure: retry from the checkpoint after a backoff, or fail after maxAttempts."""
        logger.exception("import attempt failed")
        queue = self.queues.for_priority(job.priority.value)
        if not requeue_after_failure(
            self.jobs, queue, job, error, base_seconds=self.limits.retry_base_seconds
        ):
            self._fail(job, ImportProgress.from_checkpoint(job.checkpoint), failure_message(job, error))


def _written_before_stopping(progress: ImportProgress) -> str:
    """What a failure's message adds when rows had already been written (none of them is undone)."""
    return f"; {progress.written:,} rows had been written before it stopped" if progress.written else ""


def _check_tolerance(
    options: ImportOptions, progress: ImportProgress, before_failing: Callable[[], None]
) -> None:
    failed, processed = progress.failed, progress.processed
    rate_exceeded = (
        options.max_error_rate is not None
        and processed >= 100
        and failed * 100 / processed > options.max_error_rate
    )
    count_exceeded = options.max_errors is not None and failed > options.max_errors
    if not (rate_exceeded or count_exceeded):
        return
    before_failing()  # so the message counts the rows whose writes were still in flight
    written = f"{progress.written} rows were written before it stopped"
    if options.max_errors is not None and failed > options.max_errors:
        raise TooManyErrors(
            f"stopped: {failed} rows failed, more than maxErrors={options.max_errors}; {written}"
        )
    if options.max_error_rate is not None and processed >= 100:
        rate = failed * 100 / processed
        if rate > options.max_error_rate:
            raise TooManyErrors(
                f"stopped: {rate:.1f}% of rows failed, more than "
                f"maxErrorRate={options.max_error_rate}%; {written}"
            )


# ---- plumbing ----------------------------------------------------------------------------------


class _Source:
    """A reader with what the pipeline needs to know about it."""

    def __init__(
        self,
        header: list[str],
        rows: Callable[[], Iterator[SourceRow]],
        *,
        resumable: bool,
        total_rows: int | None,
        fraction: Callable[[], float],
        jsonl: JsonLinesReader | None = None,
    ):
        self.header = header
        self._rows = rows
        self.resumable = resumable
        self.total_rows = total_rows
        self._fraction = fraction
        self._jsonl = jsonl

    def rows(self, *, after_row: int) -> Iterator[SourceRow]:
        for row in self._rows():
            if row.number > after_row:
                yield row

    def estimated_total(self, processed: int) -> int | None:
        """Exact when the format knows it, otherwise estimated from the bytes read so far."""
        if self.total_rows is not None:
            return max(self.total_rows, processed)
        fraction = self._fraction()
        return max(processed, int(processed / fraction)) if fraction > 0.01 else None


class _CountingStream(io.RawIOBase):
    """Counts the bytes read from S3 (for progress estimates)."""

    def __init__(self, inner: IO[bytes], already: int = 0) -> None:
        self._inner = inner
        self.consumed = already

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self.consumed += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _batches(rows: Iterator[SourceRow], size: int) -> Iterator[list[SourceRow]]:
    batch: list[SourceRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _format_of_name(file_name: str) -> str:
    return format_from_file_name(file_name) or "csv"


def _options_from_metadata(metadata: dict[str, str]) -> dict[str, Any]:
    """Import options given as object metadata: x-amz-meta-impex-mode: insert, …-dry-run: true, …"""
    raw: dict[str, Any] = {}
    for name, value in metadata.items():
        if not name.lower().startswith(METADATA_PREFIX):
            continue
        option = name[len(METADATA_PREFIX) :].lower()
        camel = option.split("-")[0] + "".join(part.title() for part in option.split("-")[1:])
        raw[camel] = json.loads(value) if camel == "mapping" else value
    try:
        return ImportOptions.model_validate(raw).model_dump(by_alias=True, mode="json", exclude_none=True)
    except (ValidationError, ValueError) as error:
        raise InvalidInput(f"the file's impex-* metadata is invalid: {error}") from None


def build_import_pipeline(settings: ImporterSettings) -> ImportPipeline:
    """The import pipeline wired to AWS from the importer's settings."""
    table = clients.dynamodb().Table
    events = JobEvents(clients.events(), settings.event_bus_name)
    return ImportPipeline(
        jobs=JobStore(table(settings.jobs_table), retention_days=settings.job_retention_days, events=events),
        datasets=DatasetStore(table(settings.datasets_table), external_tables=settings.external_tables()),
        files=FilesBucket(clients.s3(settings.s3_addressing_style), settings.files_bucket),
        records=lambda name: RecordTable(
            clients.dynamodb_fast(), name, max_workers=settings.write_concurrency
        ),
        queues=import_queues(settings),
        limits=ImportLimits(
            max_file_bytes=settings.max_upload_bytes,
            max_columns=settings.max_columns,
            max_rows=settings.max_rows,
            max_cell_chars=settings.max_cell_chars,
            batch_rows=settings.batch_rows,
            continuation_reserve_seconds=settings.continuation_reserve_seconds,
            retry_base_seconds=settings.retry_base_seconds,
            archive=ArchiveLimits(
                max_uncompressed_bytes=settings.xlsx_max_uncompressed_bytes,
                max_ratio=settings.xlsx_max_compression_ratio,
            ),
        ),
        records_table=settings.records_table,
        external_tables=settings.external_tables(),
    )


def build_import_trigger(settings: ImporterSettings) -> ImportTrigger:
    """The importer's record handler, wired to AWS from the function's settings."""
    pipeline = build_import_pipeline(settings)
    cap = TenantCap(pipeline.jobs, pipeline.queues, settings.tenant_concurrency)
    return ImportTrigger(pipeline.jobs, pipeline.run, pipeline.start_dropped_file, cap)


def import_queues(settings: CommonSettings) -> PriorityQueues:
    """The import queues by priority (the normal one also receives the S3 upload notifications)."""
    return PriorityQueues(
        clients.sqs(),
        high=settings.import_high_queue_url,
        normal=settings.import_queue_url,
        low=settings.import_low_queue_url,
    )
