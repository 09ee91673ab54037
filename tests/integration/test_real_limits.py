"""Against an endpoint with DynamoDB's real limits (benchmarks/fake_dynamodb.py --realistic: a few
milliseconds a request, 1,000 write units a second per partition key): the record writer backs off
and finishes, exactly, without hammering; and spreading the keys over partitions (sharding) removes
the throttling. moto has no such limits, so this is where they are tested."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from benchmarks.fake_dynamodb import FakeDynamoDB
from impex.aws.dynamo_http import raw_client_like
from impex.aws.records import BATCH_WRITE_LIMIT, RecordTable

ITEMS = 3000


@pytest.fixture
def real() -> Iterator[FakeDynamoDB]:
    with FakeDynamoDB(realistic=True) as endpoint:
        yield endpoint


def items(partitions: int) -> list[dict]:
    return [
        {"pk": {"S": f"t#d#{i % partitions}"}, "sk": {"S": f"K{i:06d}"}, "n": {"N": str(i)}}
        for i in range(ITEMS)
    ]


def write(real: FakeDynamoDB, batch: list[dict]) -> dict[str, int]:
    client = raw_client_like(boto3.client("dynamodb", endpoint_url=real.url, region_name="us-east-1"))
    table = RecordTable(client, "records", max_workers=8)
    before = real.stats()
    try:
        table.put_many(batch)
    finally:
        table.close()
    after = real.stats()
    return {name: after[name] - before[name] for name in after}


def test_one_hot_partition_is_throttled_and_every_item_still_lands_once(real):
    # Given 3,000 items under one partition key: three times what it takes in a second
    # When the record writer puts them
    counts = write(real, items(partitions=1))
    # Then DynamoDB (the model) throttled it, and yet every item was written, each once
    assert counts["unprocessed"] > 0
    assert counts["writes"] == ITEMS
    # and it backed off rather than hammering: on average at most a few requests per batch
    batches = ITEMS // BATCH_WRITE_LIMIT
    assert counts["requests"] <= 6 * batches, counts


def test_the_same_items_over_sixteen_partitions_are_never_throttled(real):
    counts = write(real, items(partitions=16))
    assert counts["writes"] == ITEMS
    assert counts["unprocessed"] == 0 and counts["throttled_requests"] == 0
    assert counts["requests"] == ITEMS // BATCH_WRITE_LIMIT
