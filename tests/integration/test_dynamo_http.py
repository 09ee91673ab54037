"""The lean DynamoDB client against a real HTTP endpoint (moto's server): same requests and answers
as botocore's low-level client, the same ClientError on failures."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator

import boto3
import botocore.credentials
import pytest
import requests
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from impex.aws import clients
from impex.aws.dynamo_http import RawDynamoDB, ResponseTooLarge, raw_client_like
from impex.aws.records import RecordTable
from impex.aws.tables import DocumentTable
from tests.integration.loopback import read_request


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    requests.post(f"{url}/moto-api/reset", timeout=10)  # moto's backends are per process, not per server
    boto3.client("dynamodb", endpoint_url=url).create_table(
        TableName="records",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
    )
    yield url
    requests.post(f"{url}/moto-api/reset", timeout=10)
    server.stop()


def items(count: int) -> list[dict]:
    return [
        {
            "pk": {"S": "t#d"},
            "sk": {"S": f"{i:05d}"},
            "n": {"N": str(i)},
            "ok": {"BOOL": i % 2 == 0},
            "tags": {"L": [{"S": "a"}]},
        }
        for i in range(count)
    ]


def test_batches_and_pages_round_trip_like_botocore(endpoint):
    # Given the lean client for the same endpoint as botocore's
    raw = raw_client_like(boto3.client("dynamodb", endpoint_url=endpoint))
    assert isinstance(raw, RawDynamoDB)
    table = RecordTable(raw, "records")
    # When 130 items are written, some read back, and all queried in pages of 50
    table.put_many(items(130))
    keys = [{"pk": {"S": "t#d"}, "sk": {"S": f"{i:05d}"}} for i in (0, 7, 129, 500)]
    found = table.get_many(keys, projection=["n"])
    assert [item and (item["sk"]["S"], item["n"]["N"]) for item in found] == [
        ("00000", "0"),
        ("00007", "7"),
        ("00129", "129"),
        None,
    ]
    request = {"KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": {":pk": {"S": "t#d"}}}
    seen, start = [], None
    while True:
        page, start = table.page(request, start_key=start, limit=50)
        seen += page
        if start is None:
            break
    # Then the pages hold exactly what botocore reads
    botocore = boto3.client("dynamodb", endpoint_url=endpoint)
    botocore_items = botocore.query(TableName="records", **request)["Items"]
    assert seen == botocore_items and len(seen) == 130
    table.close()


def test_errors_are_botocore_client_errors(endpoint):
    raw = raw_client_like(boto3.client("dynamodb", endpoint_url=endpoint))
    raw.put_item(TableName="records", Item=items(1)[0])
    with pytest.raises(ClientError) as raised:
        raw.put_item(TableName="records", Item=items(1)[0], ConditionExpression="attribute_not_exists(pk)")
    assert raised.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    with pytest.raises(ClientError) as missing:
        raw.query(
            TableName="nope", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "x"}}
        )
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_conditional_puts_through_record_table(endpoint):
    table = RecordTable(raw_client_like(boto3.client("dynamodb", endpoint_url=endpoint)), "records")
    first = items(2)
    assert table.put_if([(item, "attribute_not_exists(#pk)", {}) for item in first]) == [True, True]
    assert table.put_if([(first[0], "attribute_not_exists(#pk)", {})]) == [False]
    table.close()


def test_a_kept_alive_connection_the_server_closed_is_replaced(monkeypatch):
    # Given an endpoint that answers one request per connection, then closes it without saying so
    listener = socket.create_server(("127.0.0.1", 0))
    answered: list[bytes] = []

    def serve() -> None:
        for _ in range(2):
            connection, _address = listener.accept()
            with connection:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += connection.recv(65536)
                answered.append(request.split(b"\r\n", 1)[0])
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    port = listener.getsockname()[1]
    raw = raw_client_like(
        boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1")
    )
    # When two requests are made one after the other (the second on the kept-alive connection)
    first = raw.describe_limits()
    second = raw.describe_limits()
    # Then both are answered: the second was sent again on a fresh connection
    assert first == second == {}
    assert answered == [b"POST / HTTP/1.1", b"POST / HTTP/1.1"]
    server.join(timeout=5)
    listener.close()


class _ScriptedServer:
    """A loopback endpoint that answers each request with the next scripted response (raw bytes),
    and closes a connection after an answer marked to close; it records every request it read."""

    def __init__(self, answers: list[tuple[bytes, bool]], port: int = 0) -> None:
        self.listener = socket.create_server(("127.0.0.1", port))
        self.port = self.listener.getsockname()[1]
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.answers:
            connection, _address = self.listener.accept()
            self.connections += 1
            with connection:
                while self.answers:
                    request = read_request(connection)
                    if request is None:
                        break
                    self.requests.append(request)
                    answer, close = self.answers.pop(0)
                    connection.sendall(answer)
                    if close:
                        break

    def client(self, monkeypatch) -> RawDynamoDB:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        endpoint = f"http://127.0.0.1:{self.port}"
        return raw_client_like(boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1"))

    def close(self) -> None:
        self.thread.join(timeout=5)
        self.listener.close()


def test_chunked_and_close_delimited_answers_are_read_whole(monkeypatch):
    # Given an endpoint that answers once in chunks (with a trailer), then once with "Connection:
    # close", then as HTTP/1.0 with no length (the body ends with the connection)
    server = _ScriptedServer(
        [
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b'5;ext=1\r\n{"Ite\r\n9\r\nms":[1,2]\r\n1\r\n}\r\n0\r\nx-trailer: y\r\n\r\n',
                False,
            ),
            (b'HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\n{"a":1}\n', True),
            (b'HTTP/1.0 200 OK\r\n\r\n{"b":2}', True),
        ]
    )
    raw = server.client(monkeypatch)
    # When three requests are made
    answers = [raw.describe_limits()]
    kept_after_chunked = raw._local.connection is not None
    answers.append(raw.describe_limits())
    kept_after_close = raw._local.connection is not None
    answers.append(raw.describe_limits())
    server.close()
    # Then each body is read whole, and a closed connection is never reused (two connections: the
    # chunked answer kept its connection for the second, which closed it)
    assert answers == [{"Items": [1, 2]}, {"a": 1}, {"b": 2}]
    assert server.connections == 2
    assert kept_after_chunked and not kept_after_close
    # And every request carried its body with its exact length, signed, in one HTTP/1.1 POST
    for request in server.requests:
        head, _, body = request.partition(b"\r\n\r\n")
        assert head.startswith(b"POST / HTTP/1.1\r\n")
        assert f"content-length: {len(body)}".encode() in head
        assert b"authorization: AWS4-HMAC-SHA256 Credential=testing/" in head
        assert b"x-amz-target: DynamoDB_20120810.DescribeLimits" in head


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n{}", ResponseTooLarge),
        (b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n", ResponseTooLarge),
        (b"HTTP/1.1 200 OK\r\n" + b"X-Many: 1\r\n" * 101 + b"\r\n", ResponseTooLarge),
        (b"SMTP ready\r\n\r\n", http.client.BadStatusLine),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", http.client.HTTPException),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", http.client.IncompleteRead),
    ],
)
def test_a_malformed_or_oversized_answer_is_an_error_not_a_hang(monkeypatch, answer, error):
    # Given an endpoint whose answer is malformed or larger than any DynamoDB answer
    server = _ScriptedServer([(answer, True)])
    raw = server.client(monkeypatch)
    # When a request is made, then it fails with the framing error (it neither hangs nor reads on)
    with pytest.raises(error):
        raw.describe_limits()
    server.close()


def _lean(server: _ScriptedServer, retries: int, sleeps: list[float]) -> RawDynamoDB:
    credentials = botocore.credentials.Credentials("testing", "testing").get_frozen_credentials
    return RawDynamoDB(
        f"http://127.0.0.1:{server.port}", "us-east-1", credentials, retries=retries, sleep=sleeps.append
    )


def _answer(status: str, body: bytes) -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


THROTTLED = _answer(
    "400 Bad Request", b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"x"}'
)
INVALID = _answer("400 Bad Request", b'{"__type":"x#ValidationException","message":"no"}')
UNAVAILABLE = _answer("503 Service Unavailable", b"<html>busy</html>")
OK = _answer("200 OK", b'{"Ok":1}')


def test_throttles_and_server_errors_are_retried_with_backoff_when_asked():
    # Given an endpoint that throttles, then answers 503 with a non-JSON body, then answers
    server = _ScriptedServer([(THROTTLED, False), (UNAVAILABLE, False), (OK, False)])
    sleeps: list[float] = []
    # When a client with two retries calls it
    answer = _lean(server, retries=2, sleeps=sleeps).describe_limits()
    server.close()
    # Then the third attempt's answer comes back, after two jittered backoffs, each request signed anew
    assert answer == {"Ok": 1}
    assert len(server.requests) == 3 and len(sleeps) == 2 and all(0 <= s <= 2 for s in sleeps)


def test_without_retries_a_throttle_reaches_the_caller_as_its_client_error():
    # Given an endpoint that throttles (record batches adapt to throttles themselves)
    server = _ScriptedServer([(THROTTLED, False)])
    sleeps: list[float] = []
    # When the default client (no retries) calls it, then the caller sees DynamoDB's own error
    with pytest.raises(ClientError) as raised:
        _lean(server, retries=0, sleeps=sleeps).describe_limits()
    server.close()
    assert raised.value.response["Error"]["Code"] == "ThrottlingException" and sleeps == []


def test_retries_end_and_a_request_error_is_not_retried():
    # Given an endpoint that is unavailable three times in a row, and one that refuses the request
    busy = _ScriptedServer([(UNAVAILABLE, False)] * 3)
    refused = _ScriptedServer([(INVALID, False)])
    sleeps: list[float] = []
    # Then two retries give up with the 5xx, and a validation error is raised at once
    with pytest.raises(ClientError) as unavailable:
        _lean(busy, retries=2, sleeps=sleeps).describe_limits()
    with pytest.raises(ClientError) as invalid:
        _lean(refused, retries=2, sleeps=sleeps).describe_limits()
    busy.close()
    refused.close()
    assert unavailable.value.response["Error"]["Code"] == "HTTP503" and len(busy.requests) == 3
    assert invalid.value.response["Error"]["Code"] == "ValidationException" and len(refused.requests) == 1


def test_a_refused_connection_is_retried_until_the_endpoint_answers():
    # Given a port nobody listens on yet: the endpoint comes up during the first backoff
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    started: list[_ScriptedServer] = []
    sleeps: list[float] = []

    def come_up(seconds: float) -> None:
        sleeps.append(seconds)
        if not started:
            started.append(_ScriptedServer([(OK, False)], port=port))

    credentials = botocore.credentials.Credentials("testing", "testing").get_frozen_credentials
    client = RawDynamoDB(f"http://127.0.0.1:{port}", "us-east-1", credentials, retries=2, sleep=come_up)
    # When it calls, then the refusal was retried once and the answer came
    assert client.describe_limits() == {"Ok": 1} and len(sleeps) == 1
    started[0].close()


def test_the_jobs_and_datasets_tables_ride_out_a_throttle(monkeypatch):
    # Given the deployment's documents client on the lean path, and an endpoint that throttles once
    # and then has the job
    job = b'{"Item":{"id":{"S":"j-1"},"status":{"S":"PENDING"},"attempts":{"N":"2"}}}'
    server = _ScriptedServer([(THROTTLED, False), (_answer("200 OK", job), False)])
    monkeypatch.setenv("DYNAMODB_RAW_HTTP", "true")  # the tests run with botocore's client otherwise
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    clients.reset()
    table = DocumentTable(clients.documents(), "jobs")
    # When the job is read, then the throttle was retried and the job came back as a plain document
    assert table.get({"id": "j-1"}) == {"id": "j-1", "status": "PENDING", "attempts": 2}
    server.close()
    assert len(server.requests) == 2 and b'"TableName":"jobs"' in server.requests[1]
    clients.reset()
