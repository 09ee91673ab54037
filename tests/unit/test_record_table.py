"""RecordTable keeps DynamoDB's batch limits itself (moto does not enforce them) and retries what
DynamoDB leaves unprocessed."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from impex.aws.records import BATCH_GET_LIMIT, BATCH_WRITE_LIMIT, RecordTable


class RecordingClient:
    """A stand-in for the low-level DynamoDB client that remembers every batch it was sent."""

    def __init__(self, unprocessed_first: int = 0) -> None:
        self.writes: list[int] = []
        self.written_keys: list[list[str]] = []
        self.reads: list[int] = []
        self.stored: dict[str, dict[str, Any]] = {}
        self._unprocessed_first = unprocessed_first
        self._lock = threading.Lock()

    def batch_write_item(self, RequestItems: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        ((table, requests),) = RequestItems.items()
        with self._lock:
            self.writes.append(len(requests))
            self.written_keys.append([request["PutRequest"]["Item"]["sk"]["S"] for request in requests])
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
    table = RecordTable(client, "records", max_workers=1, backoff=lambda _: 0.0)
    # When 30 items are put
    table.put_many(items(30))
    table.close()
    # Then exactly the 10 held back were sent again (after the first batch, in a request of their
    # own), and all 30 are stored
    assert sorted(client.writes) == [5, 10, 25] and client.writes[0] == 25
    assert [keys for keys in client.written_keys if len(keys) == 10] == [[f"{i:04d}" for i in range(10)]]
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


class FailingFirst:
    """A client that refuses the first batch as invalid at once and takes the others slowly."""

    def __init__(self) -> None:
        self.calls = 0
        self.finished = 0
        self._lock = threading.Lock()

    def batch_write_item(self, RequestItems: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
            first = self.calls == 1
        if first:
            error = {"Error": {"Code": "ValidationException", "Message": "no"}}
            raise ClientError(error, "BatchWriteItem")  # type: ignore[arg-type]
        time.sleep(0.1)
        with self._lock:
            self.finished += 1
        return {"UnprocessedItems": {}}


def test_a_failed_batch_is_raised_only_once_every_other_batch_has_come_back():
    # Given a client that refuses one batch at once while the others take 0.1 s
    client = FailingFirst()
    table = RecordTable(client, "records", max_workers=4)
    # When 100 items (four batches) are put
    with pytest.raises(ClientError):
        table.put_many(items(100))
    # Then by the time the caller hears of the failure, no write is still in flight to land after it
    assert client.calls == 4 and client.finished == 3
    table.close()
