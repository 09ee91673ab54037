"""One large export, many workers: a CSV or JSON Lines export of a sharded dataset is split between
chunk jobs, each reading its share of the dataset's partitions in parallel with the others.

An export fans out when its order is not "key" (no order is promised), its format streams (CSV,
JSON Lines; JSON, XLSX and Parquet have one writer), its dataset has several record partitions and
is large: its first partition holds at least ``rows_per_shard`` records (one Query of keys only
tells). Chunk ``i`` of ``n`` reads every partition whose number is ``i`` modulo ``n``, merged by key
as one worker merges them all, and streams its share as its own object (multipart, as any export,
so it continues across invocations); only the first writes the CSV header. The last chunk to end
assembles the file: one multipart upload whose parts S3 copies from the chunks' objects, reading
only the bytes around a share smaller than a part, so every part but the last is at least 5 MB.
Rows are in key order within each chunk's share, and the shares follow one another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from impex.aws.files import FilesBucket, export_part_key
from impex.aws.queues import PriorityQueues
from impex.aws.records import RecordTable
from impex.errors import ImpexError
from impex.formats.file_format import FileFormat
from impex.jobs.model import ChunkRef, FanOut, Job, JobOutcome, JobStatus
from impex.jobs.results import ExportResult
from impex.jobs.store import JobNotProcessing, JobStore
from impex.observability import logger, metrics
from impex.pipelines.common import Stopped
from impex.pipelines.fanout import ChunkedJobs, chunk_of

STREAMED_FORMATS = frozenset({FileFormat.CSV, FileFormat.JSONL})


@dataclass(frozen=True)
class ExportFanOutLimits:
    """When an export fans out (its first partition's size), and over how many chunks at most."""

    workers: int
    rows_per_shard: int


# For whatever only ends fanned-out exports (the sweeper): it never splits one.
NO_EXPORT_SPLITTING = ExportFanOutLimits(workers=1, rows_per_shard=2**62)


class FanOutExports(ChunkedJobs):
    """Splits large exports between chunk jobs, and assembles the file when the last has ended."""

    def __init__(
        self, *, jobs: JobStore, files: FilesBucket, queues: PriorityQueues, limits: ExportFanOutLimits
    ) -> None:
        super().__init__(jobs=jobs, files=files, queues=queues)
        self.limits = limits

    def applies(self, job: Job, partitions: list[str], table: RecordTable) -> bool:
        """Whether this export is split: unordered, streamed, sharded, large, and not begun."""
        if self.limits.workers < 2 or job.chunk is not None or job.fanout is not None or job.checkpoint:
            return False
        if job.format not in STREAMED_FORMATS or job.export_options.order == "key" or len(partitions) < 2:
            return False
        return self._at_least(table, partitions[0], self.limits.rows_per_shard)

    @staticmethod
    def _at_least(table: RecordTable, partition: str, rows: int) -> bool:
        """Whether the partition holds at least ``rows`` records (its keys read, page by page)."""
        request = {
            "KeyConditionExpression": "pk = :partition",
            "ExpressionAttributeValues": {":partition": {"S": partition}},
            "ProjectionExpression": "sk",
        }
        seen, start = 0, None
        while seen < rows:
            items, start = table.page(request, start_key=start, limit=rows - seen)
            seen += len(items)
            if start is None:
                return seen >= rows
        return True

    def start(self, job: Job, partitions: list[str]) -> None:
        """Record the split on the job and start its chunk jobs."""
        chunks = min(self.limits.workers, len(partitions))
        try:
            parent = self.jobs.fan_out(job.id, FanOut(chunks=chunks), checkpoint={"fannedOut": True})
        except JobNotProcessing as gone:
            raise Stopped(gone.status) from None
        logger.info("export fanned out", extra={"chunks": chunks, "partitions": len(partitions)})
        metrics.add_metric(name="ExportsFannedOut", unit="Count", value=1)
        self.start_chunks(parent)

    def start_chunks(self, parent: Job) -> None:
        """Create the parent's chunk jobs that do not exist yet, and send each new one to the queue."""
        assert parent.fanout is not None and parent.file is not None
        count = parent.fanout.chunks
        for index, chunk_id in enumerate(parent.fanout.chunk_ids(parent.id)):
            part = parent.file.model_copy(update={"key": export_part_key(parent.tenant, parent.id, index)})
            ref = ChunkRef(parent_id=parent.id, index=index, of=count)
            self._create_chunk(chunk_of(parent, chunk_id, ref, file=part), parent, self.queues)
        self._after_creating_chunks(parent)

    def _end_parent(self, parent: Job, chunks: list[Job]) -> None:
        rows = sum(chunk.processed_rows for chunk in chunks)
        failed = self._failed_chunks(parent, chunks)
        try:
            if failed:
                first = failed[0]
                assert first.chunk is not None
                reason = first.error_message or "it was stopped before it ended; retry the job"
                message = f"part {first.chunk.index + 1} of {len(chunks)} failed: {reason}"
                self.jobs.fail(parent.id, message, outcome=JobOutcome(processed_rows=rows))
                metrics.add_metric(name="ExportsFailed", unit="Count", value=1)
            elif any(chunk.status is JobStatus.CANCELLED for chunk in chunks) and parent.cancel_requested_at:
                result = ExportResult(rows=rows, format=parent.format).as_dict()
                self.jobs.end_cancelled(parent.id, JobOutcome(result=result, processed_rows=rows))
            else:
                self._assemble(parent, chunks, rows)
        except ImpexError as error:  # another chunk's worker ended it first
            logger.info("the fanned-out export was ended already", extra={"reason": str(error)})
            return
        if not failed:  # a failed export keeps its completed shares for a retry (lifecycle expires them)
            self._clean_up(chunks)

    def _missing_files(self, parent: Job, chunks: list[Job], again: list[Job]) -> str | None:
        kept = [chunk.file.key for chunk in chunks if chunk.status is JobStatus.COMPLETED and chunk.file]
        if any(self.files.find(key) is None for key in kept):
            return "a share written by an earlier run has expired"
        return None

    def _resume_point(self, chunk: Job) -> dict[str, Any] | None:
        # A share's upload was aborted when its chunk failed or was cancelled: it is written again.
        return None

    def _assemble(self, parent: Job, chunks: list[Job], rows: int) -> None:
        """Join the chunks' objects into the export's file, and complete the parent with it."""
        assert parent.file is not None
        parts = [chunk.file for chunk in chunks if chunk.file is not None]
        kind = parts[0].content_type or "application/octet-stream"
        size = self.files.compose(
            parent.file.key, [part.key for part in parts], content_type=kind, file_name=parent.file.name
        )
        file = parent.file.model_copy(update={"size": size, "content_type": kind})
        result = ExportResult(
            rows=rows, format=parent.format, file_name=file.name, file_size=size, content_type=kind
        )
        self.jobs.complete(
            parent.id, JobOutcome(result=result.as_dict(), processed_rows=rows, total_rows=rows, file=file)
        )
        metrics.add_metric(name="ExportsCompleted", unit="Count", value=1)
        metrics.add_metric(name="RowsExported", unit="Count", value=rows)

    def _clean_up(self, chunks: list[Job]) -> None:
        """Delete the chunks' objects (the export's lifecycle rule catches what this misses)."""
        try:
            self.files.delete([chunk.file.key for chunk in chunks if chunk.file is not None])
        except Exception:
            logger.exception("could not delete a fanned-out export's parts")
