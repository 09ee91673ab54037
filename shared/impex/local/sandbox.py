"""Execution environments in their own processes, as Lambda runs them (IMPEX_LOCAL_WORKERS=processes).

Each sandbox is a spawned Python process that loads one function's handler once and serves its
invocations one at a time, as a warm Lambda execution environment does. A function keeps a pool of
idle sandboxes and starts another (a cold start) when every one is busy. Because they are
processes, a fanned-out job's chunks really run in parallel, and a sandbox can be killed as Lambda
kills one (out of memory, a crashed runtime, the timeout): the invocation ends with nothing after
the point it reached, its messages stay in flight until their visibility timeout, and the sweeper
has to find the job. Each live sandbox has a file named after its process id in
``{IMPEX_HOME}/sandboxes/{function}/``, so a person (or a test) can ``kill -9`` one.
"""

from __future__ import annotations

import importlib.util
import logging
import multiprocessing
import threading
import warnings
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import ModuleType
from typing import Any

from impex.local.context import LocalLambdaContext

log = logging.getLogger("impex.local")
_INIT_SECONDS = 120  # Lambda allows 10; a loaded two-core machine importing pyarrow can be slower
_SPAWN = multiprocessing.get_context("spawn")  # a fresh interpreter, as a cold start is (never a fork)


def load_handler(logical_id: str, path: Path) -> ModuleType:
    """Import a function's ``app.py`` (its module-level code runs: a cold start)."""
    module_spec = importlib.util.spec_from_file_location(f"impex_local_{logical_id}", path)
    assert module_spec and module_spec.loader
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _serve(logical_id: str, path: str, connection: Connection) -> None:
    """A sandbox's main loop: load the handler, then answer (event, timeout, memory) requests."""
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    module = load_handler(logical_id, Path(path))
    connection.send(("ready", None))
    while True:
        try:
            event, timeout, memory = connection.recv()
        except EOFError:  # the stack stopped
            return
        context = LocalLambdaContext(
            f"impex-{logical_id}", timeout_seconds=timeout, memory_limit_in_mb=memory
        )
        try:
            result = module.lambda_handler(event, context)
        except Exception:
            log.exception("%s: the invocation failed", logical_id)
            connection.send((False, None))
            continue
        connection.send((True, result))


class Sandbox:
    """One execution environment: a process serving one function's invocations one at a time."""

    def __init__(self, logical_id: str, path: Path, pid_folder: Path) -> None:
        self.logical_id = logical_id
        ours, theirs = _SPAWN.Pipe()
        self._connection = ours
        self._process: BaseProcess = _SPAWN.Process(
            target=_serve, args=(logical_id, str(path), theirs), name=f"sandbox-{logical_id}", daemon=True
        )
        self._process.start()
        theirs.close()
        assert self._process.pid is not None
        pid_folder.mkdir(parents=True, exist_ok=True)
        self._pid_file = pid_folder / str(self._process.pid)
        self._pid_file.write_text(f"{logical_id}\n")
        self._ready = False
        self._stop_lock = threading.Lock()
        self._stopped = False

    def invoke(self, event: dict[str, Any], timeout: float, memory: int) -> tuple[bool, Any, bool]:
        """(finished in time, result, still usable): a sandbox that died or overran is not reused."""
        try:
            if not self._ready:  # the cold start: Lambda's init phase, not counted in the timeout
                if not self._connection.poll(_INIT_SECONDS):
                    log.error("%s: the init phase took over %d seconds", self.logical_id, _INIT_SECONDS)
                    self.stop()
                    return False, None, False
                self._connection.recv()
                self._ready = True
            self._connection.send((event, timeout, memory))
            if not self._connection.poll(timeout):
                log.error("%s: Task timed out after %.2f seconds", self.logical_id, timeout)
                self.stop()
                return False, None, False
            finished, result = self._connection.recv()
        except (EOFError, OSError):
            log.error(
                "%s: the runtime exited (process %s, exit code %s): the invocation ended where it was",
                self.logical_id,
                self._process.pid,
                self._process.exitcode if not self._process.is_alive() else "unknown",
            )
            self.stop()
            return False, None, False
        return finished, result, True

    @property
    def alive(self) -> bool:
        """Whether the process is still running."""
        return self._process.is_alive()

    def kill(self) -> None:
        """End the process and nothing else: the thread invoking it sees the runtime exit and stops it."""
        with self._stop_lock:
            if not self._stopped and self._process.is_alive():
                self._process.kill()

    def stop(self) -> None:
        """End the process (if it is still there) and forget it; once only, from whichever thread."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
            if self._process.is_alive():
                self._process.kill()
            self._process.join(timeout=10)
            self._connection.close()
            self._pid_file.unlink(missing_ok=True)


class SandboxPool:
    """A function's sandboxes: an idle one serves the next invocation, or a new one starts."""

    def __init__(self, logical_id: str, path: Path, pid_folder: Path) -> None:
        self._logical_id = logical_id
        self._path = path
        self._pid_folder = pid_folder
        self._idle: list[Sandbox] = []
        self._all: set[Sandbox] = set()
        self._lock = threading.Lock()
        self._stopped = False

    def invoke(self, event: dict[str, Any], timeout: float, memory: int) -> tuple[bool, Any]:
        """(finished in time, result) from an idle sandbox, or from a new one if none is idle; once
        the pool is stopped, (False, None) at once (a poller that just received a batch starts no
        process the stack would leave behind)."""
        sandbox = self._idle_sandbox()
        if sandbox is None:
            with self._lock:
                if self._stopped:
                    return False, None
            sandbox = Sandbox(self._logical_id, self._path, self._pid_folder)
            with self._lock:
                started_after_stop = self._stopped
                if not started_after_stop:
                    self._all.add(sandbox)
            if started_after_stop:
                sandbox.stop()
                return False, None
        finished, result, usable = sandbox.invoke(event, timeout, memory)
        with self._lock:
            keep = usable and not self._stopped
            if keep:
                self._idle.append(sandbox)
            else:
                self._all.discard(sandbox)
        if not keep:
            sandbox.stop()  # dead already, or the pool stopped while it ran
        return finished, result

    def _idle_sandbox(self) -> Sandbox | None:
        """An idle sandbox that is still alive: one that died while idle is replaced, never invoked
        (Lambda routes no invocation to a dead execution environment)."""
        while True:
            with self._lock:
                if not self._idle:
                    return None
                sandbox = self._idle.pop()
                if sandbox.alive:
                    return sandbox
                self._all.discard(sandbox)
            sandbox.stop()

    def stop(self) -> None:
        """Stop every sandbox of the function. A busy one is only killed: the thread invoking it is
        reading its pipe, and closing that from here would race its read (a closed descriptor's
        number is soon another's)."""
        with self._lock:
            self._stopped = True
            idle, busy = self._idle, self._all.difference(self._idle)
            self._idle, self._all = [], set()
        for sandbox in idle:
            sandbox.stop()
        for sandbox in busy:
            sandbox.kill()
