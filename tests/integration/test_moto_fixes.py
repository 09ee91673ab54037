"""The local stack's moto keeps DynamoDB's item atomicity, which impex's job records rely on."""

from __future__ import annotations

import threading

import boto3
from moto import mock_aws

from impex.local.moto_fixes import make_moto_dynamodb_faithful

ATTRIBUTES = 40


def test_a_read_never_sees_half_of_an_update():
    # Given moto with the local stack's fix, and a job-like item
    make_moto_dynamodb_faithful()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="jobs",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        )
        client.put_item(TableName="jobs", Item={"id": {"S": "j"}, "status": {"N": "0"}})
        torn: list[dict] = []
        done = threading.Event()

        def update() -> None:
            # When one thread sets the status and many other attributes in each UpdateItem...
            for round_ in range(1, 150):
                names = ", ".join(f"a{i} = :v" for i in range(ATTRIBUTES))
                client.update_item(
                    TableName="jobs",
                    Key={"id": {"S": "j"}},
                    UpdateExpression=f"SET #s = :v, {names}",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":v": {"N": str(round_)}},
                )
            done.set()

        def read() -> None:
            # ...while another reads the item as fast as it can
            while not done.is_set():
                item = client.get_item(TableName="jobs", Key={"id": {"S": "j"}}, ConsistentRead=True)["Item"]
                status = item["status"]["N"]
                if status != "0" and any(item.get(f"a{i}", {}).get("N") != status for i in range(ATTRIBUTES)):
                    torn.append(item)

        threads = [threading.Thread(target=update), threading.Thread(target=read)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    # Then every read saw the item wholly before or wholly after an update
    assert not any(thread.is_alive() for thread in threads)
    assert not torn, f"{len(torn)} reads saw an update half applied"


def test_a_query_reads_its_partition_exactly_as_moto_reads_the_whole_table():
    # Given moto with the local stack's fix, and a table of several partitions, one of them paged
    make_moto_dynamodb_faithful()
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="records",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
        )
        for partition in ("a#0", "a#1", "b#0"):
            for i in range(0, 60, 7 if partition == "a#1" else 1):
                item = {"pk": {"S": partition}, "sk": {"S": f"k{(i * 37) % 60:03d}"}, "n": {"N": str(i)}}
                client.put_item(TableName="records", Item=item)
        table = dynamodb_backends["123456789012"]["us-east-1"].get_table("records")
        whole_table_query = Table.query.__wrapped__  # type: ignore[attr-defined]
        partitions_before = set(table.items)
        # When the same Queries run through the fix and through moto's own scan of the whole table:
        # pages from a start key, both directions, a key condition, a limit, a missing partition
        for partition in ("a#0", "a#1", "b#0", "missing"):
            for forward in (True, False):
                for start, limit in (
                    (None, 1000),
                    (None, 5),
                    ({"pk": {"S": partition}, "sk": {"S": "k020"}}, 7),
                ):
                    for comparison, values in ((None, []), ("BEGINS_WITH", [DynamoType({"S": "k01"})])):
                        arguments = (
                            DynamoType({"S": partition}),
                            comparison,
                            values,
                            limit,
                            start,
                            forward,
                            None,
                        )
                        ours = table.query(*arguments)
                        motos = whole_table_query(table, *arguments)
                        # Then they return the same items, counts and last keys
                        assert [i.to_json() for i in ours[0]] == [i.to_json() for i in motos[0]]
                        assert ours[1:] == motos[1:]
        # And a Query of a missing partition adds no empty partition to the table
        assert set(table.items) == partitions_before
