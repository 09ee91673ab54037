"""An import's row errors: spooled to /tmp while rows are read, uploaded as parts at each checkpoint,
and assembled into one CSV report (row, error, then the row's original values) when the job ends."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

from impex.aws.files import FilesBucket, error_part_key, error_report_key
from impex.datasets.convert import to_string
from impex.datasets.mapping import CellIssue
from impex.formats.columns import SourceRow
from impex.formats.values import neutralize
from impex.jobs.model import FileRef, Job


class ErrorRows:
    """Failed rows of this invocation, spooled to /tmp as CSV until the next checkpoint uploads them."""

    def __init__(self, directory: Path) -> None:
        self._handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in close()
            "w+", newline="", encoding="utf-8", dir=directory, suffix=".csv", delete=True
        )
        self._writer = csv.writer(self._handle)
        self.pending = 0

    def add(self, row: SourceRow, issues: list[CellIssue]) -> None:
        """Spool one failed row: its number, what is wrong with it, then its original values."""
        message = "; ".join(f"{i.column}: {i.message}" if i.column else i.message for i in issues)
        # The report opens in spreadsheets: its text is neutralised as CSV exports are.
        cells = ["" if cell is None else neutralize(to_string(cell)) for cell in row.cells]
        self._writer.writerow([row.number, neutralize(message), *cells])
        self.pending += 1

    def take(self) -> bytes:
        """The spooled rows (and reset)."""
        self._handle.flush()
        self._handle.seek(0)
        data = self._handle.read().encode("utf-8")
        self._handle.seek(0)
        self._handle.truncate()
        self.pending = 0
        return data

    def close(self) -> None:
        """Delete the spool file."""
        self._handle.close()


def report_header(header: list[str]) -> str:
    """The report's first line: row, error, then the file's column names."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow(["row", "error", *(neutralize(name) for name in header)])
    return buffer.getvalue()


class ErrorReport:
    """The error report of one import job, kept as numbered parts until it is assembled."""

    def __init__(self, files: FilesBucket, job: Job) -> None:
        self._files = files
        self._job = job

    def upload_part(self, errors: ErrorRows, part: int) -> bool:
        """Upload what ``errors`` has spooled as part ``part``; False when there was nothing."""
        if not errors.pending:
            return False
        key = error_part_key(self._job.tenant, self._job.id, part)
        self._files.put_bytes(key, errors.take(), content_type="text/csv")
        return True

    def assemble(self, parts: int, header: list[str]) -> FileRef | None:
        """Join the parts into one CSV under its header (and delete them); None when no row failed."""
        if parts == 0:
            return None
        body = bytearray(report_header(header).encode("utf-8"))
        keys = [error_part_key(self._job.tenant, self._job.id, n) for n in range(parts)]
        for key in keys:
            body += self._files.read_bytes(key)
        report = self.store(bytes(body))
        self._files.delete(keys)
        return report

    def store(self, body: bytes) -> FileRef:
        """Store the job's whole report (its header line included)."""
        key = error_report_key(self._job.tenant, self._job.id)
        self._files.put_bytes(key, body, content_type="text/csv")
        return FileRef(
            bucket=self._files.name,
            key=key,
            name=f"{self._job.id}-errors.csv",
            size=len(body),
            content_type="text/csv",
        )
