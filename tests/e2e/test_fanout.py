"""Fanned-out jobs over HTTP: a second local stack splits every text import into four chunks, and
every CSV export of a dataset of 100 records a shard or more into three, which its SQS pollers run
in parallel (as Lambda would); each job there ends exactly as on the session's stack, where one
worker runs it."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator

import pytest
import requests

from tests.e2e.conftest import (
    REQUEST_TIMEOUT,
    RunningStack,
    create_import,
    put_dataset,
    running_stack,
    upload,
    wait_for,
)

CHUNKS = 4


@pytest.fixture(scope="module")
def fanned_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    yield from running_stack(
        tmp_path_factory.mktemp("impex-fanned-home"),
        IMPEX_LOCAL_PARAMETERS=(
            f"FanOutThresholdBytes=1,FanOutWorkers={CHUNKS},ExportFanOutRowsPerShard=100,ExportFanOutWorkers=3"
        ),
        IMPEX_LOCAL_CONCURRENCY=str(CHUNKS),
    )


def customers(count: int) -> str:
    """Customers with quoted newlines, keys repeated far apart (so in other batches, and across what
    would be chunk boundaries by position), values that break constraints, and ragged rows."""
    lines = ["customerId,email,name,country,orders"]
    for i in range(count):
        key = f"C{(i - 500) if i % 89 == 88 else i:06d}"
        name = f'"Name {i}\nline two, quoted"' if i % 7 == 0 else f"Name {i}"
        country = "XX" if i % 53 == 52 else ("NZ", "AU", "GB")[i % 3]
        orders = "many" if i % 61 == 60 else str(i % 40)
        if i % 211 == 210:
            lines.append(f"{key},c{i}@example.com")
            continue
        lines.append(f"{key},c{i}@example.com,{name},{country},{orders}")
    return "\n".join(lines) + "\n"


def run_import(stack: RunningStack, tenant: str, content: str) -> dict:
    put_dataset(stack, tenant)
    created = create_import(stack, tenant, "customers.csv")
    assert upload(created, content, "customers.csv").status_code in (200, 204)
    return wait_for(stack, created["job"]["id"], tenant, timeout=240)


def download(stack: RunningStack, tenant: str, job_id: str, file: str) -> str:
    response = requests.get(
        f"{stack.api}/jobs/{job_id}/download",
        params={"file": file},
        headers=stack.headers(tenant),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.content.decode()


def exported_table(stack: RunningStack, tenant: str) -> list[dict[str, str]]:
    """Every record of the tenant's customers, exported as CSV through the API."""
    response = requests.post(
        f"{stack.api}/exports",
        headers=stack.headers(tenant),
        json={"dataset": "customers", "format": "csv"},
        timeout=REQUEST_TIMEOUT,
    )
    assert response.status_code in (200, 201, 202), response.text
    done = wait_for(stack, response.json()["job"]["id"], tenant, timeout=240)
    assert done["status"] == "COMPLETED", done
    file = requests.get(done["fileUrl"], timeout=30)
    text = file.content.decode()
    assert text.count("customerId,") == 1  # one header, however many workers wrote the file
    EXPORT_CHUNKS[stack.api] = EXPORT_CHUNKS.get(stack.api, 0) + len(chunk_jobs_of(stack, done["id"]))
    return sorted(csv.DictReader(io.StringIO(file.content.decode())), key=lambda row: row["customerId"])


EXPORT_CHUNKS: dict[str, int] = {}


def chunk_jobs_of(stack: RunningStack, job_id: str) -> list[str]:
    """The chunk jobs of a job, read from the stack's jobs table (the API never shows them)."""
    dynamodb, table = stack.jobs_table()
    return [
        f"{job_id}-{index:03d}"
        for index in range(10)
        if "Item" in dynamodb.get_item(TableName=table, Key={"id": {"S": f"{job_id}-{index:03d}"}})
    ]


def seen_by_a_person(stack: RunningStack, tenant: str, status: dict) -> dict:
    return {
        "status": status["status"],
        "counts": (status["processedRows"], status["totalRows"], status["progress"]),
        "result": status["result"],
        "report": download(stack, tenant, status["id"], "errors"),
        "table": exported_table(stack, tenant),
    }


def test_a_file_split_across_parallel_chunks_imports_as_one_worker_imports_it(local_stack, fanned_stack):
    # Given a file with quoted newlines, duplicates, bad values and ragged rows
    content = customers(3000)
    # When one worker imports it, and four chunks import it in parallel on the fanned-out stack
    single = run_import(local_stack, "one-worker", content)
    fanned = run_import(fanned_stack, "four-chunks", content)
    # Then both jobs, their row errors, error reports and tables are the same
    assert single["status"] == "COMPLETED", single
    assert single["result"]["failed"] > 100
    assert seen_by_a_person(fanned_stack, "four-chunks", fanned) == seen_by_a_person(
        local_stack, "one-worker", single
    )
    # And the fanned-out stack's import and export both ran as chunk jobs in parallel
    assert len(chunk_jobs_of(fanned_stack, fanned["id"])) == CHUNKS
    assert EXPORT_CHUNKS[fanned_stack.api] == 3 and EXPORT_CHUNKS[local_stack.api] == 0


def report_rows(stack: RunningStack, tenant: str, status: dict) -> list[list[str]]:
    """The job's error report (without its header line), or none when no row failed."""
    if not status["result"]["failed"]:
        return []
    return list(csv.reader(io.StringIO(download(stack, tenant, status["id"], "errors"))))[1:]


def test_a_cancel_stops_every_parallel_chunk_with_exact_counts(local_stack, fanned_stack):
    # Given a file one worker imports whole on the session's stack, for comparison
    content = customers(16_000)
    whole = run_import(local_stack, "cancels-one-worker", content)
    assert whole["status"] == "COMPLETED", whole
    whole_table = {row["customerId"]: row for row in exported_table(local_stack, "cancels-one-worker")}
    whole_report = report_rows(local_stack, "cancels-one-worker", whole)
    assert len(whole_report) == whole["result"]["failed"] > 0
    # And the same file as a fanned-out import whose chunks have just started
    tenant = "cancels"
    put_dataset(fanned_stack, tenant)
    created = create_import(fanned_stack, tenant, "customers.csv")
    job_id = created["job"]["id"]
    assert upload(created, content, "customers.csv").status_code in (200, 204)
    headers = fanned_stack.headers(tenant)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = requests.get(
            f"{fanned_stack.api}/jobs/{job_id}/status", headers=headers, timeout=REQUEST_TIMEOUT
        ).json()
        if status.get("totalRows"):  # split: the chunks are on their way
            break
        time.sleep(0.05)
    # When it is cancelled
    cancelled = requests.post(
        f"{fanned_stack.api}/jobs/{job_id}/cancel", headers=headers, timeout=REQUEST_TIMEOUT
    )
    assert cancelled.status_code == 202, cancelled.text
    # Then it ends CANCELLED, having written exactly what it says, and less than the file
    status = wait_for(fanned_stack, job_id, tenant, timeout=240)
    assert status["status"] == "CANCELLED", status
    table = exported_table(fanned_stack, tenant)
    assert status["result"]["written"] == len(table) < status["totalRows"]
    # And every record it wrote is the one worker's record for that key (the first occurrence's)
    assert [row for row in table if whole_table.get(row["customerId"]) != row] == []
    # And every row error it reports is the one worker's, for the same spreadsheet row, in row order
    report = report_rows(fanned_stack, tenant, status)
    assert len(report) == status["result"]["failed"]
    whole_by_row = {line[0]: line for line in whole_report}
    assert [line for line in report if whole_by_row.get(line[0]) != line] == []
    assert [int(line[0]) for line in report] == sorted(int(line[0]) for line in report)
