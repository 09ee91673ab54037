"""A sharded export's memory is bounded by bytes, not only by record counts (issue #13): records may
be 400 KB each, and a merge of many shards holding thousands of them would take gigabytes."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

from impex.aws.records import RecordTable
from impex.pipelines.exporter import (
    MERGE_HELD_BYTES,
    MERGE_READ_ITEMS,
    MERGED_PAGE_BYTES,
    MERGED_PAGE_ITEMS,
    _merged_pages,
    stored_bytes,
)

DYNAMODB_PAGE_BYTES = 1024 * 1024


class _Partitions:
    """A low-level client whose Query serves each partition's records in key order as DynamoDB does:
    at most ``Limit`` items and at most 1 MB a page. Records are made when served (so their memory is
    what the reader holds), each ``size`` characters of text."""

    def __init__(self, partitions: list[str], records: int, size: int) -> None:
        self.partitions = partitions
        self.records = records
        self.size = size
        self.limits: dict[str, list[int]] = {partition: [] for partition in partitions}

    def _record(self, partition: str, number: int) -> dict[str, Any]:
        key = f"{number:05d}-{partition}"
        return {"pk": {"S": partition}, "sk": {"S": key}, "text": {"S": key.ljust(self.size, "x")}}

    def query(self, **call: Any) -> dict[str, Any]:
        partition = call["ExpressionAttributeValues"][":pk"]["S"]
        limit = call.get("Limit", 10**9)
        self.limits[partition].append(limit)
        start = call.get("ExclusiveStartKey")
        number = int(start["sk"]["S"].split("-")[0]) + 1 if start else 0
        items: list[dict[str, Any]] = []
        taken = 0
        while number < self.records and len(items) < limit:
            item = self._record(partition, number)
            taken += len(item["text"]["S"]) + 2 * len(item["sk"]["S"]) + 40  # its JSON, near enough
            items.append(item)
            number += 1
            if taken >= DYNAMODB_PAGE_BYTES:
                break
        response: dict[str, Any] = {"Items": items}
        if number < self.records:
            response["LastEvaluatedKey"] = {"pk": items[-1]["pk"], "sk": items[-1]["sk"]}
        return response


class _Query:
    def __init__(self, partitions: list[str]) -> None:
        self.partitions = partitions

    @staticmethod
    def request(partition: str) -> dict[str, Any]:
        return {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": partition}},
        }


def _export(partitions: int, records: int, size: int) -> tuple[list[str], list[int], int, _Partitions]:
    """Merge the shards as an export does, dropping each page once written; (keys in file order, each
    merged page's bytes, the peak of memory traced while merging, the client)."""
    names = [f"t#d#{n}" for n in range(partitions)]
    client = _Partitions(names, records, size)
    table = RecordTable(client, "records", max_workers=2 * partitions)
    keys: list[str] = []
    page_bytes: list[int] = []
    tracemalloc.start()
    try:
        for page, _position in _merged_pages(table, _Query(names), {}, page_size=None):  # type: ignore[arg-type]
            keys += [item["sk"]["S"] for item in page]
            page_bytes.append(sum(stored_bytes(item) for item in page))
            del page
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        table.close()
    return keys, page_bytes, peak, client


@pytest.mark.parametrize(("partitions", "records"), [(8, 40), (40, 6)])
def test_a_merge_of_large_records_holds_a_bounded_number_of_bytes(partitions, records):
    # Given shards of records of 300 KB each (96 MB and 72 MB in all: under the count bounds alone, a
    # merged page of 2,500 records holds every one of them, and 40 shards' 1 MB pages, two a shard,
    # 80 MB)
    size = 300_000
    keys, page_bytes, peak, _client = _export(partitions=partitions, records=records, size=size)
    # Then every record is written once, in key order
    assert len(keys) == partitions * records and keys == sorted(keys) and len(set(keys)) == len(keys)
    # And no merged page holds more than its byte budget and one more record
    assert max(page_bytes) <= MERGED_PAGE_BYTES + size + 1024
    # And the merge never held more than a merged page, the shards' budget (or one record a page,
    # two pages a shard, if more) and some slack (the records in hand, JSON being measured)
    held = max(MERGE_HELD_BYTES, 2 * partitions * (size + 1024))
    assert peak < MERGED_PAGE_BYTES + held + 6 * 1024 * 1024, peak


def test_ordinary_records_keep_the_count_based_pages():
    # Given 4 shards of ordinary records (300 bytes)
    keys, page_bytes, _peak, client = _export(partitions=4, records=1500, size=300)
    # Then after each shard's one-record first page its Query pages are the count-based size, as
    # before: byte budgets cost small records no extra requests
    count_limit = max(10, min(MERGE_READ_ITEMS, 2 * MERGED_PAGE_ITEMS // 4))
    for limits in client.limits.values():
        assert limits[0] == 1
        assert set(limits[1:]) == {count_limit}
    assert len(keys) == 4 * 1500 and keys == sorted(keys)
    # And each merged page but the last holds the count-based number of records (~0.4 MB, in budget)
    assert len(page_bytes) == 3 and max(page_bytes) < MERGED_PAGE_BYTES
