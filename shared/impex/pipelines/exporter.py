"""The export pipeline: query a dataset page by page, stream the file to S3, hand back the file.

CSV, JSON and JSON Lines stream straight into a multipart upload in constant memory and can carry on
in a fresh invocation (the checkpoint holds the LastEvaluatedKey, the upload id, its parts and the
few bytes not yet uploaded). XLSX and Parquet files are written to /tmp and uploaded at the end: they
cannot be appended to, so one export of those formats must finish within one invocation (a
15-minute Lambda writes millions of rows); if it cannot, the job fails saying so.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from impex.aws import clients
from impex.aws.events import JobEvents
from impex.aws.files import FilesBucket
from impex.aws.multipart import MultipartUpload, abort_uploads_under
from impex.aws.queues import PriorityQueues
from impex.aws.records import RecordTable
from impex.datasets.model import DatasetField, FieldType
from impex.datasets.query import CompiledQuery, compile_query
from impex.datasets.records import RecordLayout, from_attribute
from impex.datasets.store import DatasetStore, ExternalTable
from impex.errors import DatasetNotFound, IllegalTransition, ImpexError, InvalidInput
from impex.formats.errors import FileProblem
from impex.formats.writers import (
    CONTENT_TYPES,
    CsvWriter,
    JsonArrayWriter,
    JsonLinesWriter,
    ParquetWriter,
    XlsxWriter,
)
from impex.jobs.model import Job, JobStatus
from impex.jobs.options import ExportOptions
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
from impex.pipelines.workers import ExportTrigger, job_duration
from impex.settings import CommonSettings, ExporterSettings

PROGRESS_EVERY_SECONDS = 2.0
SCAN_SEGMENTS = 4


@dataclass
class _RunState:
    """What one run of an export has counted so far."""

    rows: int = 0


class _Handover(Exception):
    """Time is short: checkpoint and continue in a fresh invocation."""


class ExportPipeline:
    """Runs claimed export jobs."""

    def __init__(
        self,
        *,
        jobs: JobStore,
        datasets: DatasetStore,
        files: FilesBucket,
        s3: Any,
        records: Callable[[str], RecordTable],
        queues: PriorityQueues,
        records_table: str,
        external_tables: dict[str, ExternalTable],
        continuation_reserve_seconds: float = 60.0,
        retry_base_seconds: float = 5.0,
        page_size: int | None = None,
        tmp_dir: Path | None = None,
    ) -> None:
        self.jobs = jobs
        self.datasets = datasets
        self.files = files
        self._s3 = s3
        self._records = records
        self.queues = queues
        self._records_table = records_table
        self._external = external_tables
        self._reserve = continuation_reserve_seconds
        self._retry_base = retry_base_seconds
        self._page_size = page_size
        self._tmp = tmp_dir or Path(tempfile.gettempdir())

    def run(self, job: Job, context: RemainingTime | None = None) -> None:
        """Run one claimed export until it ends, hands over to a continuation, or stops."""
        logger.append_keys(job_id=job.id, tenant=job.tenant)
        upload: list[MultipartUpload] = []
        # Per-run state lives here, not on self: one pipeline serves every invocation of a process,
        # and the local runtime runs several at once.
        state = _RunState()
        started = time.monotonic()
        try:
            with bulk_allocations:
                self._run(job, context, upload, state)
        except _Handover:
            return
        except Stopped as stopped:
            self._clean_up(job, upload)
            if stopped.status is JobStatus.CANCELLED:
                self.jobs.annotate_ended(
                    job.id, JobStatus.CANCELLED, {"result": {"rows": state.rows, "format": job.format}}
                )
                logger.info("export cancelled; partial file removed")
            return
        except (InvalidInput, DatasetNotFound, FileProblem) as problem:
            self._clean_up(job, upload)
            self._fail(job, problem.message)
            return
        except Exception as error:
            self._retry_or_fail(job, error, upload)
            return
        metrics.add_metric(name="ExportSeconds", unit="Seconds", value=time.monotonic() - started)

    # ---- the run -------------------------------------------------------------------------------

    def _run(
        self, job: Job, context: RemainingTime | None, upload_holder: list[MultipartUpload], state: _RunState
    ) -> None:
        options = ExportOptions.model_validate(
            {k: v for k, v in job.options.items() if k not in ("filters", "fields")}
        )
        dataset = self.datasets.get(job.tenant, job.dataset)
        layout = RecordLayout.for_dataset(
            dataset, records_table=self._records_table, external_tables=self._external
        )
        names: list[str] = job.options.get("fields") or dataset.field_names
        fields: list[DatasetField] = []
        for name in names:
            found = dataset.field(name)
            if found is None:
                raise InvalidInput(f"field '{name}' is no longer in dataset '{dataset.name}'")
            fields.append(found)
        query = compile_query(layout, list(job.options.get("filters", [])), names)
        assert job.file is not None
        checkpoint = job.checkpoint or {}
        state.rows = int(checkpoint.get("rows", 0))
        deadline = Deadline(context, self._reserve)
        table = self._records(layout.table_name)
        appendable = job.format in ("csv", "json", "jsonl")
        content_type = CONTENT_TYPES[job.format] if not (options.gzip and appendable) else "application/gzip"
        if not checkpoint:
            # A fresh start: drop whatever an earlier, crashed attempt left half-uploaded.
            abort_uploads_under(self._s3, self.files.name, job.file.key)
        pending = self.files.read_bytes(checkpoint["pendingKey"]) if checkpoint.get("pendingKey") else b""
        upload = MultipartUpload(
            self._s3,
            self.files.name,
            job.file.key,
            content_type=content_type,
            file_name=job.file.name,
            state=checkpoint.get("upload"),
            pending=pending,
        )
        upload_holder.append(upload)
        resume = bool(checkpoint)
        spool: Path | None = None
        try:
            if appendable:
                writer = _appendable_writer(
                    job.format,
                    upload,
                    fields,
                    options,
                    resume=resume,
                    started=bool(checkpoint.get("jsonStarted")),
                )
            else:
                spool = Path(tempfile.mkstemp(dir=self._tmp, suffix="." + job.format)[1])
                writer = (
                    XlsxWriter(
                        str(spool),
                        fields,
                        neutralize_formulas=options.neutralize_formulas,
                        sheet_name=dataset.name,
                    )
                    if job.format == "xlsx"
                    else ParquetWriter(str(spool), fields)
                )
            start: dict[str, Any] = checkpoint.get("position", {})
            last_progress = time.monotonic()
            for items, position in self._pages(table, query, layout, start):
                rows = [_row(item, fields) for item in items]
                writer.write_rows(rows)
                state.rows += len(rows)
                if time.monotonic() - last_progress >= PROGRESS_EVERY_SECONDS:
                    self._progress(job, state)
                    last_progress = time.monotonic()
                else:
                    status = self.jobs.current_status(job.id)
                    if status is not JobStatus.PROCESSING:
                        raise Stopped(status)
                if position.get("done"):
                    break
                if deadline.near():
                    if not appendable:
                        raise FileProblem(
                            f"a {job.format} export must finish within one invocation, and this one did not "
                            f"({state.rows:,} rows written); export as CSV or JSON Lines, or add filters"
                        )
                    self._hand_over(job, writer, upload, position, state)
            if isinstance(writer, JsonArrayWriter):
                writer.finish()
            writer.close()
            if spool is not None:
                with spool.open("rb") as handle:
                    while chunk := handle.read(8 * 1024 * 1024):
                        upload.write(chunk)
            size = upload.complete()
        finally:
            if spool is not None:
                spool.unlink(missing_ok=True)
        if checkpoint.get("pendingKey"):
            self.files.delete([checkpoint["pendingKey"]])
        self._complete(job, size, content_type, state)

    def _pages(
        self, table: RecordTable, query: CompiledQuery, layout: RecordLayout, position: dict[str, Any]
    ) -> Iterator[tuple[list[Any], dict[str, Any]]]:
        """Pages of items with the position after each (a LastEvaluatedKey, or one per Scan segment)."""
        request = query.request()
        if query.uses_query:
            start = position.get("lastKey")
            while True:
                items, last_key = table.page(request, start_key=start, limit=self._page_size)
                yield items, {"lastKey": last_key, "done": last_key is None}
                if last_key is None:
                    return
                start = last_key
        # An allow-listed table without a usable key condition: a Scan in parallel segments.
        segments: dict[str, Any] = position.get("segments") or {str(i): None for i in range(SCAN_SEGMENTS)}
        while True:
            active = [(int(s), key) for s, key in segments.items() if key != "done"]
            if not active:
                return
            pages = table.pages_in_parallel(
                [(request, key, (number, SCAN_SEGMENTS)) for number, key in active]
            )
            merged: list[Any] = []
            for (number, _), (page_items, last_key) in zip(active, pages, strict=True):
                merged += page_items
                segments[str(number)] = last_key if last_key is not None else "done"
            done = all(key == "done" for key in segments.values())
            yield merged, {"segments": dict(segments), "done": done}

    def _progress(self, job: Job, state: _RunState) -> None:
        try:
            self.jobs.update_progress(job.id, processed_rows=state.rows)
        except JobNotProcessing as gone:
            raise Stopped(gone.status) from None

    def _hand_over(
        self, job: Job, writer: Any, upload: MultipartUpload, position: dict[str, Any], state: _RunState
    ) -> None:
        """Save where we are (query position, upload parts, unsent bytes) and continue in a new invocation."""
        writer.close()  # a gzip member ends here; the next invocation starts a new one
        pending_key = f"exports/{job.tenant}/{job.id}/.pending"
        self.files.put_bytes(pending_key, upload.pending(), content_type="application/octet-stream")
        checkpoint = {
            "position": position,
            "rows": state.rows,
            "upload": upload.state(),
            "pendingKey": pending_key,
            "jsonStarted": bool(getattr(writer, "started", False)),
        }
        try:
            self.jobs.update_progress(job.id, processed_rows=state.rows, checkpoint=checkpoint)
        except JobNotProcessing as gone:
            raise Stopped(gone.status) from None
        self.jobs.transition(job.id, JobStatus.PENDING, allowed_from=frozenset({JobStatus.PROCESSING}))
        self.queues.send(
            {"jobId": job.id, "tenant": job.tenant, "continuation": True}, priority=job.priority.value
        )
        logger.info("export handed over to a continuation", extra={"rows": state.rows})
        raise _Handover

    def _complete(self, job: Job, size: int, content_type: str, state: _RunState) -> None:
        assert job.file is not None
        file = job.file.model_copy(update={"size": size, "content_type": content_type})
        fields = {
            "file": file.model_dump(by_alias=True, exclude_none=True),
            "result": {
                "rows": state.rows,
                "format": job.format,
                "fileName": file.name,
                "fileSize": size,
                "contentType": content_type,
            },
            "processedRows": state.rows,
            "totalRows": state.rows,
            "progress": 100,
            "checkpoint": None,
        }
        try:
            self.jobs.transition(job.id, JobStatus.COMPLETED, set_fields=fields)
        except IllegalTransition:
            # Cancelled at the last moment: the file must not outlive the job.
            self.files.delete([job.file.key])
            raise Stopped(self.jobs.current_status(job.id)) from None
        metrics.add_metric(name="ExportsCompleted", unit="Count", value=1)
        metrics.add_metric(name="ExportDurationSeconds", unit="Seconds", value=job_duration(job))
        metrics.add_metric(name="RowsExported", unit="Count", value=state.rows)

    def _clean_up(self, job: Job, upload: list[MultipartUpload]) -> None:
        for started in upload:
            started.abort()
        if job.file is not None:
            abort_uploads_under(self._s3, self.files.name, job.file.key)
        self.files.delete([f"exports/{job.tenant}/{job.id}/.pending"])

    def _fail(self, job: Job, message: str) -> None:
        logger.info("export failed", extra={"reason": message})
        try:
            self.jobs.transition(job.id, JobStatus.FAILED, set_fields={"errorMessage": message})
        except ImpexError:
            return
        metrics.add_metric(name="ExportsFailed", unit="Count", value=1)

    def _retry_or_fail(self, job: Job, error: Exception, upload: list[MultipartUpload]) -> None:
        logger.exception("export attempt failed")
        queue = self.queues.for_priority(job.priority.value)
        if not requeue_after_failure(self.jobs, queue, job, error, base_seconds=self._retry_base):
            self._clean_up(job, upload)
            self._fail(job, failure_message(job, error))


def _appendable_writer(
    file_format: str,
    sink: MultipartUpload,
    fields: list[DatasetField],
    options: ExportOptions,
    *,
    resume: bool,
    started: bool,
) -> Any:
    if file_format == "csv":
        return CsvWriter(
            sink,
            fields,
            delimiter=options.delimiter,
            bom=options.bom,
            neutralize_formulas=options.neutralize_formulas,
            compress=options.gzip,
            resume=resume,
        )
    if file_format == "jsonl":
        return JsonLinesWriter(sink, fields, compress=options.gzip, resume=resume)
    return JsonArrayWriter(sink, fields, resume=resume, started=started)


def _row(item: dict[str, Any], fields: list[DatasetField]) -> list[Any]:
    return [_typed(item.get(f.name), f.type) for f in fields]


def _typed(attribute: dict[str, Any] | None, field_type: FieldType) -> Any:
    """A stored attribute back as its field's type (dates and datetimes are stored as ISO text)."""
    if attribute is None:
        return None
    value = from_attribute(attribute)
    try:
        if field_type is FieldType.INTEGER and isinstance(value, Decimal):
            return int(value)
        if field_type is FieldType.DATE and isinstance(value, str):
            return date.fromisoformat(value)
        if field_type is FieldType.DATETIME and isinstance(value, str):
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value  # an item written by another app: keep what is there
    return value


def build_export_pipeline(settings: ExporterSettings) -> ExportPipeline:
    """The export pipeline wired to AWS from the exporter's settings."""
    table = clients.dynamodb().Table
    s3 = clients.s3(settings.s3_addressing_style)
    events = JobEvents(clients.events(), settings.event_bus_name)
    return ExportPipeline(
        jobs=JobStore(table(settings.jobs_table), retention_days=settings.job_retention_days, events=events),
        datasets=DatasetStore(table(settings.datasets_table), external_tables=settings.external_tables()),
        files=FilesBucket(s3, settings.files_bucket),
        s3=s3,
        records=lambda name: RecordTable(clients.dynamodb_fast(), name),
        queues=export_queues(settings),
        records_table=settings.records_table,
        external_tables=settings.external_tables(),
        continuation_reserve_seconds=settings.continuation_reserve_seconds,
        retry_base_seconds=settings.retry_base_seconds,
        page_size=settings.page_size,
    )


def build_export_trigger(settings: ExporterSettings) -> ExportTrigger:
    """The exporter's record handler, wired to AWS from the function's settings."""
    pipeline = build_export_pipeline(settings)
    cap = TenantCap(pipeline.jobs, pipeline.queues, settings.tenant_concurrency)
    return ExportTrigger(pipeline.jobs, pipeline.run, cap)


def export_queues(settings: CommonSettings) -> PriorityQueues:
    """The export queues by priority."""
    return PriorityQueues(
        clients.sqs(),
        high=settings.export_high_queue_url,
        normal=settings.export_queue_url,
        low=settings.export_low_queue_url,
    )
