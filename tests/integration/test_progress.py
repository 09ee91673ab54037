"""Progress a person can trust: it never goes down, the estimated total converges without swinging,
progress agrees with processedRows / totalRows, and it reaches 100 only when the job is COMPLETED."""

from __future__ import annotations

import gzip
import random

import pytest

from impex import wiring
from impex.settings.workers import ImporterSettings
from tests.fakes import HookedJobStore
from tests.integration.importing import Importer

ROWS = 60_000


@pytest.fixture
def importer(api, put_dataset, stack) -> Importer:
    put_dataset(
        "items",
        fields=[{"name": "id", "type": "string", "required": True}, {"name": "note", "type": "string"}],
        keys=["id"],
    )
    return Importer(api, stack)


def uneven_csv() -> bytes:
    """Rows whose lengths vary from 5 to 300 bytes, in runs (so the mean row length drifts)."""
    generator = random.Random(7)
    lines = ["id,note"]
    for number in range(ROWS):
        width = generator.choice([0, 0, 10, 40, 280]) if number % 5000 < 2500 else generator.randint(0, 60)
        lines.append(f"r{number},{'x' * width}")
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("compressed", [False, True], ids=["csv", "csv.gz"])
def test_progress_never_goes_down_and_the_total_converges(importer, stack, compressed):
    # Given an uneven 60,000-row file, and progress due every 50 ms
    content = uneven_csv()
    name = "items.csv.gz" if compressed else "items.csv"
    created = importer.create(file_name=name, dataset="items")
    body = gzip.compress(content, mtime=0) if compressed else content
    importer.s3.put_object(Bucket=importer.bucket, Key=created["upload"]["key"], Body=body)
    seen: list[tuple[int, int, int]] = []  # (processedRows, totalRows, progress) as stored after each write

    def record(fields: dict) -> None:
        processed, total = fields["processed_rows"], fields["total_rows"]
        if total is not None:
            seen.append((processed, total, 100 if total == 0 else min(99, processed * 100 // total)))

    jobs = HookedJobStore(stack.physical["JobsTable"], on_progress=record)
    pipeline = wiring.import_pipeline(
        ImporterSettings.from_environment(progress_every_seconds=0.05), jobs=jobs
    )
    # When it is imported
    pipeline.run(jobs.claim(created["job"]["id"]))
    status = importer.status(created["job"]["id"])
    # Then there were many progress writes, and progress only went up, staying below 100 until the end
    assert len(seen) >= 5, seen
    percents = [percent for _, _, percent in seen]
    assert percents == sorted(percents) and max(percents) <= 99
    # and once a fifth of the file is done, every estimate is within 15% of the truth, never swinging
    settled = [total for processed, total, _ in seen if processed >= ROWS // 5]
    assert settled and all(abs(total - ROWS) <= 0.15 * ROWS for total in settled), settled
    # and the job ends COMPLETED at 100 with the exact count
    assert (status["status"], status["progress"], status["totalRows"]) == ("COMPLETED", 100, ROWS)
    assert status["processedRows"] == ROWS
