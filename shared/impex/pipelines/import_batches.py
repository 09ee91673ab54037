"""The per-batch work of an import: conversion, duplicate checks, the existence read and the writes.

The pipeline's thread parses and converts rows. Each batch is then applied in two steps: the
duplicate check against earlier batches runs on one ordered thread, batch after batch in file order;
the existence read and the writes run on a small pool, several batches at once, so that with a few
milliseconds a request the I/O of several batches overlaps the conversion of the next (one batch
in flight leaves a worker waiting on latency half the time). Batches never share a key once the
ordered step has dropped later occurrences, so running their I/O at once changes no count. Counts and
row errors reach the job's progress only on the pipeline's thread, oldest batch first, in
``drain()`` and ``process()``, so the error report stays in row order and nothing else is shared.

How many batches are in flight adapts (BatchDepth): more while the pipeline's thread waits on the
oldest batch (latency is what holds the import back), fewer while DynamoDB throttles.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from typing import Any

from impex.aws.attributes import MAX_ITEM_BYTES, item_size
from impex.aws.records import RecordTable
from impex.datasets.columnar import ColumnarConverter
from impex.datasets.convert import to_string
from impex.datasets.mapping import CellIssue, RowConverter
from impex.datasets.records import JOB_ATTRIBUTE, METADATA, ROW_ATTRIBUTE, RecordLayout
from impex.formats.columns import SourceRow
from impex.formats.jsonlines import UNKNOWN_KEY_SAMPLE, bad_line_reason
from impex.formats.source import ResumePoint
from impex.jobs.model import Job, JobStatus
from impex.jobs.options import ImportOptions
from impex.jobs.results import ImportResult
from impex.pipelines.common import Stopped
from impex.pipelines.error_report import ErrorRows
from impex.pipelines.seen import SeenKeys, digest

FIRST_ERRORS = 100

Rejection = tuple[SourceRow, list[CellIssue]]


@dataclass
class ImportProgress:
    """Everything a checkpoint holds: where the reader is and what has been counted so far."""

    header: list[str] | None = None
    last_row: int = 0
    offset: int | None = None
    processed: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0
    written: int = 0
    error_parts: int = 0
    first_errors: list[dict[str, Any]] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)
    unknown_keys: int = 0
    unknown_key_sample: list[str] = field(default_factory=list)
    # The mapping in use once the header is read: a job that is cancelled or fails reports it too.
    mapping: dict[str, str] | None = None

    @classmethod
    def from_checkpoint(cls, checkpoint: dict[str, Any] | None) -> ImportProgress:
        """The progress saved on the job, or a fresh start."""
        if not checkpoint:
            return cls()
        known = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in checkpoint.items() if key in known})

    def as_checkpoint(self) -> dict[str, Any]:
        """JSON-able state to store on the job."""
        return asdict(self)

    def resume_point(self) -> ResumePoint:
        """Where the reader carries on from."""
        return ResumePoint(header=self.header, last_row=self.last_row, offset=self.offset)

    def note_unknown_keys(self, count: int, names: list[str]) -> None:
        """Add keys outside the header (JSON Lines) to the count, keeping at most 20 names."""
        self.unknown_keys += count
        for name in names:
            if len(self.unknown_key_sample) < UNKNOWN_KEY_SAMPLE and name not in self.unknown_key_sample:
                self.unknown_key_sample.append(name)

    def result(self, options: ImportOptions, mapping: dict[str, str] | None) -> ImportResult:
        """The job's result: every count so far, the mapping used and the first row errors."""
        return ImportResult(
            rows_total=self.processed,
            created=self.created,
            updated=self.updated,
            skipped=self.skipped,
            failed=self.failed,
            written=self.written,
            unknown_columns=self.unknown_columns,
            unknown_keys=self.unknown_keys,
            unknown_key_sample=self.unknown_key_sample,
            mapping=mapping or {},
            first_errors=self.first_errors,
            mode=options.mode,
            dry_run=options.dry_run,
        )


def tolerance_message(options: ImportOptions, failed: int, processed: int, written: int) -> str | None:
    """Why an import must stop, when more rows failed than maxErrors / maxErrorRate allow; else None."""
    done = f"{written} rows were written before it stopped"
    if options.max_errors is not None and failed > options.max_errors:
        return f"stopped: {failed} rows failed, more than maxErrors={options.max_errors}; {done}"
    rate = failed * 100 / processed if processed >= 100 else None
    if options.max_error_rate is not None and rate is not None and rate > options.max_error_rate:
        return (
            f"stopped: {rate:.1f}% of rows failed, more than maxErrorRate={options.max_error_rate}%; {done}"
        )
    return None


@dataclass(slots=True)
class _Candidate:
    row: SourceRow
    identity: str
    key: dict[str, Any]
    item: dict[str, Any]


@dataclass
class _Outcome:
    """What the writer threads did with one batch (added to the progress, oldest batch first)."""

    created: int = 0
    updated: int = 0
    skipped: int = 0
    written: int = 0
    rejected: list[Rejection] = field(default_factory=list)


@dataclass
class _InFlight:
    """A batch sent to the writer threads: what it will do, the row errors found before it was sent,
    and the job-status check that runs after its writes (if one was asked for)."""

    applied: Future[_Outcome]
    rejected: list[Rejection]
    status: Future[JobStatus | None] | None = None


class BatchDepth:
    """How many batches may be in flight, between 1 and ``most``: one more each time the pipeline's
    thread had to wait for the oldest batch (its I/O, not the conversion, is what holds the import
    back: each request takes milliseconds), one fewer each time a request was throttled since the
    last batch (against a hot partition more in flight is only more refusals, and a cancel waits for
    whatever is in flight)."""

    WAIT_TO_GROW_SECONDS = 0.002  # the pipeline's thread blocked this long: I/O-bound

    def __init__(self, most: int, *, start: int = 3) -> None:
        self.most = max(1, most)
        self.size = min(self.most, max(1, start))

    def note(self, *, waited_seconds: float, throttled: bool) -> None:
        """Adapt to the last batch: how long the pipeline waited for room, and whether any request
        was throttled meanwhile."""
        if throttled:
            self.size = max(1, self.size - 1)
        elif waited_seconds >= self.WAIT_TO_GROW_SECONDS:
            self.size = min(self.most, self.size + 1)


def _done(outcome: _Outcome) -> Future[_Outcome]:
    finished: Future[_Outcome] = Future()
    finished.set_result(outcome)
    return finished


class BatchWriter:
    """Applies batches of rows to the table according to the job's write mode."""

    def __init__(
        self,
        job: Job,
        options: ImportOptions,
        layout: RecordLayout,
        table: RecordTable,
        progress: ImportProgress,
        errors: ErrorRows,
        *,
        batches_in_flight: int = 1,
        columnar: bool = True,
    ) -> None:
        self.job = job
        self.options = options
        self.layout = layout
        self.table = table
        self.progress = progress
        self.errors = errors
        self._keyed = bool(layout.dataset.keys)
        self._columnar_wanted = columnar and ColumnarConverter.supports(layout)
        self._columnar: ColumnarConverter | None = None
        self.depth = BatchDepth(batches_in_flight)
        self._throttles = table.window.throttles  # seen by the last batch
        self._ordered = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-order")
        self._io = ThreadPoolExecutor(max_workers=self.depth.most, thread_name_prefix="batch-writer")
        self._checks = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-status")
        self._in_flight: deque[_InFlight] = deque()
        # Identities seen by this invocation (used on the ordered thread only), on disk so memory
        # stays flat for any file size.
        self._seen = SeenKeys()
        names = [f.name for f in layout.dataset.fields] + list(METADATA) + layout.key_names
        # Names, plus room for the partition key's value and the attributes' type overhead.
        self._value_budget = MAX_ITEM_BYTES - sum(len(name.encode()) for name in names) - 1024

    # ---- the pipeline's thread -------------------------------------------------------------------

    def process(self, rows: list[SourceRow], converter: RowConverter) -> None:
        """Convert a batch, then send it to the writer threads (once at most depth - 1 are in flight)."""
        rejected: list[Rejection] = []
        candidates: list[_Candidate] = []
        in_batch: dict[str, int] = {}
        layout, job_id, keyed = self.layout, self.job.id, self._keyed
        columnar = self._columnar_for(converter)
        prepared = columnar.prepare(rows) if columnar is not None else [None] * len(rows)
        for row, ready in zip(rows, prepared, strict=True):
            if ready is None:
                reason = bad_line_reason(row.cells)
                if reason is not None:
                    rejected.append((row, [CellIssue("", "", reason)]))
                    continue
                record, issues = converter.convert(row.cells)
                if issues:
                    rejected.append((row, issues))
                    continue
                identity = layout.identity(record, job_id, row.number)
                key = layout.key(identity, record)
                item = layout.item(record, key, job_id, row.number)
            else:
                identity, key, item = ready
            if keyed:
                first = in_batch.get(identity)
                if first is not None:
                    rejected.append((row, [_duplicate(identity, first)]))
                    continue
                in_batch[identity] = row.number
            if _may_exceed(row.cells, self._value_budget) and item_size(item) > MAX_ITEM_BYTES:
                rejected.append(
                    (row, [CellIssue("", "", "the record is larger than DynamoDB's 400 KB item limit")])
                )
                continue
            candidates.append(_Candidate(row, identity, key, item))
        # The oldest batches are applied first, so that at most depth - 1 stay in flight; a cancel
        # one of them saw after its writes stops here, before this batch is sent.
        started = time.monotonic()
        self._settle(keep=self.depth.size - 1)
        throttles = self.table.window.throttles
        self.depth.note(waited_seconds=time.monotonic() - started, throttled=throttles > self._throttles)
        self._throttles = throttles
        self.progress.processed += len(rows)  # only once this batch will be applied (not if stopped)
        if candidates:
            fresh = self._ordered.submit(self._fresh, candidates)
            self._in_flight.append(_InFlight(self._io.submit(self._apply, fresh), rejected))
        else:
            self._in_flight.append(_InFlight(_done(_Outcome()), rejected))  # recorded in its turn

    def _columnar_for(self, converter: RowConverter) -> ColumnarConverter | None:
        """The fast path for this converter's rows (made once), if it applies."""
        if not self._columnar_wanted:
            return None
        if self._columnar is None or self._columnar.converter is not converter:
            self._columnar = ColumnarConverter(converter, self.layout, self.job.id)
        return self._columnar

    def watch(self, stop_signal: Callable[[], JobStatus | None]) -> None:
        """Check the job's status once the last batch sent has been written; a cancel seen there
        stops the import before the batch after the ones in flight is sent."""
        if not self._in_flight or self._in_flight[-1].status is not None:
            self._in_flight.append(_InFlight(_done(_Outcome()), []))
        last = self._in_flight[-1]
        written = last.applied

        def check() -> JobStatus | None:
            wait([written])  # its failure, if any, is the batch's to raise
            return stop_signal()

        last.status = self._checks.submit(check)

    def drain(self) -> None:
        """Wait for every batch in flight (re-raising a failure) and count what they did; raise
        Stopped if the job left PROCESSING meanwhile."""
        self._settle(keep=0)

    def close(self) -> None:
        """Stop the writer threads and drop the seen keys."""
        self._checks.shutdown(wait=True)
        self._io.shutdown(wait=True)
        self._ordered.shutdown(wait=True)
        self._seen.close()

    def _settle(self, keep: int) -> None:
        """Count the oldest batches in flight, in order, until only ``keep`` remain; raise Stopped
        (once everything in flight is counted: it lands anyway) if a status check saw the job stop."""
        while len(self._in_flight) > keep:
            status = self._count_oldest()
            if status is not JobStatus.PROCESSING:
                with suppress(Exception):  # the job is stopping: count what landed, up to a failure
                    while self._in_flight:
                        self._count_oldest()
                raise Stopped(status)

    def _count_oldest(self) -> JobStatus | None:
        """Wait for the oldest batch in flight and add what it did to the progress; its status check."""
        oldest = self._in_flight[0]
        outcome = oldest.applied.result()  # a failure stays at the head: a later drain() raises it again
        status = oldest.status.result() if oldest.status is not None else JobStatus.PROCESSING
        self._in_flight.popleft()
        progress = self.progress
        progress.created += outcome.created
        progress.updated += outcome.updated
        progress.skipped += outcome.skipped
        progress.written += outcome.written
        # In row order, so the error report reads like the file.
        rejected = oldest.rejected + outcome.rejected
        self._record(sorted(rejected, key=lambda rejection: rejection[0].number))
        return status

    def _record(self, rejected: list[Rejection]) -> None:
        progress = self.progress
        for row, issues in rejected:
            progress.failed += 1
            self.errors.add(row, issues)
            for issue in issues:
                if len(progress.first_errors) >= FIRST_ERRORS:
                    break
                progress.first_errors.append(
                    {
                        "row": row.number,
                        "column": issue.column,
                        "value": issue.value,
                        "message": issue.message,
                    }
                )

    # ---- the writer threads (ordered step, then I/O) ----------------------------------------------

    def _fresh(self, candidates: list[_Candidate]) -> tuple[list[_Candidate], _Outcome]:
        """The ordered step: drop (as row errors) keys an earlier batch had."""
        outcome = _Outcome()
        if self._keyed:
            candidates = self._first_occurrences(candidates, outcome)
        return candidates, outcome

    def _apply(self, ordered: Future[tuple[list[_Candidate], _Outcome]]) -> _Outcome:
        """The I/O step, once the batch is ordered: the existence read and the writes."""
        candidates, outcome = ordered.result()
        if not candidates:
            return outcome
        existing = self.table.get_many([c.key for c in candidates], projection=self._existence_projection())
        to_write = [
            candidate
            for candidate, stored in zip(candidates, existing, strict=True)
            if self._should_write(candidate, stored, outcome)
        ]
        if self.options.dry_run or not to_write:
            return outcome
        mode = self.options.mode
        if mode == "insert":
            self._insert(to_write, outcome)
        elif mode == "merge":
            self._merge(to_write, outcome)
        else:
            self.table.put_many([c.item for c in to_write])
            outcome.written += len(to_write)
        return outcome

    def _existence_projection(self) -> list[str] | None:
        """What the existence read needs of each stored item (skip_unchanged compares the whole item)."""
        if self.options.mode == "skip_unchanged":
            return None
        return [JOB_ATTRIBUTE, ROW_ATTRIBUTE] if self.layout.tracks_rows else None

    def _should_write(self, candidate: _Candidate, stored: dict[str, Any] | None, outcome: _Outcome) -> bool:
        """Decide one record against what is stored (counting it as created, updated, skipped or failed)."""
        mode = self.options.mode
        if stored is not None and self.layout.tracks_rows and _written_by(stored, self.job.id):
            stored_row = int(stored[ROW_ATTRIBUTE]["N"])
            if stored_row < candidate.row.number and self._keyed:
                # Written by an earlier row of this same job, in an earlier invocation.
                outcome.rejected.append((candidate.row, [_duplicate(candidate.identity, stored_row)]))
                return False
        if mode == "insert" and stored is not None and not _replay_of(stored, self.job.id, candidate):
            outcome.rejected.append((candidate.row, [_exists(candidate.identity)]))
            return False
        if mode == "skip_unchanged" and stored is not None and self._unchanged(stored, candidate):
            outcome.skipped += 1
            return False
        if stored is None:
            outcome.created += 1
        else:
            outcome.updated += 1
        return True

    def _first_occurrences(self, candidates: list[_Candidate], outcome: _Outcome) -> list[_Candidate]:
        """Drop (as row errors) the records an earlier batch of this invocation already had."""
        digests = [digest(c.identity) for c in candidates]
        earlier = self._seen.first_rows(digests)
        fresh: list[_Candidate] = []
        new: list[tuple[int, int]] = []
        for candidate, key_digest in zip(candidates, digests, strict=True):
            first = earlier.get(key_digest)
            if first is not None:
                outcome.rejected.append((candidate.row, [_duplicate(candidate.identity, first)]))
                continue
            fresh.append(candidate)
            new.append((key_digest, candidate.row.number))
        self._seen.record(new)
        return fresh

    def _unchanged(self, stored: dict[str, Any], candidate: _Candidate) -> bool:
        return self.layout.record_of(stored) == self.layout.record_of(candidate.item)

    def _insert(self, candidates: list[_Candidate], outcome: _Outcome) -> None:
        first_key = self.layout.key_names[0]
        results: list[bool]
        if self.layout.tracks_rows:
            condition = (
                f"attribute_not_exists(#{first_key}) OR (#{JOB_ATTRIBUTE} = :job AND #{ROW_ATTRIBUTE} = :row)"
            )
            results = self.table.put_if(
                [
                    (c.item, condition, {":job": {"S": self.job.id}, ":row": {"N": str(c.row.number)}})
                    for c in candidates
                ]
            )
        else:
            results = self.table.put_if(
                [(c.item, f"attribute_not_exists(#{first_key})", {}) for c in candidates]
            )
        for candidate, written in zip(candidates, results, strict=True):
            if written:
                outcome.written += 1
            else:
                # Created by someone else between our check and our write.
                outcome.created -= 1
                outcome.rejected.append((candidate.row, [_exists(candidate.identity)]))

    def _merge(self, candidates: list[_Candidate], outcome: _Outcome) -> None:
        updates = []
        for candidate in candidates:
            attributes = {name: value for name, value in candidate.item.items() if name not in candidate.key}
            updates.append((candidate.key, attributes))
        self.table.update_many(updates)
        outcome.written += len(candidates)


def _duplicate(identity: str, first_row: int) -> CellIssue:
    return CellIssue("", identity, f"duplicate key: the same record as row {first_row}")


def _exists(identity: str) -> CellIssue:
    return CellIssue("", identity, "a record with this key already exists")


def _may_exceed(cells: list[Any], value_budget: int) -> bool:
    """Cheap pre-check: whether a row's values could take more than ``value_budget`` bytes stored
    (UTF-8 takes at most 4 bytes a character), so that only such rows are measured exactly."""
    try:
        characters = len("".join(cells))
    except TypeError:  # typed cells (XLSX, JSON Lines)
        characters = sum(len(to_string(cell)) for cell in cells if cell is not None)
    return characters * 4 > value_budget


def _written_by(stored: dict[str, Any], job_id: str) -> bool:
    return stored.get(JOB_ATTRIBUTE, {}).get("S") == job_id and ROW_ATTRIBUTE in stored


def _replay_of(stored: dict[str, Any], job_id: str, candidate: _Candidate) -> bool:
    """The stored item is this very row, written by an earlier invocation of this job (a replay)."""
    return _written_by(stored, job_id) and int(stored[ROW_ATTRIBUTE]["N"]) == candidate.row.number
