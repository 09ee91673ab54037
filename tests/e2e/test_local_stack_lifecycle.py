"""The local stack cannot hang: a taken port ends it within seconds naming the port and its variable,
SIGINT and SIGTERM always stop it, and its gateway holds a burst of concurrent clients."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import ROOT
from tests.e2e.conftest import IMPEX, REQUEST_TIMEOUT, RunningStack


def serve(tmp_path, **environment: str) -> subprocess.Popen[str]:
    env = {**os.environ, "IMPEX_HOME": str(tmp_path), "IMPEX_LOCAL_PORT": "0", "IMPEX_LOCAL_AWS_PORT": "0"}
    env.update(environment)
    env.pop("AWS_ENDPOINT_URL", None)
    return subprocess.Popen(
        [IMPEX, "local", "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize("variable", ["IMPEX_LOCAL_AWS_PORT", "IMPEX_LOCAL_PORT"])
def test_a_taken_port_fails_within_seconds_naming_the_port_and_its_variable(tmp_path, taken_port, variable):
    # Given a port something else listens on
    started = time.monotonic()
    # When the stack is told to use it
    process = serve(tmp_path, **{variable: str(taken_port)})
    try:
        _, stderr = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("the stack hung on a taken port")
    # Then it exits at once with a message naming the port and the variable that moves it
    assert process.returncode == 2
    assert f"port {taken_port} on 127.0.0.1 is in use" in stderr and variable in stderr
    assert time.monotonic() - started < 20


def test_the_default_aws_port_is_not_localstacks():
    from impex.local.runtime import DEFAULT_AWS_PORT

    assert DEFAULT_AWS_PORT != 4566


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_sigint_and_sigterm_stop_the_stack_within_seconds(tmp_path, stop_signal):
    # Given a running stack
    process = serve(tmp_path)
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    ready = None
    while time.monotonic() < deadline and not ready:
        ready = re.search(r"ready: api=(\S+) aws=(\S+)", process.stdout.readline())
    assert ready, "the stack did not start"
    # When it is sent the signal
    sent = time.monotonic()
    process.send_signal(stop_signal)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"{stop_signal.name} did not stop the stack")
    # Then it stopped within seconds, cleanly, and released both ports
    assert process.returncode == 0 and time.monotonic() - sent < 15
    for url in ready.groups():
        port = int(url.split(":")[2].split("/")[0])
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"


def test_the_gateway_holds_200_concurrent_clients(local_stack: RunningStack):
    # Given 200 clients that all connect at the same instant
    host, port = "127.0.0.1", int(local_stack.api.split(":")[2].split("/")[0])
    path = local_stack.api.split(str(port), 1)[1] + "/jobs"
    token = local_stack.headers("burst")["Authorization"]
    barrier = threading.Barrier(200)

    def call(_: int) -> tuple[float, bytes]:
        barrier.wait()
        started = time.monotonic()
        with socket.create_connection((host, port), timeout=30) as connection:
            connected = time.monotonic() - started
            lines = [f"GET {path} HTTP/1.1", f"Host: {host}", f"Authorization: {token}", "Connection: close"]
            connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            return connected, connection.recv(12)

    # When they all call the API
    with ThreadPoolExecutor(max_workers=200) as pool:
        results = list(pool.map(call, range(200)))
    # Then every connection was accepted at once (a full listen backlog drops SYNs, which the client
    # only retries after a second, or resets them), and every request was answered
    slowest = max(connected for connected, _ in results)
    assert slowest < 0.9, f"a connection took {slowest:.2f} s to be accepted: the listen backlog overflowed"
    assert [status[-3:] for _, status in results] == [b"200"] * 200


def test_a_refused_token_gets_the_documented_error_shape_with_its_reason(local_stack: RunningStack):
    cases = {
        None: "no Authorization header",
        "Basic abc": "not 'Bearer <token>'",
        "Bearer nope": "malformed",
    }
    for header, reason in cases.items():
        response = requests.get(
            f"{local_stack.api}/jobs",
            headers={"Authorization": header} if header else {},
            timeout=REQUEST_TIMEOUT,
        )
        assert response.status_code == 401
        body = response.json()
        assert body["error"]["code"] == "unauthenticated" and reason in body["error"]["message"], body


@pytest.mark.parametrize("method", ["TRACE", "PATCH", "QUERY", "PROPFIND"])
def test_any_method_gets_a_json_answer_from_the_api_not_a_501_page(local_stack: RunningStack, method):
    response = requests.request(
        method, f"{local_stack.api}/datasets", headers=local_stack.headers("m"), timeout=REQUEST_TIMEOUT
    )
    assert response.status_code == 405 and response.headers["Allow"] == "GET"
    assert response.headers["Content-Type"] == "application/json"


def test_a_content_length_that_is_no_number_is_not_a_dropped_connection(local_stack: RunningStack):
    host, port = "127.0.0.1", int(local_stack.api.split(":")[2].split("/")[0])
    path = local_stack.api.split(str(port), 1)[1] + "/openapi.json"
    with socket.create_connection((host, port), timeout=REQUEST_TIMEOUT) as connection:
        connection.sendall(
            f"GET {path} HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\nConnection: close\r\n\r\n".encode()
        )
        assert connection.recv(12).startswith(b"HTTP/1.")
