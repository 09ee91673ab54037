"""Write sharding: a record's partition is a stable hash of its identity; one shard keeps the layout
datasets had before sharding; exports read every partition, or the one a key filter names."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from impex.datasets.model import Dataset
from impex.datasets.query import compile_query
from impex.datasets.records import RecordLayout
from impex.jobs.options import ExportFilter

FIELDS = [{"name": "sku", "type": "string", "required": True}, {"name": "qty", "type": "integer"}]


def layout(shards: int | None) -> RecordLayout:
    dataset = Dataset.model_validate(
        {
            "fields": FIELDS,
            "keys": ["sku"],
            "shards": shards,
            "tenant": "acme",
            "name": "items",
            "createdAt": "2026-01-01T00:00:00Z",
            "updatedAt": "2026-01-01T00:00:00Z",
        }
    )
    return RecordLayout.for_dataset(dataset, records_table="records", external_tables={})


@pytest.mark.parametrize("shards", [None, 1])
def test_one_shard_is_the_layout_from_before_sharding(shards):
    records = layout(shards)
    assert records.partitions == ["acme#items"]
    assert records.key("S1", {"sku": "S1"}) == {"pk": {"S": "acme#items"}, "sk": {"S": "S1"}}


def test_records_spread_evenly_over_the_shards():
    # Given a ten-shard dataset and 20,000 keys
    records = layout(10)
    # When each key's partition is computed
    counts = Counter(records.key(f"S{i}", {})["pk"]["S"] for i in range(20_000))
    # Then every partition is one of the ten, and each holds about a tenth
    assert set(counts) == {f"acme#items#{shard}" for shard in range(10)}
    assert all(1_700 <= count <= 2_300 for count in counts.values()), counts


def test_a_records_partition_is_the_same_in_every_process():
    # Python's own hash() differs per process; the partition must not
    code = (
        "from tests.unit.test_sharding import layout; "
        "print([layout(10).partition_of(f'S{i}') for i in range(50)])"
    )
    runs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        for _ in range(2)
    }
    assert len(runs) == 1
    assert runs.pop().strip() == str([layout(10).partition_of(f"S{i}") for i in range(50)])


def test_an_export_reads_every_partition_and_their_sort_key():
    query = compile_query(layout(4), [], ["sku", "qty"])
    assert query.partitions == [f"acme#items#{shard}" for shard in range(4)]
    requests = [query.request(partition) for partition in query.partitions]
    pk_values = [r["ExpressionAttributeValues"][query.partition_value] for r in requests]
    assert pk_values == [{"S": p} for p in query.partitions]
    assert "sk" in query.names.values()


def test_a_key_filter_reads_only_the_partition_holding_the_key():
    records = layout(8)
    query = compile_query(records, [ExportFilter(field="sku", op="eq", value="S42")], ["sku"])
    holding = records.key("S42", {})["pk"]["S"]
    assert query.partitions == [holding]
    assert query.request()["ExpressionAttributeValues"][query.partition_value] == {"S": holding}
