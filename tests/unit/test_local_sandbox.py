"""The local stack's sandbox processes behave as Lambda execution environments do."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

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


def pool_of(tmp_path: Path) -> SandboxPool:
    (tmp_path / "app.py").write_text(HANDLER)
    return SandboxPool("TestFunction", tmp_path / "app.py", tmp_path / "pids")


def test_a_warm_sandbox_serves_the_next_invocation_and_lists_its_pid(tmp_path):
    # Given a function's sandbox pool
    pool = pool_of(tmp_path)
    try:
        # When it is invoked twice, one after the other
        first = pool.invoke({"n": 1}, timeout=30, memory=512)
        second = pool.invoke({"n": 2}, timeout=30, memory=512)
        # Then one process served both, with the function's timeout on its context, and it is listed
        assert first[0] and second[0]
        assert first[1]["pid"] == second[1]["pid"] != os.getpid()
        assert second[1]["echo"] == {"n": 2} and 0 < second[1]["remaining_ms"] <= 30_000
        assert [p.name for p in (tmp_path / "pids").iterdir()] == [str(first[1]["pid"])]
    finally:
        pool.stop()
    # And stopping the pool ends its processes and their listing
    assert not list((tmp_path / "pids").iterdir())


def test_a_sandbox_killed_while_idle_is_replaced_not_invoked(tmp_path):
    # Given a warm sandbox
    pool = pool_of(tmp_path)
    try:
        pid = pool.invoke({}, timeout=30, memory=512)[1]["pid"]
        # When it is killed while idle
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        # Then the next invocation runs, in a new process
        finished, result = pool.invoke({}, timeout=30, memory=512)
        assert finished and result["pid"] != pid
    finally:
        pool.stop()


def test_a_sandbox_killed_mid_invocation_ends_it_unfinished_and_the_next_one_runs(tmp_path):
    # Given an invocation that takes a while
    pool = pool_of(tmp_path)
    try:
        pid = pool.invoke({}, timeout=30, memory=512)[1]["pid"]
        outcome: list[tuple[bool, object]] = []
        running = threading.Thread(target=lambda: outcome.append(pool.invoke({"sleep": 20}, 30, 512)))
        running.start()
        time.sleep(0.5)
        # When its process is killed, as Lambda kills a runtime
        os.kill(pid, signal.SIGKILL)
        running.join(timeout=10)
        # Then the invocation ends at once, unfinished, and a new process serves the next one
        assert not running.is_alive() and outcome == [(False, None)]
        finished, result = pool.invoke({}, timeout=30, memory=512)
        assert finished and result["pid"] != pid
    finally:
        pool.stop()


def test_an_invocation_over_its_timeout_is_cut_off_and_its_sandbox_replaced(tmp_path):
    # Given a function with a one-second timeout, warm
    pool = pool_of(tmp_path)
    try:
        pid = pool.invoke({}, timeout=1, memory=512)[1]["pid"]
        # When an invocation runs past it
        started = time.monotonic()
        outcome = pool.invoke({"sleep": 20}, timeout=1, memory=512)
        # Then it times out within the timeout, and the sandbox is not reused
        assert outcome == (False, None) and time.monotonic() - started < 5
        assert pool.invoke({}, timeout=1, memory=512)[1]["pid"] != pid
    finally:
        pool.stop()


def test_a_handler_error_fails_the_invocation_and_keeps_the_sandbox(tmp_path):
    # Given a warm sandbox
    pool = pool_of(tmp_path)
    try:
        pid = pool.invoke({}, timeout=30, memory=512)[1]["pid"]
        # When the handler raises
        outcome = pool.invoke({"fail": True}, timeout=30, memory=512)
        # Then the invocation failed, and the same process serves the next one (as a warm Lambda)
        assert outcome == (False, None)
        assert pool.invoke({}, timeout=30, memory=512)[1]["pid"] == pid
    finally:
        pool.stop()
