"""A lean DynamoDB client for record traffic (BatchWriteItem, BatchGetItem, Query, Scan, PutItem,
UpdateItem).

An import of a million rows makes ~50,000 requests. Through botocore, its model-driven serializer
and parser, its signer and urllib3's pool cost more than everything else the import does, so this
client builds and parses bodies with orjson, signs with a SigV4 signer that keeps the day's signing
key (checked against botocore's signer, byte for byte, in the unit tests), and keeps kept-alive
HTTP/1.1 connections, each request sent in one write: one per calling thread for single calls, and
one I/O thread (Multiplexer) for the record batches, however many are in flight. It speaks the
same low-level JSON as the botocore client and raises the same ClientError, so RecordTable works
with either.

Under moto's in-process mock (unit and integration tests) only botocore's client is intercepted, so
those tests use the botocore client (DYNAMODB_RAW_HTTP=false); the local stack, the benchmarks and
tests/integration/test_dynamo_http.py exercise this one against real HTTP endpoints.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import os
import random
import re
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol
from urllib.parse import SplitResult, urlsplit

import orjson
from botocore.exceptions import ClientError

_TARGET_PREFIX = "DynamoDB_20120810."
_CONTENT_TYPE = "application/x-amz-json-1.0"
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Bounds no DynamoDB answer comes near (a BatchGetItem answer is at most 16 MB).
_MAX_LINE = 65_536
_MAX_HEADERS = 100
_MAX_BODY = 32 * 1024 * 1024


class Credentials(Protocol):
    """What signing needs of botocore's (frozen) credentials."""

    @property
    def access_key(self) -> str | None: ...
    @property
    def secret_key(self) -> str | None: ...
    @property
    def token(self) -> str | None: ...


def host_header(url: SplitResult) -> str:
    """The Host header (and signed host) for an endpoint: no default port, IPv6 in brackets."""
    host = url.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if url.port is not None and url.port != _DEFAULT_PORTS.get(url.scheme):
        host = f"{host}:{url.port}"
    return host


class SigV4Signer:
    """AWS Signature Version 4 for a JSON API called as POST / (DynamoDB's), with the day's signing
    key kept instead of derived again for every request."""

    def __init__(self, host: str, region: str, service: str = "dynamodb") -> None:
        self._host = host
        self._region = region
        self._service = service
        self._keys: dict[tuple[str, str], bytes] = {}

    def headers(
        self, credentials: Credentials, target: str, body: bytes, now: datetime | None = None
    ) -> dict[str, str]:
        """The request's headers, Authorization included."""
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        day = stamp[:8]
        headers = {
            "content-type": _CONTENT_TYPE,
            "host": self._host,
            "x-amz-date": stamp,
            "x-amz-target": target,
        }
        if credentials.token:
            headers["x-amz-security-token"] = credentials.token
        names = sorted(headers)
        signed_headers = ";".join(names)
        canonical_request = "\n".join(
            [
                "POST",
                "/",
                "",
                *(f"{name}:{' '.join(headers[name].split())}" for name in names),
                "",
                signed_headers,
                hashlib.sha256(body).hexdigest(),
            ]
        )
        scope = f"{day}/{self._region}/{self._service}/aws4_request"
        string_to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
        )
        if not credentials.access_key or not credentials.secret_key:
            raise RuntimeError("no AWS credentials to sign DynamoDB requests with")
        key = self._signing_key(credentials.secret_key, day)
        signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
            f"SignedHeaders={signed_headers}, Signature={signature}"
        )
        return headers

    def _signing_key(self, secret: str, day: str) -> bytes:
        key = self._keys.get((secret, day))
        if key is None:
            key = f"AWS4{secret}".encode()
            for part in (day, self._region, self._service, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._keys = {(secret, day): key}  # only the current key is ever needed again
        return key


def _operation_name(method: str) -> str:
    return "".join(part.title() for part in method.split("_"))


class RawDynamoDB:
    """Call DynamoDB's JSON API directly: `client.batch_write_item(RequestItems=…)` and friends."""

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        credentials: Callable[[], Credentials],
        *,
        timeout: float = 30.0,
        retries: int = 0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoint_url = endpoint_url
        # Record batches retry (and adapt their concurrency) themselves, so by default a throttle or
        # a failure reaches the caller; the jobs and datasets tables' client retries here instead.
        self._retries = retries
        self._sleep = sleep
        url = urlsplit(endpoint_url)
        if url.scheme not in _DEFAULT_PORTS or not url.hostname:
            raise ValueError(f"not an http(s) endpoint: {endpoint_url}")
        self._https = url.scheme == "https"
        self._address = (url.hostname, url.port or _DEFAULT_PORTS[url.scheme])
        self._signer = SigV4Signer(host_header(url), region)
        self._credentials = credentials
        self._timeout = timeout
        self._ssl = ssl.create_default_context() if self._https else None
        self._local = threading.local()  # one kept-alive connection per calling thread
        self._multiplexer = Multiplexer(self._address, timeout, self._ssl)

    def __getattr__(self, method: str) -> Callable[..., dict[str, Any]]:
        if method.startswith("_"):
            raise AttributeError(method)
        operation = _operation_name(method)

        def call(**request: Any) -> dict[str, Any]:
            return self.call(operation, request)

        return call

    def submit_many(
        self,
        method: str,
        requests: list[dict[str, Any]],
        *,
        gate: Gate | None = None,
        not_before: list[float] | None = None,
    ) -> list[Future[dict[str, Any]]]:
        """Requests (``method`` as in ``client.batch_write_item``) sent by the multiplexer's I/O
        thread, each when it is due and its gate has room; never retried but on a fresh connection
        for a kept-alive one the server had closed. Each future holds the answer, or botocore's
        ClientError, or the connection's error. A request is serialised and signed by the I/O thread
        when it is sent: the callers hand over dicts and wait, so no two threads pass the GIL back
        and forth for every request (hashlib lets go of it to hash a body over 2 KB)."""
        operation = _operation_name(method)
        target = _TARGET_PREFIX + operation
        due = not_before or [0.0] * len(requests)

        def answer(status: int, data: bytes) -> dict[str, Any]:
            return _answer(status, data, operation)

        def wire(request: dict[str, Any]) -> Callable[[], bytes]:
            def make() -> bytes:
                body = orjson.dumps(request)
                return request_bytes(body, self._signer.headers(self._credentials(), target, body))

            return make

        return self._multiplexer.submit_many(
            [(wire(request), answer, when) for request, when in zip(requests, due, strict=True)], gate
        )

    def call(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        """One signed JSON request (retried, with backoff, on throttling, a 5xx or a broken
        connection, up to ``retries`` times); an error response becomes botocore's ClientError."""
        body = orjson.dumps(request)
        for attempt in range(self._retries + 1):
            last = attempt == self._retries
            headers = self._signer.headers(self._credentials(), _TARGET_PREFIX + operation, body)
            try:
                status, data = self._post(body, headers)
            except ResponseTooLarge:
                raise
            except (OSError, http.client.HTTPException):  # refused, reset, timed out, cut short
                if last:
                    raise
                self._sleep(_backoff_seconds(attempt))
                continue
            if status < 300:
                return _answer(status, data, operation)
            error = _client_error(status, data, operation)
            if last or not (status >= 500 or error.response["Error"]["Code"] in RETRYABLE):
                raise error
            self._sleep(_backoff_seconds(attempt))
        raise AssertionError("unreachable")

    def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        while True:
            connection, reused = self._connection()
            try:
                status, data, keep_alive = connection.exchange(body, headers)
            except _STALE:
                connection.close()
                self._local.connection = None
                if reused:
                    continue  # the server had closed the kept-alive connection: send on a fresh one
                raise
            except Exception:
                connection.close()
                self._local.connection = None
                raise
            if not keep_alive:
                connection.close()
                self._local.connection = None
            return status, data

    def _connection(self) -> tuple[_Connection, bool]:
        connection: _Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection, True
        connection = _Connection(self._address, self._timeout, self._ssl)
        self._local.connection = connection
        return connection, False


def _answer(status: int, data: bytes, operation: str) -> dict[str, Any]:
    """A success answer's payload; an error answer raised as botocore's ClientError."""
    if status >= 300:
        raise _client_error(status, data, operation)
    payload: dict[str, Any] = orjson.loads(data) if data else {}
    return payload


def _client_error(status: int, data: bytes, operation: str) -> ClientError:
    """botocore's ClientError for an error answer (its body may not even be JSON, from a proxy)."""
    try:
        payload = orjson.loads(data) if data else {}
    except orjson.JSONDecodeError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    code = str(payload.get("__type", f"HTTP{status}")).rsplit("#", 1)[-1]
    message = payload.get("message") or payload.get("Message") or ""
    error: Any = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(error, operation)


def _backoff_seconds(attempt: int) -> float:
    """Exponential backoff with full jitter: up to 50 ms, 100 ms, 200 ms... capped at 2 s."""
    return random.uniform(0, min(2.0, 0.05 * 2**attempt))  # noqa: S311 - jitter, not crypto


def request_bytes(body: bytes, headers: dict[str, str]) -> bytes:
    """A POST / with these headers and body, as sent on the wire."""
    head = "POST / HTTP/1.1\r\n" + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"{head}content-length: {len(body)}\r\n\r\n".encode("latin-1") + body


class ConnectionClosed(ConnectionError):
    """The server closed the connection before it answered (a kept-alive connection it dropped)."""


class ResponseTooLarge(ConnectionError):
    """A status line, header or body beyond what any DynamoDB answer holds."""


class _Connection:
    """One kept-alive HTTP/1.1 connection that sends each request in a single write and reads the
    answer with a minimal parser.

    http.client writes the head and the body in two system calls and parses headers with the email
    package; for a 25-item BatchWriteItem that was half of the client's CPU (~220 us a request
    against ~110 us this way, measured on loopback), and an import makes 50 requests a 1,000 rows.
    """

    def __init__(self, address: tuple[str, int], timeout: float, tls: ssl.SSLContext | None) -> None:
        sock = socket.create_connection(address, timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls is not None:
                sock = tls.wrap_socket(sock, server_hostname=address[0])
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._reader = sock.makefile("rb")

    def exchange(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, bool]:
        """Send one POST / and read its answer: (status, body, whether the connection stays open)."""
        self.send(request_bytes(body, headers))
        return self.receive()

    def send(self, request: bytes) -> None:
        """Send a whole request (one write)."""
        self._sock.sendall(request)

    def fileno(self) -> int:
        """The socket's descriptor (for a selector)."""
        return self._sock.fileno()

    def receive(self) -> tuple[int, bytes, bool]:
        """Read one answer: (status, body, whether the connection stays open)."""
        status_line = self._line()
        if not status_line:
            raise ConnectionClosed("the server closed the connection without answering")
        version, _, rest = status_line.partition(b" ")
        try:
            status = int(rest[:3])
        except ValueError:
            raise http.client.BadStatusLine(status_line.decode("latin-1", "replace")) from None
        fields = self._fields()
        keep_alive = version == b"HTTP/1.1"
        connection = fields.get(b"connection", b"").lower()
        if connection == b"close":
            keep_alive = False
        elif connection == b"keep-alive":
            keep_alive = True
        if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
            return status, self._chunked(), keep_alive
        length = fields.get(b"content-length")
        if length is None:
            return status, self._to_end(), False  # the body runs to the end of the connection
        try:
            size = int(length)
        except ValueError:
            raise http.client.HTTPException(f"bad content-length: {length!r}") from None
        return status, self._exactly(size), keep_alive

    def close(self) -> None:
        """Close the socket."""
        self._reader.close()
        self._sock.close()

    def _line(self) -> bytes:
        line = self._reader.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise ResponseTooLarge("a response line is longer than 64 KB")
        return line

    def _fields(self) -> dict[bytes, bytes]:
        fields: dict[bytes, bytes] = {}
        for _ in range(_MAX_HEADERS):
            line = self._line()
            if line in (b"\r\n", b"\n"):
                return fields
            if not line:
                raise ConnectionClosed("the connection closed in the middle of the response headers")
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip()
        raise ResponseTooLarge(f"the response has more than {_MAX_HEADERS} headers")

    def _exactly(self, size: int) -> bytes:
        if size < 0 or size > _MAX_BODY:
            raise ResponseTooLarge(f"a response body of {size} bytes")
        data = self._reader.read(size)
        if len(data) < size:
            raise http.client.IncompleteRead(data, size - len(data))
        return data

    def _to_end(self) -> bytes:
        data = self._reader.read(_MAX_BODY + 1)
        if len(data) > _MAX_BODY:
            raise ResponseTooLarge("a response body larger than 32 MB")
        return data

    def _chunked(self) -> bytes:
        body = bytearray()
        while True:
            size_line = self._line().split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise http.client.HTTPException(f"bad chunk size: {size_line!r}") from None
            if size == 0:
                self._fields()  # trailers, then the blank line
                return bytes(body)
            if len(body) + size > _MAX_BODY:
                raise ResponseTooLarge("a response body larger than 32 MB")
            body += self._exactly(size)
            self._line()  # the CRLF after each chunk


class Gate(Protocol):
    """Room for requests in flight, which a throttled answer shrinks (records.InFlightWindow)."""

    def try_acquire(self) -> bool: ...
    def release(self, *, throttled: bool) -> None: ...


def throttled_by(response: dict[str, Any] | None, error: BaseException | None) -> bool:
    """Whether an answer says to slow down: something left unprocessed, a throttling (or other
    retryable) error, or no answer at all."""
    if error is not None:
        return not isinstance(error, ClientError) or error.response["Error"]["Code"] in RETRYABLE
    return bool(response and (response.get("UnprocessedItems") or response.get("UnprocessedKeys")))


# What a kept-alive connection the server has closed answers with.
_STALE = (ConnectionClosed, ConnectionResetError, BrokenPipeError)


@dataclass(slots=True)
class _Request:
    """A request waiting for, or on, a connection."""

    make: Callable[[], bytes]  # the whole request as sent (serialised and signed when first sent)
    future: Future[dict[str, Any]]
    answer: Callable[[int, bytes], dict[str, Any]]
    gate: Gate | None
    not_before: float  # time.monotonic() before which it is not sent (a retry's backoff)
    deadline: float = 0.0
    holds_gate: bool = False
    reused: bool = False  # sent on a kept-alive connection (which the server may have closed)
    wire: bytes = b""


class Multiplexer:
    """Many requests in flight from one I/O thread, each on a kept-alive connection of its own.

    With a thread per request in flight, every blocking send and receive hands the GIL to another
    thread: with 16 threads a 25-item BatchWriteItem cost ~370 us of CPU, against ~105-155 us with
    one thread waiting on a selector for all the connections (the benchmark's endpoint, loopback).
    Callers hand over many requests at once and wait for all of them, so the I/O thread wakes them
    once, not once a request. A request is sent when it is due (a retry waits out its backoff), its
    gate has room and a connection is free (at most ``max_connections`` open). An answer is read
    whole once its first bytes arrive (DynamoDB writes an answer at once when it is ready), with the
    blocking parser above and the socket's timeout. A connection is opened, TLS handshake included,
    on the I/O thread: once per connection, as they are kept alive.
    """

    # How often requests held back by a full gate look again: room may come back from requests
    # that do not go through the multiplexer (the gate is the table's, shared with its pool).
    GATE_POLL_SECONDS = 0.005

    def __init__(
        self,
        address: tuple[str, int],
        timeout: float,
        tls: ssl.SSLContext | None,
        *,
        max_connections: int = 64,
    ) -> None:
        self._address = address
        self._timeout = timeout
        self._tls = tls
        self._max_connections = max_connections
        self._lock = threading.Lock()
        self._waiting: list[_Request] = []
        self._pid = -1  # the process whose I/O thread this is (a forked child starts its own)
        self._wake: socket.socket | None = None

    def submit_many(
        self,
        requests: Sequence[tuple[Callable[[], bytes], Callable[[int, bytes], dict[str, Any]], float]],
        gate: Gate | None = None,
    ) -> list[Future[dict[str, Any]]]:
        """Send each (make the whole request, answer(status, body) -> result, not before): its
        future gets the result, or the error the answer raised, or the connection's error."""
        queued = [_Request(make, Future(), answer, gate, not_before) for make, answer, not_before in requests]
        with self._lock:
            if self._pid != os.getpid():
                self._start()
            self._waiting.extend(queued)
            wake = self._wake
        assert wake is not None
        with contextlib.suppress(BlockingIOError):  # when full, the thread has wake-ups pending already
            wake.send(b"\0")
        return [request.future for request in queued]

    def _start(self) -> None:
        reader, writer = socket.socketpair()
        reader.setblocking(False)
        writer.setblocking(False)
        self._waiting = []
        self._wake = writer
        self._pid = os.getpid()
        threading.Thread(target=self._serve, args=(reader,), name="dynamodb-io", daemon=True).start()

    def _serve(self, wake: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(wake, selectors.EVENT_READ)
        idle: list[_Connection] = []
        busy: dict[_Connection, _Request] = {}
        in_hand: list[_Request] = []  # taken off ``busy`` and being answered
        try:
            while True:
                wake_at = self._send_waiting(selector, idle, busy)
                deadlines = [request.deadline for request in busy.values()]
                if wake_at is not None:
                    deadlines.append(wake_at)
                timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
                for key, _events in selector.select(timeout):
                    if key.fileobj is wake:
                        wake.recv(65_536)
                    else:
                        connection: _Connection = key.fileobj  # type: ignore[assignment]
                        selector.unregister(connection)
                        in_hand[:] = [busy.pop(connection)]
                        self._receive(connection, in_hand[0], idle)
                        in_hand.clear()
                now = time.monotonic()
                for connection, request in list(busy.items()):
                    if request.deadline <= now:
                        selector.unregister(connection)
                        del busy[connection]
                        connection.close()
                        _finish(request, error=TimeoutError(f"no answer within {self._timeout:g} s"))
        except BaseException as error:  # a bug must not leave callers waiting for ever
            with self._lock:
                self._pid = -1  # the next request starts a new thread
                stranded = [*in_hand, *busy.values(), *self._waiting]
                self._waiting = []
            for connection in [*busy, *idle]:
                connection.close()
            for request in stranded:
                if not request.future.done():
                    _finish(request, error=error)
            raise

    def _send_waiting(
        self, selector: selectors.BaseSelector, idle: list[_Connection], busy: dict[_Connection, _Request]
    ) -> float | None:
        """Send what can go now; the time to look again for what waits on its backoff or its gate."""
        with self._lock:
            waiting, self._waiting = self._waiting, []
        now = time.monotonic()
        kept: list[_Request] = []
        wake_at: float | None = None
        for position, request in enumerate(waiting):
            if request.not_before > now:
                wake_at = request.not_before if wake_at is None else min(wake_at, request.not_before)
                kept.append(request)
                continue
            if not idle and len(busy) >= self._max_connections:
                kept.extend(waiting[position:])  # a connection comes free with the next answer
                break
            if not request.holds_gate and request.gate is not None:
                if not request.gate.try_acquire():
                    # What follows waits too (mostly the same table's); room comes with an answer.
                    kept.extend(waiting[position:])
                    poll = now + self.GATE_POLL_SECONDS
                    wake_at = poll if wake_at is None else min(wake_at, poll)
                    break
                request.holds_gate = True
            self._send(request, selector, idle, busy)
        if kept:
            with self._lock:
                self._waiting[:0] = kept  # before what came in meanwhile
        return wake_at

    def _send(
        self,
        request: _Request,
        selector: selectors.BaseSelector,
        idle: list[_Connection],
        busy: dict[_Connection, _Request],
    ) -> None:
        if not request.reused and not request.future.set_running_or_notify_cancel():
            _finish(request, error=None)  # cancelled before it was sent: give its room back
            return
        if not request.wire:
            try:
                request.wire = request.make()
            except Exception as error:  # no credentials, or a value JSON cannot hold
                _finish(request, error=error)
                return
        while True:
            request.reused = bool(idle)
            try:
                connection = idle.pop() if idle else _Connection(self._address, self._timeout, self._tls)
            except OSError as error:
                _finish(request, error=error)
                return
            try:
                connection.send(request.wire)
                break
            except OSError as error:
                connection.close()
                if not (request.reused and isinstance(error, _STALE)):
                    _finish(request, error=error)
                    return
                # The server had closed the kept-alive connection: at once on another one (nothing
                # else may come to wake the thread for a request put back to wait).
        request.deadline = time.monotonic() + self._timeout
        selector.register(connection, selectors.EVENT_READ)
        busy[connection] = request

    def _receive(self, connection: _Connection, request: _Request, idle: list[_Connection]) -> None:
        try:
            status, data, keep_alive = connection.receive()
        except Exception as error:
            connection.close()
            self._retry_or_fail(request, error)
            return
        if keep_alive:
            idle.append(connection)
        else:
            connection.close()
        try:
            result = request.answer(status, data)
        except Exception as error:
            _finish(request, error=error)
        else:
            _finish(request, result=result)

    def _retry_or_fail(self, request: _Request, error: Exception) -> None:
        if request.reused and isinstance(error, _STALE):
            # The server had closed the kept-alive connection: send again, first, on another one.
            with self._lock:
                self._waiting.insert(0, request)
            return
        _finish(request, error=error)


def _finish(
    request: _Request, *, result: dict[str, Any] | None = None, error: BaseException | None = None
) -> None:
    """Give the request's room back (shrunk if the answer says so), then settle its future."""
    if request.holds_gate and request.gate is not None:
        request.holds_gate = False
        request.gate.release(throttled=throttled_by(result, error))
    if request.future.cancelled():
        return
    if error is not None:
        request.future.set_exception(error)
    elif result is not None:
        request.future.set_result(result)


# Regions of the commercial partition, whose DynamoDB endpoint is dynamodb.{region}.amazonaws.com.
_COMMERCIAL_REGION = re.compile(r"(us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-\d+")
_VARIANT_SETTINGS = ("AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT")
# What DynamoDB answers when a retry may succeed (as botocore's standard retry mode treats them);
# RecordTable retries and adapts its window on the same codes.
RETRYABLE = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
    }
)


class EnvironmentCredentials(NamedTuple):
    """Credentials the environment holds (Lambda puts its role's there): botocore's first source."""

    access_key: str
    secret_key: str
    token: str | None


def environment_credentials() -> EnvironmentCredentials | None:
    """AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN), read as botocore's
    environment provider reads them, or None when the environment has none."""
    access_key, secret_key = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not access_key or not secret_key:
        return None
    token = os.environ.get("AWS_SESSION_TOKEN") or os.environ.get("AWS_SECURITY_TOKEN") or None
    return EnvironmentCredentials(access_key, secret_key, token)


def raw_client_from_environment(session: Any | None = None, *, retries: int = 0) -> RawDynamoDB | None:
    """A RawDynamoDB for the endpoint the environment names (AWS_ENDPOINT_URL_DYNAMODB, then
    AWS_ENDPOINT_URL) or for a commercial region's standard endpoint, with the session's credentials;
    None when only botocore's endpoint rules can tell the endpoint (other partitions, FIPS, dual-stack).
    Without a session, credentials in the environment are used as they are, and boto3 (~0.1 s to
    import) is asked only when the environment lacks them or a region."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        session = session or _boto3_session()
        region = session.region_name
    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint is None:
        variant = any(os.environ.get(name, "").lower() == "true" for name in _VARIANT_SETTINGS)
        if variant or not region or not _COMMERCIAL_REGION.fullmatch(region):
            return None
        endpoint = f"https://dynamodb.{region}.amazonaws.com"
    if not region:
        return None
    static = environment_credentials() if session is None else None
    if static is not None:
        return RawDynamoDB(endpoint, region, lambda: static, retries=retries)
    credentials = (session or _boto3_session()).get_credentials()
    if credentials is None:
        return None
    return RawDynamoDB(endpoint, region, credentials.get_frozen_credentials, retries=retries)


def _boto3_session() -> Any:
    import boto3

    return boto3.Session()


def raw_client_like(botocore_client: Any, *, retries: int = 0) -> RawDynamoDB:
    """A RawDynamoDB for the same endpoint, region and credentials as a boto3 DynamoDB client."""
    credentials = _boto3_session().get_credentials()
    if credentials is None:
        raise RuntimeError("no AWS credentials")
    return RawDynamoDB(
        botocore_client.meta.endpoint_url,
        botocore_client.meta.region_name,
        credentials.get_frozen_credentials,
        retries=retries,
    )
