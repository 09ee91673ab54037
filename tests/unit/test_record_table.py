"""RecordTable keeps DynamoDB's batch limits itself (moto does not enforce them) and retries what
DynamoDB leaves unprocessed."""

from __future__ import annotations

import threading
from typing import Any

from impex.aws.records import BATCH_GET_LIMIT, BATCH_WRITE_LIMIT, RecordTable


class RecordingClient:
    """A stand-in for the low-level DynamoDB client that remembers every batch it was sent."""

    def __init__(self, unprocessed_first: int = 0) -> None:
        self.writes: list[int] = []
        self.reads: list[int] = []
        self.stored: dict[str, dict[str, Any]] = {}
        self._unprocessed_first = unprocessed_first
        self._lock = threading.Lock()

    def batch_write_item(self, RequestItems: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        ((table, requests),) = RequestItems.items()
        with self._lock:
            self.writes.append(len(requests))
            held_back = requests[: self._unprocessed_first]
            self._unprocessed_first = 0
        for request in requests[len(held_back) :]:
            item = request["PutRequest"]["Item"]
            self.stored[item["sk"]["S"]] = item
        return {"UnprocessedItems": {table: held_back} if held_back else {}}

    def batch_get_item(self, RequestItems: dict[str, dict[str, Any]]) -> dict[str, Any]:
        ((table, request),) = RequestItems.items()
        self.reads.append(len(request["Keys"]))
        found = [self.stored[key["sk"]["S"]] for key in request["Keys"] if key["sk"]["S"] in self.stored]
        return {"Responses": {table: found}}


def items(count: int) -> list[dict[str, Any]]:
    return [{"pk": {"S": "t#d"}, "sk": {"S": f"{i:04d}"}, "n": {"N": str(i)}} for i in range(count)]


def test_writes_go_in_batches_of_at_most_25_items():
    # Given a table over a client that records each request
    client = RecordingClient()
    table = RecordTable(client, "records", max_workers=3)
    # When 260 items are put
    table.put_many(items(260))
    table.close()
    # Then no request carried more than 25, and every item was stored once
    assert max(client.writes) == BATCH_WRITE_LIMIT and sum(client.writes) == 260
    assert len(client.stored) == 260


def test_unprocessed_items_are_sent_again_until_written():
    # Given a client that leaves the first 10 items of its first batch unprocessed
    client = RecordingClient(unprocessed_first=10)
    table = RecordTable(client, "records", max_workers=1, sleep=lambda _: None)
    # When 30 items are put
    table.put_many(items(30))
    table.close()
    # Then the 10 were sent again, and all 30 are stored
    assert client.writes == [25, 10, 5]
    assert len(client.stored) == 30


def test_reads_go_in_batches_of_at_most_100_keys_and_come_back_in_key_order():
    # Given 150 stored items
    client = RecordingClient()
    table = RecordTable(client, "records", max_workers=2)
    table.put_many(items(150))
    # When 250 keys are read, 100 of them missing and one asked twice
    keys = [{"pk": {"S": "t#d"}, "sk": {"S": f"{i:04d}"}} for i in [*range(249, -1, -1), 3]]
    found = table.get_many(keys)
    table.close()
    # Then no request asked for more than 100 keys, and each answer sits at its key's position
    assert max(client.reads) == BATCH_GET_LIMIT and sum(client.reads) == 250
    assert [item and item["sk"]["S"] for item in found] == [
        f"{i:04d}" if i < 150 else None for i in [*range(249, -1, -1), 3]
    ]
