"""The lean client's multiplexer (record batches): one I/O thread for every request in flight, over
real loopback sockets. It sends no more than the gate allows, nothing before its time, replaces a
kept-alive connection the server closed, gives up on an answer that never comes, and starts its own
thread in a forked child; every failure reaches the caller's future."""

from __future__ import annotations

import multiprocessing
import socket
import struct
import threading
import time
from concurrent.futures import wait

import botocore.credentials
import pytest
from botocore.exceptions import ClientError

from impex.aws.dynamo_http import RawDynamoDB
from impex.aws.records import InFlightWindow
from tests.integration.loopback import read_request

CREDENTIALS = botocore.credentials.Credentials("testing", "testing").get_frozen_credentials


def _answer(status: str, body: bytes) -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


INVALID = _answer("400 Bad Request", b'{"__type":"x#ValidationException","message":"no"}')


class SlowEndpoint:
    """Answers every request after ``delay`` seconds, a thread a connection; it counts the requests
    it holds at once, the connections, and when each request arrived. ``silent`` never answers;
    ``one_each`` closes a connection after its first answer without saying so (``reset``: with a
    TCP reset, so the client's next send on it fails)."""

    def __init__(
        self, delay: float = 0.02, *, silent: bool = False, one_each: bool = False, reset: bool = False
    ) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.delay, self.silent, self.one_each, self.reset = delay, silent, one_each or reset, reset
        self.lock = threading.Lock()
        self.active = self.most = self.connections = 0
        self.arrivals: list[tuple[float, bytes]] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _address = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            while (request := read_request(connection)) is not None:
                body = request.partition(b"\r\n\r\n")[2]
                with self.lock:
                    self.arrivals.append((time.monotonic(), body))
                    self.active += 1
                    self.most = max(self.most, self.active)
                if self.silent:
                    time.sleep(30)
                    return
                time.sleep(self.delay)
                with self.lock:
                    self.active -= 1
                connection.sendall(_answer("200 OK", b'{"UnprocessedItems":{}}'))
                if self.one_each:
                    if self.reset:
                        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return

    def client(self, timeout: float = 30.0) -> RawDynamoDB:
        return RawDynamoDB(f"http://127.0.0.1:{self.port}", "us-east-1", CREDENTIALS, timeout=timeout)

    def close(self) -> None:
        self.listener.close()


def batch(number: int) -> dict:
    return {"RequestItems": {"records": [{"PutRequest": {"Item": {"pk": {"S": f"k{number}"}}}}]}}


def io_threads() -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name == "dynamodb-io"]


def test_many_requests_go_from_one_thread_and_the_gate_bounds_what_is_in_flight():
    # Given an endpoint that takes 20 ms an answer, and a gate of 3
    endpoint = SlowEndpoint()
    client = endpoint.client()
    gate = InFlightWindow(3)
    threads_before = len(io_threads())
    # When 30 requests are handed over at once
    answers = client.submit_many("batch_write_item", [batch(n) for n in range(30)], gate=gate)
    wait(answers, timeout=30)
    # Then every one is answered, never more than 3 were in flight, over at most 3 connections,
    # from one new I/O thread; and the gate has all its room back
    assert [answer.result() for answer in answers] == [{"UnprocessedItems": {}}] * 30
    assert endpoint.most == 3 and endpoint.connections <= 3
    assert len(io_threads()) == threads_before + 1
    assert [gate.try_acquire() for _ in range(4)] == [True, True, True, False]
    endpoint.close()


def test_a_request_is_not_sent_before_its_backoff_is_over():
    # Given an endpoint that answers at once
    endpoint = SlowEndpoint(delay=0)
    client = endpoint.client()
    # When one request may go now and another only 0.3 s from now
    handed_over = time.monotonic()
    answers = client.submit_many(
        "batch_write_item", [batch(1), batch(2)], not_before=[0.0, handed_over + 0.3]
    )
    wait(answers, timeout=10)
    # Then the first arrived at once and the second not before its time
    arrived = {body: at for at, body in endpoint.arrivals}
    first = next(at for body, at in arrived.items() if b'"k1"' in body)
    second = next(at for body, at in arrived.items() if b'"k2"' in body)
    assert first - handed_over < 0.25 <= 0.3 <= second - handed_over
    endpoint.close()


def test_a_kept_alive_connection_the_server_closed_is_replaced():
    # Given an endpoint that answers one request per connection, then closes it without saying so
    endpoint = SlowEndpoint(delay=0, one_each=True)
    client = endpoint.client()
    # When requests go one after another (each after the last was answered, on its connection)
    answers = []
    for number in range(3):
        (answer,) = client.submit_many("batch_write_item", [batch(number)])
        answers.append(answer.result(timeout=10))
        time.sleep(0.05)  # the server has closed the connection by now
    # Then each was answered, on a fresh connection, and sent exactly once
    assert answers == [{"UnprocessedItems": {}}] * 3
    assert endpoint.connections == 3 and len(endpoint.arrivals) == 3
    endpoint.close()


def test_a_kept_alive_connection_the_server_reset_is_replaced_when_the_send_fails():
    # Given an endpoint that resets each connection after its first answer
    endpoint = SlowEndpoint(delay=0, reset=True)
    client = endpoint.client()
    gate = InFlightWindow(4)
    (first,) = client.submit_many("batch_write_item", [batch(1)], gate=gate)
    assert first.result(timeout=10) == {"UnprocessedItems": {}}
    time.sleep(0.1)  # the reset has arrived: a send on that connection fails at once
    # When the next request goes, with nothing else in flight
    (second,) = client.submit_many("batch_write_item", [batch(2)], gate=gate)
    # Then it is sent again on a fresh connection and answered (it does not wait for ever), once
    assert second.result(timeout=10) == {"UnprocessedItems": {}}
    assert endpoint.connections == 2 and len(endpoint.arrivals) == 2
    assert gate.throttles == 0
    endpoint.close()


def test_an_answer_that_never_comes_times_out_and_gives_the_gate_back():
    # Given an endpoint that reads requests and never answers, and a client that waits 0.3 s
    endpoint = SlowEndpoint(silent=True)
    client = endpoint.client(timeout=0.3)
    gate = InFlightWindow(4)
    # When two requests are sent
    started = time.monotonic()
    answers = client.submit_many("batch_write_item", [batch(1), batch(2)], gate=gate)
    done, _ = wait(answers, timeout=10)
    # Then both fail with a timeout soon after 0.3 s, and the gate took them as throttled ones
    assert len(done) == 2 and all(isinstance(answer.exception(), TimeoutError) for answer in answers)
    assert time.monotonic() - started < 5
    assert gate.throttles == 2 and gate.size < 4
    endpoint.close()


def test_an_error_answer_and_a_refused_connection_reach_the_caller():
    # Given an endpoint that refuses the request as invalid
    listener = socket.create_server(("127.0.0.1", 0))

    def refuse() -> None:
        connection, _address = listener.accept()
        with connection:
            read_request(connection)
            connection.sendall(
                _answer("400 Bad Request", b'{"__type":"x#ValidationException","message":"no"}')
            )

    threading.Thread(target=refuse, daemon=True).start()
    client = RawDynamoDB(f"http://127.0.0.1:{listener.getsockname()[1]}", "us-east-1", CREDENTIALS)
    (invalid,) = client.submit_many("batch_write_item", [batch(1)])
    # and a port nobody listens on
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    nobody = RawDynamoDB(f"http://127.0.0.1:{port}", "us-east-1", CREDENTIALS)
    (refused,) = nobody.submit_many("batch_write_item", [batch(2)])
    # Then the first future holds DynamoDB's error as botocore's ClientError, the second the refusal
    with pytest.raises(ClientError) as raised:
        invalid.result(timeout=10)
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ConnectionRefusedError):
        refused.result(timeout=10)
    listener.close()


def test_a_value_json_cannot_hold_fails_its_own_request_only():
    # Given an endpoint that answers at once
    endpoint = SlowEndpoint(delay=0)
    client = endpoint.client()
    # When one of two requests holds a value orjson cannot serialise
    answers = client.submit_many("batch_write_item", [{"RequestItems": {"records": [object()]}}, batch(2)])
    wait(answers, timeout=10)
    # Then that one fails with the serialiser's error, and the other is answered
    assert isinstance(answers[0].exception(), TypeError)
    assert answers[1].result() == {"UnprocessedItems": {}}
    endpoint.close()


def _in_child(client: RawDynamoDB, results: multiprocessing.Queue) -> None:
    (answer,) = client.submit_many("batch_write_item", [batch(7)])
    results.put(answer.result(timeout=10))


def test_a_forked_child_starts_its_own_io_thread():
    # Given a client whose I/O thread is running in this process
    endpoint = SlowEndpoint(delay=0)
    client = endpoint.client()
    (first,) = client.submit_many("batch_write_item", [batch(1)])
    first.result(timeout=10)
    # When a forked child (which has no such thread) sends a request with the same client
    results: multiprocessing.Queue = multiprocessing.get_context("fork").Queue()
    child = multiprocessing.get_context("fork").Process(target=_in_child, args=(client, results))
    child.start()
    answer = results.get(timeout=20)
    child.join(timeout=10)
    # Then it is answered, and the parent's client still works
    assert answer == {"UnprocessedItems": {}} and child.exitcode == 0
    (again,) = client.submit_many("batch_write_item", [batch(2)])
    assert again.result(timeout=10) == {"UnprocessedItems": {}}
    endpoint.close()
