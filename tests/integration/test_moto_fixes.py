"""The local stack's moto keeps DynamoDB's item atomicity, which impex's job records rely on."""

from __future__ import annotations

import threading

import boto3
from moto import mock_aws

from impex.local.moto_fixes import make_dynamodb_requests_atomic

ATTRIBUTES = 40


def test_a_read_never_sees_half_of_an_update():
    # Given moto with the local stack's fix, and a job-like item
    make_dynamodb_requests_atomic()
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
