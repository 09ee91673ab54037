"""A lean DynamoDB client for record traffic (BatchWriteItem, BatchGetItem, Query, Scan, PutItem,
UpdateItem).

An import of a million rows makes ~50,000 requests. Through botocore, its model-driven serializer
and parser, its signer and urllib3's pool cost more than everything else the import does, so this
client builds and parses bodies with orjson, signs with a SigV4 signer that keeps the day's signing
key (checked against botocore's signer, byte for byte, in the unit tests), and keeps one kept-alive
HTTP/1.1 connection per thread, each request sent in one write. It speaks the same low-level JSON
as the botocore client and raises the same ClientError, so RecordTable works with either.

Under moto's in-process mock (unit and integration tests) only botocore's client is intercepted, so
those tests use the botocore client (DYNAMODB_RAW_HTTP=false); the local stack, the benchmarks and
tests/integration/test_dynamo_http.py exercise this one against real HTTP endpoints.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import os
import random
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
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

    def __getattr__(self, method: str) -> Callable[..., dict[str, Any]]:
        if method.startswith("_"):
            raise AttributeError(method)
        operation = _operation_name(method)

        def call(**request: Any) -> dict[str, Any]:
            return self.call(operation, request)

        return call

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
                payload: dict[str, Any] = orjson.loads(data) if data else {}
                return payload
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
            except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
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
        head = "POST / HTTP/1.1\r\n" + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self._sock.sendall(f"{head}content-length: {len(body)}\r\n\r\n".encode("latin-1") + body)
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
