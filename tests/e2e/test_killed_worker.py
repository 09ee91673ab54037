"""A killed worker over HTTP: a stack whose workers run in sandbox processes of their own
(IMPEX_LOCAL_WORKERS=processes), as Lambda runs them, so a chunk's worker can be killed as Lambda
kills one (SIGKILL: nothing after the point it reached runs, its message stays in flight)."""

from __future__ import annotations

import os
import signal
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
from tests.e2e.test_fanout import customers, run_import, seen_by_a_person

CHUNKS = 4
STUCK_AFTER_SECONDS = 15  # a live chunk checkpoints every 2 s
STALE_PID = 5_000_000  # above Linux's largest pid_max (2**22): never a live process


@pytest.fixture(scope="module")
def sandboxed_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    home = tmp_path_factory.mktemp("impex-sandboxed-home")
    # A listing left by an earlier stack that was killed: its process ids are no sandboxes any more
    (home / "sandboxes" / "ImporterFunction").mkdir(parents=True)
    (home / "sandboxes" / "ImporterFunction" / str(STALE_PID)).write_text("ImporterFunction\n")
    yield from running_stack(
        home,
        IMPEX_LOCAL_WORKERS="processes",
        IMPEX_LOCAL_PARAMETERS=(
            f"FanOutThresholdBytes=1,FanOutWorkers={CHUNKS},StuckAfterSeconds={STUCK_AFTER_SECONDS}"
        ),
        IMPEX_LOCAL_CONCURRENCY=str(CHUNKS),
    )


def chunk_statuses(stack: RunningStack, job_id: str) -> dict[str, str]:
    """Each chunk job's status, read from the stack's jobs table (the API never shows chunks)."""
    dynamodb, table = stack.jobs_table()
    statuses = {}
    for index in range(CHUNKS):
        chunk_id = f"{job_id}-{index:03d}"
        item = dynamodb.get_item(TableName=table, Key={"id": {"S": chunk_id}}, ConsistentRead=True)
        if "Item" in item:
            statuses[chunk_id] = item["Item"]["status"]["S"]
    return statuses


def kill_sandboxes(stack: RunningStack, function: str) -> list[int]:
    """SIGKILL every live sandbox of ``function``; their process ids."""
    folder = stack.home / "sandboxes" / function
    killed = []
    for pid_file in folder.iterdir() if folder.exists() else []:
        try:
            os.kill(int(pid_file.name), signal.SIGKILL)
        except ProcessLookupError:
            continue
        killed.append(int(pid_file.name))
    return killed


def test_killed_chunk_workers_are_swept_and_the_import_ends_as_one_worker_ends_it(
    local_stack, sandboxed_stack
):
    # Given a file imported by one worker
    content = customers(12_000)
    single = run_import(local_stack, "one-worker-large", content)
    assert single["status"] == "COMPLETED", single
    # And the same file importing as four chunks, each in a sandbox process, all claimed and writing
    tenant = "killed-workers"
    put_dataset(sandboxed_stack, tenant)
    created = create_import(sandboxed_stack, tenant, "customers.csv")
    job_id = created["job"]["id"]
    assert upload(created, content, "customers.csv").status_code in (200, 204)
    headers = sandboxed_stack.headers(tenant)
    deadline = time.monotonic() + 180
    status: dict = {}
    while time.monotonic() < deadline:
        status = requests.get(
            f"{sandboxed_stack.api}/jobs/{job_id}/status", headers=headers, timeout=REQUEST_TIMEOUT
        ).json()
        if status.get("processedRows"):  # a chunk has checkpointed...
            chunks = chunk_statuses(sandboxed_stack, job_id)
            # ...and every chunk is claimed: a sandbox killed holding an unclaimed chunk's message
            # leaves that chunk PENDING until the sweeper's lost-message rule (20 minutes)
            if len(chunks) == CHUNKS and "PENDING" not in chunks.values():
                break
        time.sleep(0.05)
    assert status["status"] == "PROCESSING" and 0 < status["processedRows"] < status["totalRows"], status
    # When every importer sandbox is killed, as Lambda kills a runtime, mid-way through the chunks
    # (the stack listed only its own: the stale listing it started with is gone)
    listed = {int(p.name) for p in (sandboxed_stack.home / "sandboxes" / "ImporterFunction").iterdir()}
    assert listed and STALE_PID not in listed
    assert kill_sandboxes(sandboxed_stack, "ImporterFunction")
    orphaned = [
        chunk for chunk, state in chunk_statuses(sandboxed_stack, job_id).items() if state == "PROCESSING"
    ]
    assert orphaned, "every chunk had finished before the kill"
    # Then the sweeper finds their heartbeats stopped and requeues them from their checkpoints (their
    # messages stay in flight for the queue's 90 minutes), and the import ends as one worker's did
    try:
        fanned = wait_for(sandboxed_stack, job_id, tenant, timeout=90)
    except AssertionError:
        print("CHUNKS", chunk_statuses(sandboxed_stack, job_id), "ORPHANED", orphaned)
        print("LOG", sandboxed_stack.home)
        raise
    assert all(chunk_statuses(sandboxed_stack, job_id)[chunk] == "COMPLETED" for chunk in orphaned)
    got = seen_by_a_person(sandboxed_stack, tenant, fanned)
    want = seen_by_a_person(local_stack, "one-worker-large", single)
    # The rows a dead worker wrote after its chunk's last checkpoint are written again, and counted as
    # updated (as one worker's replay after a crash counts them): at most the rows no checkpoint had
    # covered when the workers were killed (the checkpoints only grow, so at least those seen before)
    replayed = got["result"].pop("updated")
    assert 0 <= replayed <= status["totalRows"] - status["processedRows"], (replayed, status)
    got["result"]["created"] += replayed
    want["result"]["created"] += want["result"].pop("updated")
    assert got == want
