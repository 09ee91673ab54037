"""The export pipeline: query a dataset page by page, stream the file to S3, hand back the file.

CSV, JSON and JSON Lines stream straight into a multipart upload in constant memory and can carry on
in a fresh invocation (the checkpoint holds the LastEvaluatedKey, the upload id, its parts and the
few bytes not yet uploaded). XLSX and Parquet files are written to /tmp and uploaded at the end: they
cannot be appended to, so one export of those formats must finish within one invocation (a
15-minute Lambda writes millions of rows); if it cannot, the job fails saying so.
"""

from __future__ import annotations

import heapq
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from impex.aws.files import FilesBucket
from impex.aws.multipart import MultipartUpload
from impex.aws.queues import JobMessage, PriorityQueues
from impex.aws.records import RecordTable
from impex.datasets.decode import csv_text_decoder, json_object_decoder, row_decoder
from impex.datasets.model import Dataset, DatasetField
from impex.datasets.query import CompiledQuery, compile_query
from impex.datasets.records import RecordLayout
from impex.datasets.store import DatasetStore
from impex.errors import DatasetNotFound, IllegalTransition, ImpexError, InvalidInput
from impex.formats.columns import Column, ColumnKind
from impex.formats.delimited import CsvWriter
from impex.formats.errors import FileProblem
from impex.formats.jsonlines import JsonArrayWriter, JsonLinesWriter
from impex.formats.writers import Writer, WriterOptions, content_type, open_writer
from impex.jobs.model import Job, JobOutcome, JobStatus
from impex.jobs.options import ExportJobOptions
from impex.jobs.results import ExportResult
from impex.jobs.store import JobNotProcessing, JobStore
from impex.observability import logger, metrics
from impex.pipelines.common import (
    Deadline,
    RemainingTime,
    RunOutcome,
    Stopped,
    bulk_allocations,
    failure_message,
    requeue_after_failure,
)
from impex.pipelines.export_fanout import FanOutExports
from impex.pipelines.workers import job_duration
from impex.settings import ExternalTable

PROGRESS_EVERY_SECONDS = 2.0
SCAN_SEGMENTS = 4


@dataclass(frozen=True)
class ExportLimits:
    """How an export pages through its dataset and paces itself."""

    continuation_reserve_seconds: float = 60.0
    retry_base_seconds: float = 5.0
    # Items per Query/Scan page (None: DynamoDB's 1 MB pages); small pages make tests take several.
    page_size: int | None = None


@dataclass(frozen=True)
class _ExportPlan:
    """What one export reads and how it writes it."""

    layout: RecordLayout
    fields: list[DatasetField]
    query: CompiledQuery
    writer_options: WriterOptions
    content_type: str
    decode: Callable[[dict[str, Any]], list[Any]]


@dataclass
class _ExportRun:
    """One invocation's run of an export. Per-run state lives here, not on the pipeline: one pipeline
    serves every invocation of a process, and the local runtime runs several at once."""

    job: Job
    rows: int = 0
    uploads: list[MultipartUpload] = field(default_factory=list)


class _Handover(Exception):
    """Time is short: checkpoint and continue in a fresh invocation."""


class _FannedOut(Exception):
    """The export was split into chunk jobs, which carry on in parallel."""


# How a chunk's run can end for good (a continuation or a retry carries on later).
_CHUNK_ENDINGS = frozenset({RunOutcome.COMPLETED, RunOutcome.FAILED, RunOutcome.STOPPED})


class ExportPipeline:
    """Runs claimed export jobs."""

    def __init__(
        self,
        *,
        jobs: JobStore,
        datasets: DatasetStore,
        files: FilesBucket,
        records: Callable[[str], RecordTable],
        queues: PriorityQueues,
        records_table: str,
        external_tables: dict[str, ExternalTable],
        limits: ExportLimits,
        tmp_dir: Path | None = None,
        fanout: FanOutExports | None = None,
    ) -> None:
        self.jobs = jobs
        self.datasets = datasets
        self.files = files
        self._records = records
        self.queues = queues
        self._records_table = records_table
        self._external = external_tables
        self._limits = limits
        self._tmp = tmp_dir or Path(tempfile.gettempdir())
        self.fanout = fanout

    def run(self, job: Job, context: RemainingTime | None = None) -> RunOutcome:
        """Run one claimed export until it ends, hands over to a continuation, or stops."""
        outcome = self._run_job(job, context)
        if job.chunk is not None and self.fanout is not None and outcome in _CHUNK_ENDINGS:
            self.fanout.settle(job.chunk.parent_id)  # the last chunk to end assembles the file
        return outcome

    def _run_job(self, job: Job, context: RemainingTime | None) -> RunOutcome:
        logger.append_keys(job_id=job.id, tenant=job.tenant)
        if job.fanout is not None and self.fanout is not None:
            # A retried fanned-out export: its chunks carry on (a cancel since is passed on to them).
            return RunOutcome.FANNED_OUT if self.fanout.resume(job) else RunOutcome.FAILED
        run = _ExportRun(job)
        started = time.monotonic()
        try:
            with bulk_allocations:
                self._run(run, context)
        except _Handover:
            return RunOutcome.CONTINUED
        except _FannedOut:
            return RunOutcome.FANNED_OUT
        except Stopped as stopped:
            self._clean_up(run)
            if stopped.status is JobStatus.CANCELLED:
                self._end_cancelled(run)
            return RunOutcome.STOPPED
        except (InvalidInput, DatasetNotFound, FileProblem) as problem:
            self._clean_up(run)
            self._fail(job, problem.message)
            return RunOutcome.FAILED
        except Exception as error:
            return self._retry_or_fail(run, error)
        metrics.add_metric(name="ExportSeconds", unit="Seconds", value=time.monotonic() - started)
        return RunOutcome.COMPLETED

    # ---- the run -------------------------------------------------------------------------------

    def _run(self, run: _ExportRun, context: RemainingTime | None) -> None:
        job = run.job
        plan = self._plan(job)
        checkpoint = job.checkpoint or {}
        run.rows = int(checkpoint.get("rows", 0))
        if job.cancel_requested_at is not None:
            raise Stopped(JobStatus.CANCELLED)  # cancelled between invocations: end it, read no more
        table = self._records(plan.layout.table_name)
        if job.chunk is not None:
            # A chunk reads its share of the partitions: number i of n takes every n-th from i.
            share = plan.query.partitions[job.chunk.index :: job.chunk.of]
            plan = replace(plan, query=replace(plan.query, partitions=share))
        elif self.fanout is not None and self.fanout.applies(job, plan.query.partitions, table):
            self.fanout.start(job, plan.query.partitions)
            raise _FannedOut
        upload, writer = self._open(run, plan)
        deadline = Deadline(context, self._limits.continuation_reserve_seconds)
        last_progress = time.monotonic()
        try:
            write = _item_writer(writer, plan)
            for items, position in self._pages(table, plan.query, checkpoint.get("position", {})):
                write(items)
                run.rows += len(items)
                if time.monotonic() - last_progress >= PROGRESS_EVERY_SECONDS:
                    self._progress(job, run.rows)
                    last_progress = time.monotonic()
                else:
                    self._check_still_processing(job)
                if position.get("done"):
                    break
                if deadline.near():
                    self._hand_over(run, writer, upload, position)
            writer.finish()
        finally:
            writer.close()
        size = upload.complete()
        if checkpoint.get("pendingKey"):
            self.files.delete([checkpoint["pendingKey"]])
        self._complete(run, size, plan.content_type)

    def _plan(self, job: Job) -> _ExportPlan:
        """What the export reads (layout, fields, query) and how it writes (options, content type)."""
        options = job.export_options
        dataset = self.datasets.get(job.tenant, job.dataset)
        layout = RecordLayout.for_dataset(
            dataset, records_table=self._records_table, external_tables=self._external
        )
        fields = _fields(dataset, options.fields or dataset.field_names)
        writer_options = _writer_options(options, dataset)
        return _ExportPlan(
            layout=layout,
            fields=fields,
            query=compile_query(layout, options.filters, [f.name for f in fields]),
            writer_options=writer_options,
            content_type=content_type(job.format, writer_options),
            decode=row_decoder(fields),
        )

    def _open(self, run: _ExportRun, plan: _ExportPlan) -> tuple[MultipartUpload, Writer]:
        """The multipart upload and the writer, new or carried on from the checkpoint."""
        job = run.job
        assert job.file is not None
        checkpoint = job.checkpoint or {}
        if not checkpoint:
            # A fresh start: drop whatever an earlier, crashed attempt left half-uploaded.
            self.files.abort_uploads_under(job.file.key)
        pending = self.files.read_bytes(checkpoint["pendingKey"]) if checkpoint.get("pendingKey") else b""
        upload = self.files.multipart(
            job.file.key,
            content_type=plan.content_type,
            file_name=job.file.name,
            state=checkpoint.get("upload"),
            pending=pending,
        )
        run.uploads.append(upload)
        columns = [Column(f.name, ColumnKind(f.type.value)) for f in plan.fields]
        writer = open_writer(
            job.format,
            columns,
            upload,
            options=plan.writer_options,
            spool_dir=self._tmp,
            resume=checkpoint.get("writer") if checkpoint else _later_share(job),
        )
        return upload, writer

    def _end_cancelled(self, run: _ExportRun) -> None:
        """End a cancel-requested export CANCELLED with the rows it had read (its file is removed)."""
        result = ExportResult(rows=run.rows, format=run.job.format).as_dict()
        try:
            self.jobs.end_cancelled(run.job.id, JobOutcome(result=result, processed_rows=run.rows))
        except IllegalTransition as error:  # the sweeper took it back meanwhile; the next worker ends it
            logger.info("could not end the cancelled job", extra={"reason": str(error)})
            return
        logger.info("export cancelled; partial file removed")

    def _check_still_processing(self, job: Job) -> None:
        status = self.jobs.stop_signal(job.id)
        if status is not JobStatus.PROCESSING:
            raise Stopped(status)

    def _pages(
        self, table: RecordTable, query: CompiledQuery, position: dict[str, Any]
    ) -> Iterator[tuple[list[Any], dict[str, Any]]]:
        """Pages of items with the position after each (a LastEvaluatedKey, or one per Scan segment)."""
        if len(query.partitions) > 1:
            yield from _merged_pages(table, query, position, self._limits.page_size)
            return
        request = query.request()
        if query.uses_query:
            pages = _read_ahead(table, request, position.get("lastKey"), self._limits.page_size)
            for items, last_key in pages:
                yield items, {"lastKey": last_key, "done": last_key is None}
            return
        yield from _scan_pages(table, request, position)

    def _progress(self, job: Job, rows: int) -> None:
        try:
            self.jobs.record_progress(job.id, processed_rows=rows)
        except JobNotProcessing as gone:
            raise Stopped(gone.status) from None
        if job.chunk is not None and self.fanout is not None:
            self.fanout.note_progress(job, processed=rows)  # the parent's progress, and its heartbeat

    def _hand_over(
        self, run: _ExportRun, writer: Writer, upload: MultipartUpload, position: dict[str, Any]
    ) -> None:
        """Save where we are (query position, upload parts, unsent bytes) and continue in a new invocation."""
        job = run.job
        if not writer.resumable:
            raise FileProblem(
                f"a {job.format} export must finish within one invocation, and this one did not "
                f"({run.rows:,} rows written); export as CSV or JSON Lines, or add filters"
            )
        writer.close()  # a gzip member ends here; the next invocation starts a new one
        pending_key = _pending_key(job)
        self.files.put_bytes(pending_key, upload.pending(), content_type="application/octet-stream")
        checkpoint = {
            "position": position,
            "rows": run.rows,
            "upload": upload.state(),
            "pendingKey": pending_key,
            "writer": writer.resume_state(),
        }
        try:
            self.jobs.record_progress(job.id, processed_rows=run.rows, checkpoint=checkpoint)
        except JobNotProcessing as gone:
            raise Stopped(gone.status) from None
        self.jobs.hand_over(job.id)
        self.queues.send(JobMessage(job.id, job.tenant, continuation=True), priority=job.priority.value)
        logger.info("export handed over to a continuation", extra={"rows": run.rows})
        raise _Handover

    def _complete(self, run: _ExportRun, size: int, kind: str) -> None:
        job = run.job
        assert job.file is not None
        file = job.file.model_copy(update={"size": size, "content_type": kind})
        result = ExportResult(
            rows=run.rows, format=job.format, file_name=file.name, file_size=size, content_type=kind
        )
        outcome = JobOutcome(result=result.as_dict(), processed_rows=run.rows, total_rows=run.rows, file=file)
        try:
            self.jobs.complete(job.id, outcome)
        except IllegalTransition:
            # Taken back meanwhile (the sweeper): the file must not outlive this run; the next one writes it.
            self.files.delete([job.file.key])
            raise Stopped(self.jobs.stop_signal(job.id)) from None
        if job.chunk is not None:
            if self.fanout is not None:
                self.fanout.note_progress(job, processed=run.rows)
            return  # the parent counts as one export, when it ends
        metrics.add_metric(name="ExportsCompleted", unit="Count", value=1)
        metrics.add_metric(name="ExportDurationSeconds", unit="Seconds", value=job_duration(job))
        metrics.add_metric(name="RowsExported", unit="Count", value=run.rows)

    def _clean_up(self, run: _ExportRun) -> None:
        for started in run.uploads:
            started.abort()
        if run.job.file is not None:
            self.files.abort_uploads_under(run.job.file.key)
        self.files.delete([_pending_key(run.job)])

    def _fail(self, job: Job, message: str) -> None:
        logger.info("export failed", extra={"reason": message})
        try:
            # Its upload and unsent bytes were dropped (_clean_up): a retry writes the file afresh.
            self.jobs.fail(job.id, message, forget_checkpoint=True)
        except ImpexError:
            return
        metrics.add_metric(name="ExportsFailed", unit="Count", value=1)

    def _retry_or_fail(self, run: _ExportRun, error: Exception) -> RunOutcome:
        logger.exception("export attempt failed")
        job = run.job
        queue = self.queues.for_priority(job.priority.value)
        if requeue_after_failure(self.jobs, queue, job, error, base_seconds=self._limits.retry_base_seconds):
            return RunOutcome.RETRYING
        self._clean_up(run)
        self._fail(job, failure_message(job, error))
        return RunOutcome.FAILED


# Items a merged page holds; and the most a partition's Query page holds while merging (each
# partition keeps one page in memory).
MERGED_PAGE_ITEMS = 2500
MERGE_READ_ITEMS = 1000
# Memory, bounded by bytes too: a record may be 400 KB, so counts alone could hold gigabytes. A merged
# page is handed on at this many bytes of items; the shards' pages (two a shard: the one being merged
# and the one being read) share the other budget, each shard's Query Limit set from the bytes an item
# of its last page took (its first page is one item). Measured as the items' DynamoDB JSON, an upper
# bound of what they hold; a shard's page is at least one item, so S shards hold at least 2 x S items.
MERGED_PAGE_BYTES = 4 * 1024 * 1024
MERGE_HELD_BYTES = 16 * 1024 * 1024


def _merged_pages(
    table: RecordTable, query: CompiledQuery, position: dict[str, Any], page_size: int | None
) -> Iterator[tuple[list[Any], dict[str, Any]]]:
    """A sharded dataset: each partition's Query, merged by sort key, so the file is in key order as
    from one partition (a Query returns its partition in sort-key order; str order is UTF-8 byte
    order, DynamoDB's). The position is the last sort key written from each partition."""
    after: dict[str, str] = dict(position.get("after") or {})
    # Each partition supplies about its share of a merged page (twice it, for uneven shards): a
    # continuation starts every partition afresh, so a bigger read would be read again.
    wanted = page_size or MERGED_PAGE_ITEMS
    limit = max(10, min(MERGE_READ_ITEMS, 2 * wanted // len(query.partitions)))
    shard_page_bytes = MERGE_HELD_BYTES // (2 * len(query.partitions))

    def partition_items(partition: str) -> Iterator[tuple[str, str, Any]]:
        start = {"pk": {"S": partition}, "sk": {"S": after[partition]}} if partition in after else None
        items = _read_ahead_items(table, query.request(partition), start, limit, shard_page_bytes)
        return ((item["sk"]["S"], partition, item) for item in items)

    # Every partition's first page is asked for now, in parallel, before the merge waits on any.
    merged = heapq.merge(*[partition_items(p) for p in query.partitions], key=lambda entry: entry[0])
    page: list[Any] = []
    page_bytes = 0
    for sort_key, partition, item in merged:
        page.append(item)
        page_bytes += stored_bytes(item)
        after[partition] = sort_key
        if len(page) >= wanted or page_bytes >= MERGED_PAGE_BYTES:
            yield page, {"after": dict(after), "done": False}
            page, page_bytes = [], 0
    yield page, {"after": dict(after), "done": True}


def stored_bytes(item: dict[str, Any]) -> int:
    """An upper bound of the bytes a stored item takes: its DynamoDB JSON's length."""
    return len(orjson.dumps(item, default=_binary_as_text))


def _binary_as_text(value: Any) -> str:
    # botocore's client hands binary attributes over as bytes; they count by their length.
    if isinstance(value, bytes | bytearray | memoryview):
        return "\0" * len(value)
    raise TypeError(f"{type(value).__name__} is not an attribute value")


def _item_writer(writer: Writer, plan: _ExportPlan) -> Callable[[list[Any]], None]:
    """How a page of stored items reaches the writer: CSV and JSON writers take text made straight
    from the items (`csv_text_decoder`, `json_object_decoder`), every other writer typed rows."""
    if isinstance(writer, CsvWriter):
        cells = csv_text_decoder(plan.fields, plan.writer_options.neutralize_formulas)
        return lambda items: writer.write_cells([cells(item) for item in items])
    if isinstance(writer, JsonLinesWriter | JsonArrayWriter):
        objects = json_object_decoder(plan.fields)
        return lambda items: writer.write_objects([objects(item) for item in items])
    return lambda items: writer.write_rows([plan.decode(item) for item in items])


def _read_ahead(
    table: RecordTable, request: dict[str, Any], start: dict[str, Any] | None, limit: int | None
) -> Iterator[tuple[list[Any], Any]]:
    """One partition's pages in order, (items, LastEvaluatedKey); the next page is already being read
    while the caller writes this one, so request latency hides behind the writing. The first page is
    asked for at once, not at the first next(). At most two pages are held."""
    pending = table.page_later(request, start_key=start, limit=limit)

    def pages() -> Iterator[tuple[list[Any], Any]]:
        next_page = pending
        while True:
            items, last_key = next_page.result()
            if last_key is not None:
                next_page = table.page_later(request, start_key=last_key, limit=limit)
            yield items, last_key
            if last_key is None:
                return

    return pages()


def _read_ahead_items(
    table: RecordTable, request: dict[str, Any], start: dict[str, Any] | None, limit: int, page_bytes: int
) -> Iterator[Any]:
    """One partition's items in order, its next page read while this one is merged, each page's
    Limit set to keep it near ``page_bytes`` from what an item of the page before took (the first
    page is one item). Each item is let go as it is handed on, so at most two pages are held."""
    # Asked for at once, not at the first next(): every partition's first page is read in parallel.
    pending = table.page_later(request, start_key=start, limit=1)

    def items() -> Iterator[Any]:
        next_page: Future[tuple[list[Any], Any]] | None = pending
        while next_page is not None:
            page, last_key = next_page.result()
            next_page = None
            if last_key is not None:
                per_item = max(1, sum(stored_bytes(item) for item in page) // max(1, len(page)))
                next_limit = max(1, min(limit, page_bytes // per_item))
                next_page = table.page_later(request, start_key=last_key, limit=next_limit)
            page.reverse()
            while page:
                yield page.pop()

    return items()


def _scan_pages(
    table: RecordTable, request: dict[str, Any], position: dict[str, Any]
) -> Iterator[tuple[list[Any], dict[str, Any]]]:
    """An allow-listed table without a usable key condition: a Scan in parallel segments."""
    segments: dict[str, Any] = position.get("segments") or {str(i): None for i in range(SCAN_SEGMENTS)}
    while True:
        active = [(int(s), key) for s, key in segments.items() if key != "done"]
        if not active:
            return
        pages = table.pages_in_parallel([(request, key, (number, SCAN_SEGMENTS)) for number, key in active])
        merged: list[Any] = []
        for (number, _), (page_items, last_key) in zip(active, pages, strict=True):
            merged += page_items
            segments[str(number)] = last_key if last_key is not None else "done"
        done = all(key == "done" for key in segments.values())
        yield merged, {"segments": dict(segments), "done": done}


def _later_share(job: Job) -> dict[str, Any] | None:
    """What a chunk after the first opens its writer with: as if resumed, so it writes no header."""
    return {} if job.chunk is not None and job.chunk.index > 0 else None


def _pending_key(job: Job) -> str:
    return f"exports/{job.tenant}/{job.id}/.pending"


def _fields(dataset: Dataset, names: list[str]) -> list[DatasetField]:
    fields: list[DatasetField] = []
    for name in names:
        found = dataset.field(name)
        if found is None:
            raise InvalidInput(f"field '{name}' is no longer in dataset '{dataset.name}'")
        fields.append(found)
    return fields


def _writer_options(options: ExportJobOptions, dataset: Dataset) -> WriterOptions:
    return WriterOptions(
        delimiter=options.delimiter,
        bom=options.bom,
        gzip=options.gzip,
        neutralize_formulas=options.neutralize_formulas,
        sheet_name=dataset.name,
    )
