"""A DynamoDB endpoint on 127.0.0.1 that answers record traffic at once, so benchmarks measure the
client side: BatchWriteItem accepts everything, BatchGetItem finds nothing, and Query/Scan serve
pre-built pages of generated records (the bytes are prepared before the clock starts)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeDynamoDB:
    def __init__(self, pages: list[bytes] | None = None) -> None:
        self.pages = pages or []
        self.writes = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeDynamoDB:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; without this, Nagle's algorithm and the
            # client's delayed ACK stall every response by ~40 ms.
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                operation = self.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
                payload = b"{}"
                if operation == "BatchWriteItem":
                    request = json.loads(body)
                    with fake._lock:
                        fake.writes += sum(len(v) for v in request["RequestItems"].values())
                    payload = b'{"UnprocessedItems":{}}'
                elif operation == "BatchGetItem":
                    request = json.loads(body)
                    table = next(iter(request["RequestItems"]))
                    payload = json.dumps({"Responses": {table: []}, "UnprocessedKeys": {}}).encode()
                elif operation in ("Query", "Scan"):
                    request = json.loads(body)
                    start = int(request.get("ExclusiveStartKey", {}).get("page", {}).get("N", "0"))
                    payload = fake.pages[start] if start < len(fake.pages) else b'{"Items":[],"Count":0}'
                self.send_response(200)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler


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
