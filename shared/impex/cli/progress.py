"""Progress bars for jobs (rich)."""

from __future__ import annotations

from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from impex.cli.client import ImpexClient


class JobProgress:
    """One bar per followed job, fed by its status (progress %, rows)."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
        )

    def __enter__(self) -> JobProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.__exit__(*exc)

    def follow(self, client: ImpexClient, job: dict[str, Any], *, label: str) -> dict[str, Any]:
        """Wait for the job, moving its bar as rows are processed."""
        task = self._progress.add_task(label, total=None, status=job["status"])

        def update(status: dict[str, Any]) -> None:
            total = status.get("totalRows")
            self._progress.update(
                task, completed=status.get("processedRows", 0), total=total, status=status["status"]
            )

        return client.wait(job["id"], on_progress=update)
