"""A DynamoDB endpoint on 127.0.0.1 that answers record traffic at once, so benchmarks measure the
client side: BatchWriteItem accepts everything, BatchGetItem finds nothing, and Query/Scan serve
pre-built pages of generated records (the bytes are prepared before the clock starts).

It runs in a process of its own (``python -m benchmarks.fake_dynamodb``), on asyncio with a minimal
HTTP/1.1 parser, so that its own cost (and moto's, in the parent) does not sit on the measured
client's critical path. It counts the items it was asked to write, so a run can check that every
row reached it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
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


class _Endpoint:
    def __init__(self, pages: list[bytes]) -> None:
        self.pages = pages
        self.counts = {"writes": 0, "requests": 0}

    def answer(self, operation: str, body: bytes) -> bytes:
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
        if operation == "Stats":
            return json.dumps(self.counts).encode()
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
            payload = self.endpoint.answer(operation, body)
            assert self.transport is not None
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload)
            )


async def _serve(pages: list[bytes]) -> None:
    endpoint = _Endpoint(pages)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(endpoint), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    async with server:
        await server.serve_forever()


class FakeDynamoDB:
    """The endpoint in a child process: ``with FakeDynamoDB(page_rows=…) as fake: fake.url``."""

    def __init__(self, page_rows: int = 0, per_page: int = 2500) -> None:
        self._command = [
            sys.executable,
            "-m",
            "benchmarks.fake_dynamodb",
            "--page-rows",
            str(page_rows),
            "--per-page",
            str(per_page),
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
    args = parser.parse_args()
    pages = build_pages(stored_items(args.page_rows), args.per_page) if args.page_rows else []
    asyncio.run(_serve(pages))


if __name__ == "__main__":
    main()
