"""The local stack, started once per test session as a user would start it (`impex local serve`)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from impex.local.auth import LocalIssuer
from tests.conftest import ROOT

IMPEX = str(Path(sys.executable).with_name("impex"))
# How long one HTTP request to the local stack may take: its sandboxes share two cores with moto,
# the pytest workers and each other, so a request that starts a sandbox can take well over 10 s on
# a loaded machine (seen in `make test`). The tests assert what the answers say, never their speed.
REQUEST_TIMEOUT = 60


@dataclass
class RunningStack:
    api: str
    aws: str
    bucket: str
    home: Path
    process: subprocess.Popen[str]

    def token(self, tenant: str) -> str:
        return LocalIssuer(self.home).token(tenant)

    def headers(self, tenant: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(tenant)}"}

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` on the stack's moto, with its local credentials."""
        return boto3.client(
            service,
            endpoint_url=self.aws,
            region_name="us-east-1",
            aws_access_key_id="impex-local",
            aws_secret_access_key="impex-local",
        )

    def jobs_table(self) -> tuple[Any, str]:
        """The DynamoDB client and the name of the stack's jobs table (chunk jobs are only there)."""
        dynamodb = self.client("dynamodb")
        return dynamodb, next(name for name in dynamodb.list_tables()["TableNames"] if "JobsTable" in name)

    def cli(self, *args: str, tenant: str = "cli", check: bool = False) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "IMPEX_URL": self.api,
            "IMPEX_TOKEN": self.token(tenant),
            "IMPEX_HOME": str(self.home),
        }
        for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            env.pop(name, None)
        return subprocess.run(
            [IMPEX, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=180, check=check
        )


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    yield from running_stack(tmp_path_factory.mktemp("impex-home"))


def running_stack(home: Path, **extra_env: str) -> Iterator[RunningStack]:
    """`impex local serve` on free ports with its home in ``home``, until the generator is closed."""
    env = {
        **os.environ,
        "IMPEX_HOME": str(home),
        "IMPEX_LOCAL_AWS_PORT": "0",
        "IMPEX_LOCAL_SWEEP_SECONDS": "2",
        **extra_env,
    }
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        env.pop(name, None)
    process = subprocess.Popen(
        [IMPEX, "local", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    ready = None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        ready = re.search(r"ready: api=(\S+) aws=(\S+) bucket=(\S+)", line)
        if ready:
            break
    if not ready:
        process.kill()
        pytest.fail("the local stack did not start")
    # Keep draining its output so the pipe never fills, into stack.log in its home (for a failure).
    import threading

    def drain(log: Path) -> None:
        with log.open("a") as out:
            for line in process.stdout:  # type: ignore[union-attr]
                out.write(line)
                out.flush()

    threading.Thread(target=drain, args=(home / "stack.log",), daemon=True).start()
    stack = RunningStack(ready.group(1), ready.group(2), ready.group(3), home, process)
    yield stack
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("the local stack did not stop on Ctrl-C")
    for url in (stack.api, stack.aws):
        port = int(url.split(":")[2].split("/")[0])
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open after shutdown"


SCHEMA = json.loads((ROOT / "examples" / "customers.schema.json").read_text())
CSV = (
    "customerId,email,name,country,orders\nC000001,a@example.com,Ann,NZ,3\nC000002,b@example.com,Bob,AU,x\n"
    'C000003,c@example.com,"Cat, ""the"" third",NZ,7\n'
)


def put_dataset(stack: RunningStack, tenant: str) -> None:
    """The customers dataset from examples/, for ``tenant``."""
    response = requests.put(
        f"{stack.api}/datasets/customers", json=SCHEMA, headers=stack.headers(tenant), timeout=REQUEST_TIMEOUT
    )
    assert response.status_code in (200, 201), response.text


def create_import(stack: RunningStack, tenant: str, file_name: str) -> dict:
    """POST /imports for the customers dataset; the created job and its presigned upload."""
    response = requests.post(
        f"{stack.api}/imports",
        json={"dataset": "customers", "fileName": file_name},
        headers=stack.headers(tenant),
        timeout=REQUEST_TIMEOUT,
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def upload(created: dict, content: str | bytes, file_name: str = "upload.csv") -> requests.Response:
    """POST the file with the presigned form, as a browser or requests would."""
    data = content.encode() if isinstance(content, str) else content
    return requests.post(
        created["upload"]["url"],
        data=created["upload"]["fields"],
        files={"file": (file_name, data)},
        timeout=30,
    )


def wait_for(stack: RunningStack, job_id: str, tenant: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = requests.get(
            f"{stack.api}/jobs/{job_id}/status", headers=stack.headers(tenant), timeout=REQUEST_TIMEOUT
        ).json()
        if status["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            return status  # type: ignore[no-any-return]
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish: {status}")
