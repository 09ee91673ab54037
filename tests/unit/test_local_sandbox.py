"""The local stack's sandbox processes behave as Lambda execution environments do."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from impex.local.sandbox import SandboxPool

HANDLER = """
import os, time

def lambda_handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("fail"):
        raise RuntimeError("the handler failed")
    return {"pid": os.getpid(), "remaining_ms": context.get_remaining_time_in_millis(), "echo": event}
"""


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[SandboxPool]:
    """A function's sandbox pool, stopped after the test."""
    (tmp_path / "app.py").write_text(HANDLER)
    sandboxes = SandboxPool("TestFunction", tmp_path / "app.py", tmp_path / "pids")
    yield sandboxes
    sandboxes.stop()


def warm_pid(pool: SandboxPool, timeout: float = 30) -> int:
    """Invoke once; the process id of the sandbox that served it (now idle and warm)."""
    finished, result = pool.invoke({}, timeout=timeout, memory=512)
    assert finished
    return int(result["pid"])


def test_a_warm_sandbox_serves_the_next_invocation_and_lists_its_pid(pool, tmp_path):
    # Given a function's sandbox pool
    # When it is invoked twice, one after the other
    first = pool.invoke({"n": 1}, timeout=30, memory=512)
    second = pool.invoke({"n": 2}, timeout=30, memory=512)
    # Then one process served both, with the function's timeout on its context, and it is listed
    assert first[0] and second[0]
    assert first[1]["pid"] == second[1]["pid"] != os.getpid()
    assert second[1]["echo"] == {"n": 2} and 0 < second[1]["remaining_ms"] <= 30_000
    assert [p.name for p in (tmp_path / "pids").iterdir()] == [str(first[1]["pid"])]
    # And stopping the pool ends its processes and their listing
    pool.stop()
    assert not list((tmp_path / "pids").iterdir())


def test_a_sandbox_killed_while_idle_is_replaced_not_invoked(pool):
    # Given a warm sandbox
    pid = warm_pid(pool)
    # When it is killed while idle
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    # Then the next invocation runs, in a new process
    finished, result = pool.invoke({}, timeout=30, memory=512)
    assert finished and result["pid"] != pid


def test_a_sandbox_killed_mid_invocation_ends_it_unfinished_and_the_next_one_runs(pool):
    # Given an invocation that takes a while
    pid = warm_pid(pool)
    outcome: list[tuple[bool, object]] = []
    running = threading.Thread(target=lambda: outcome.append(pool.invoke({"sleep": 20}, 30, 512)))
    running.start()
    time.sleep(0.5)
    # When its process is killed, as Lambda kills a runtime
    os.kill(pid, signal.SIGKILL)
    running.join(timeout=10)
    # Then the invocation ends at once, unfinished, and a new process serves the next one
    assert not running.is_alive() and outcome == [(False, None)]
    assert warm_pid(pool) != pid


def test_an_invocation_over_its_timeout_is_cut_off_and_its_sandbox_replaced(pool):
    # Given a function with a one-second timeout, warm
    pid = warm_pid(pool, timeout=1)
    # When an invocation runs past it
    started = time.monotonic()
    outcome = pool.invoke({"sleep": 20}, timeout=1, memory=512)
    # Then it times out within the timeout, and the sandbox is not reused
    assert outcome == (False, None) and time.monotonic() - started < 5
    assert warm_pid(pool, timeout=1) != pid


def test_a_handler_error_fails_the_invocation_and_keeps_the_sandbox(pool):
    # Given a warm sandbox
    pid = warm_pid(pool)
    # When the handler raises
    outcome = pool.invoke({"fail": True}, timeout=30, memory=512)
    # Then the invocation failed, and the same process serves the next one (as a warm Lambda)
    assert outcome == (False, None)
    assert warm_pid(pool) == pid


# The stop can land before the invocation takes its sandbox, while it sends, or while it waits: a
# stop that closed a busy sandbox's pipe under its reader failed ~1 in 40 there (EBADF).
@pytest.mark.parametrize("stop_after_seconds", [0, 0.02, 0.5])
def test_a_stopped_pool_starts_no_process_and_ends_the_one_that_was_running(
    pool, tmp_path, stop_after_seconds
):
    # Given an invocation running when the pool is stopped (as the stack stops)
    pid = warm_pid(pool)
    outcome: list[tuple[bool, object]] = []
    running = threading.Thread(target=lambda: outcome.append(pool.invoke({"sleep": 20}, 30, 512)))
    running.start()
    time.sleep(stop_after_seconds)
    pool.stop()
    running.join(timeout=10)
    # Then that invocation ended unfinished, with its process
    assert outcome == [(False, None)]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    # And an invocation after the stop (a poller's last batch) is refused without a new process
    assert pool.invoke({}, timeout=30, memory=512) == (False, None)
    assert not list((tmp_path / "pids").iterdir())
