"""A DynamoDB endpoint on 127.0.0.1 that answers record traffic at once, so benchmarks measure the
client side: BatchWriteItem accepts everything, BatchGetItem finds nothing, and Query/Scan serve
pre-built pages of generated records (the bytes are prepared before the clock starts).

With ``--latency`` each request waits DynamoDB's latency (below) and nothing is refused; with
``--realistic`` it answers as DynamoDB would under load instead (see ``RealLimits``): each
request waits a latency drawn from a distribution (median 6 ms, a long tail), and capacity is
metered as DynamoDB meters it: write units by item size (1 KB each) against 1,000 a second per
partition key and 40,000 per table (the on-demand default), read units (4 KB, strongly
consistent) against 3,000 per partition key. What a partition cannot take is left unprocessed;
a request of which nothing can be taken is refused with ProvisionedThroughputExceededException
and the throttling reason KeyRangeThroughputExceeded (TableWriteThroughputExceeded at the table
cap), as DynamoDB answers it.

It runs in a process of its own (``python -m benchmarks.fake_dynamodb``), on asyncio with a minimal
HTTP/1.1 parser, so that its own cost (and moto's, in the parent) does not sit on the measured
client's critical path. It counts the items it was asked to write, so a run can check that every
row reached it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

_TABLE = re.compile(rb'"RequestItems"\s*:\s*\{\s*"([^"]+)"')
_HEADERS_END = b"\r\n\r\n"


def stored_items(rows: int) -> list[dict[str, Any]]:
    """Records as impex stores them (low-level DynamoDB JSON)."""
    return [
        {
            "pk": {"S": "bench#items"},
            "sk": {"S": f"K{i:08d}"},
            "id": {"S": f"K{i:08d}"},
            "name": {"S": f"Customer {i % 9973}"},
            "email": {"S": f"c{i}@example.com"},
            "qty": {"N": str(i % 1000)},
            "price": {"N": f"{(i % 100000) / 100}"},
            "active": {"BOOL": i % 2 == 0},
            "joined": {"S": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}"},
            "seenAt": {"S": f"2024-05-01T{i % 24:02d}:00:00Z"},
            "score": {"N": f"{(i % 997) / 997:.6f}"},
            "note": {"S": "plain note"},
        }
        for i in range(rows)
    ]


def build_pages(items: list[dict[str, Any]], per_page: int) -> list[bytes]:
    """Query responses of ``per_page`` items each, chained by a LastEvaluatedKey naming the next page."""
    pages = []
    for number, start in enumerate(range(0, len(items), per_page)):
        chunk = items[start : start + per_page]
        page: dict[str, Any] = {"Items": chunk, "Count": len(chunk), "ScannedCount": len(chunk)}
        if start + per_page < len(items):
            page["LastEvaluatedKey"] = {
                "pk": {"S": "x"},
                "sk": {"S": str(number)},
                "page": {"N": str(number + 1)},
            }
        pages.append(json.dumps(page).encode())
    return pages


@dataclass
class _Bucket:
    """Capacity units a second, with one second of burst (DynamoDB's per-partition ceiling)."""

    rate: float
    level: float = -1.0
    updated: float = 0.0

    def take(self, units: float, now: float) -> bool:
        if self.level < 0:
            self.level, self.updated = self.rate, now
        self.level = min(self.rate, self.level + (now - self.updated) * self.rate)
        self.updated = now
        if self.level < units:
            return False
        self.level -= units
        return True


@dataclass
class RealLimits:
    """DynamoDB's limits, as modelled: latency and capacity."""

    median_ms: float = 6.0
    sigma: float = 0.45  # lognormal: p90 ~ 10 ms, p99 ~ 17 ms
    tail_share: float = 0.005  # and one request in 200 waits 50-150 ms (a slow partition, a retry)
    partition_wcu: float = 1000.0
    partition_rcu: float = 3000.0
    table_wcu: float = 40_000.0
    writes: dict[str, _Bucket] = field(default_factory=dict)
    reads: dict[str, _Bucket] = field(default_factory=dict)
    table: _Bucket = field(default_factory=lambda: _Bucket(40_000.0))
    capped: bool = True  # False: latency only (``--latency``), every request taken whole

    def __post_init__(self) -> None:
        self.table = _Bucket(self.table_wcu)

    def latency(self) -> float:
        if random.random() < self.tail_share:
            return random.uniform(0.05, 0.15)
        return self.median_ms / 1000 * math.exp(random.gauss(0, self.sigma))

    def write(self, partition: str, units: int, now: float) -> str | None:
        """None if the write fits; otherwise the throttling reason."""
        if not self.capped:
            return None
        bucket = self.writes.setdefault(partition, _Bucket(self.partition_wcu))
        if not self.table.take(units, now):
            return "TableWriteThroughputExceeded"
        if not bucket.take(units, now):
            self.table.level += units  # not consumed after all
            return "KeyRangeThroughputExceeded"
        return None

    def read(self, partition: str, units: float, now: float) -> bool:
        if not self.capped:
            return True
        return self.reads.setdefault(partition, _Bucket(self.partition_rcu)).take(units, now)


def _write_units(item: dict[str, Any]) -> int:
    """Write capacity units of an item: 1 per KB of its names and values (a close estimate)."""
    size = sum(len(name) + len(json.dumps(value)) - 8 for name, value in item.items())
    return max(1, math.ceil(size / 1024))


def _throttled(reason: str) -> tuple[int, bytes]:
    return 400, json.dumps(
        {
            "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "message": "The level of configured provisioned throughput for the table was exceeded.",
            "ThrottlingReasons": [
                {"reason": reason, "resource": "arn:aws:dynamodb:us-east-1:123456789012:table/records"}
            ],
        }
    ).encode()


class _Endpoint:
    def __init__(self, pages: list[bytes], limits: RealLimits | None = None) -> None:
        self.pages = pages
        self.limits = limits
        self.counts = {"writes": 0, "requests": 0, "throttled_requests": 0, "unprocessed": 0}

    def answer_real(self, operation: str, body: bytes) -> tuple[int, bytes]:
        """The answer under DynamoDB's limits (``--realistic``)."""
        assert self.limits is not None
        now = time.monotonic()
        if operation == "BatchWriteItem":
            ((table, requests),) = json.loads(body)["RequestItems"].items()
            unprocessed, reasons = [], set()
            for request in requests:
                item = request["PutRequest"]["Item"]
                reason = self.limits.write(item["pk"]["S"], _write_units(item), now)
                if reason is None:
                    self.counts["writes"] += 1
                else:
                    unprocessed.append(request)
                    reasons.add(reason)
            self.counts["unprocessed"] += len(unprocessed)
            if unprocessed and len(unprocessed) == len(requests):
                self.counts["throttled_requests"] += 1
                return _throttled(min(reasons))
            left = {table: unprocessed} if unprocessed else {}
            return 200, json.dumps({"UnprocessedItems": left}).encode()
        if operation == "BatchGetItem":
            ((table, request),) = json.loads(body)["RequestItems"].items()
            pending = [key for key in request["Keys"] if not self.limits.read(key["pk"]["S"], 1.0, now)]
            if pending and len(pending) == len(request["Keys"]):
                self.counts["throttled_requests"] += 1
                return _throttled("KeyRangeThroughputExceeded")
            left = {table: {**request, "Keys": pending}} if pending else {}
            return 200, json.dumps({"Responses": {table: []}, "UnprocessedKeys": left}).encode()
        self.counts["requests"] -= 1  # answer() counts it again
        return 200, self.answer(operation, body)

    def answer(self, operation: str, body: bytes) -> bytes:
        if operation == "Stats":
            return json.dumps(self.counts).encode()
        self.counts["requests"] += 1
        if operation == "BatchWriteItem":
            self.counts["writes"] += body.count(b'"PutRequest"')
            return b'{"UnprocessedItems":{}}'
        if operation == "BatchGetItem":
            match = _TABLE.search(body)
            table = match.group(1).decode() if match else "records"
            return json.dumps({"Responses": {table: []}, "UnprocessedKeys": {}}).encode()
        if operation in ("Query", "Scan"):
            request = json.loads(body)
            start = int(request.get("ExclusiveStartKey", {}).get("page", {}).get("N", "0"))
            return self.pages[start] if start < len(self.pages) else b'{"Items":[],"Count":0}'
        return b"{}"


class _Connection(asyncio.Protocol):
    """HTTP/1.1 with keep-alive: enough of it for botocore, urllib3 and http.client."""

    def __init__(self, endpoint: _Endpoint) -> None:
        self.endpoint = endpoint
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(_HEADERS_END)
            if end < 0:
                return
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            operation = headers.get("x-amz-target", "").rsplit(".", 1)[-1]
            if self.endpoint.limits is None or operation == "Stats":
                self._respond(200, self.endpoint.answer(operation, body))
            elif not self.endpoint.limits.capped:
                # Latency only: answered as the zero-latency endpoint answers (no parsing, so this
                # process's own CPU stays off the measured client's two cores), only later.
                asyncio.get_running_loop().call_later(
                    self.endpoint.limits.latency(), self._respond, 200, self.endpoint.answer(operation, body)
                )
            else:
                self.endpoint.counts["requests"] += 1
                status, payload = self.endpoint.answer_real(operation, body)
                # Capacity is metered on arrival; the answer comes back after the request's latency.
                asyncio.get_running_loop().call_later(
                    self.endpoint.limits.latency(), self._respond, status, payload
                )

    def _respond(self, status: int, payload: bytes) -> None:
        assert self.transport is not None
        if self.transport.is_closing():
            return
        reason = b"OK" if status == 200 else b"Bad Request"
        self.transport.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: application/x-amz-json-1.0\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (status, reason, len(payload), payload)
        )


async def _serve(pages: list[bytes], limits: RealLimits | None) -> None:
    endpoint = _Endpoint(pages, limits)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(endpoint), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    async with server:
        await server.serve_forever()


class FakeDynamoDB:
    """The endpoint in a child process: ``with FakeDynamoDB(page_rows=…) as fake: fake.url``."""

    def __init__(
        self, page_rows: int = 0, per_page: int = 2500, *, realistic: bool = False, latency: bool = False
    ) -> None:
        self._command = [
            sys.executable,
            "-m",
            "benchmarks.fake_dynamodb",
            "--page-rows",
            str(page_rows),
            "--per-page",
            str(per_page),
            *(["--realistic"] if realistic else []),
            *(["--latency"] if latency else []),
        ]
        self._process: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> FakeDynamoDB:
        self._process = subprocess.Popen(
            self._command, cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        port = int(self._process.stdout.readline())
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stats(self) -> dict[str, int]:
        """How many requests the endpoint has answered, and how many items it was asked to write."""
        response = requests.post(
            self.url, headers={"X-Amz-Target": "DynamoDB_20120810.Stats"}, data=b"{}", timeout=10
        )
        return response.json()  # type: ignore[no-any-return]

    def __exit__(self, *_: object) -> None:
        assert self._process is not None
        self._process.terminate()
        self._process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--page-rows", type=int, default=0)
    parser.add_argument("--per-page", type=int, default=2500)
    parser.add_argument("--realistic", action="store_true", help="DynamoDB's latency and capacity limits")
    parser.add_argument("--latency", action="store_true", help="DynamoDB's latency only, no capacity limits")
    args = parser.parse_args()
    pages = build_pages(stored_items(args.page_rows), args.per_page) if args.page_rows else []
    limits = RealLimits() if args.realistic else RealLimits(capped=False) if args.latency else None
    asyncio.run(_serve(pages, limits))


if __name__ == "__main__":
    main()
