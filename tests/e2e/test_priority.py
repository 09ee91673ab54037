"""Priority on the local stack: a high-priority export submitted after 50 normal ones starts before
most of them, because high, normal and low have their own queues and event source mappings. The
stack runs one invocation per event source at a time, so that the backlog is still there when the
high-priority job arrives (with more, 50 small exports drain before it is submitted); the tenant
cap's part in priority is tested on moto (tests/integration/test_queue_semantics.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.e2e.conftest import (
    CSV,
    REQUEST_TIMEOUT,
    RunningStack,
    create_import,
    put_dataset,
    running_stack,
    upload,
    wait_for,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    yield from running_stack(tmp_path_factory.mktemp("impex-priority-home"), IMPEX_LOCAL_CONCURRENCY="1")


def test_a_high_priority_job_overtakes_a_backlog(local_stack):
    tenant = "priority"
    put_dataset(local_stack, tenant)
    headers = local_stack.headers(tenant)
    created = create_import(local_stack, tenant, "p.csv")
    upload(created, CSV, "p.csv")
    assert wait_for(local_stack, created["job"]["id"], tenant)["status"] == "COMPLETED"
    body = {"dataset": "customers", "format": "xlsx"}
    normal = [
        requests.post(
            f"{local_stack.api}/exports", json=body, headers=headers, timeout=REQUEST_TIMEOUT
        ).json()["job"]["id"]
        for _ in range(50)
    ]
    high = requests.post(
        f"{local_stack.api}/exports",
        json={**body, "priority": "high"},
        headers=headers,
        timeout=REQUEST_TIMEOUT,
    ).json()["job"]["id"]
    statuses = {job_id: wait_for(local_stack, job_id, tenant, timeout=300) for job_id in [*normal, high]}
    assert all(s["status"] == "COMPLETED" for s in statuses.values())
    started_before_high = sum(
        1 for job_id in normal if statuses[job_id]["startedAt"] < statuses[high]["startedAt"]
    )
    assert started_before_high < 25, f"{started_before_high} of 50 normal jobs started before the high one"
