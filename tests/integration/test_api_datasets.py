"""Dataset management through the API, per tenant."""

import pytest

from tests.integration.conftest import CUSTOMERS


def test_put_creates_then_replaces(api):
    created = api.call("PUT", "/datasets/customers", body=CUSTOMERS)
    assert created.status == 201
    body = created.json()
    assert body["name"] == "customers" and body["keys"] == ["email"] and "tenant" not in body
    changed = {**CUSTOMERS, "fields": [*CUSTOMERS["fields"], {"name": "city", "type": "string"}]}
    replaced = api.call("PUT", "/datasets/customers", body=changed)
    assert replaced.status == 200
    assert replaced.json()["createdAt"] == body["createdAt"]
    assert [f["name"] for f in api.call("GET", "/datasets/customers").json()["fields"]][-1] == "city"


def test_keys_cannot_change_once_set(api):
    api.call("PUT", "/datasets/customers", body=CUSTOMERS)
    changed = {
        **CUSTOMERS,
        "keys": ["name"],
        "fields": [{**f, "required": True} if f["name"] == "name" else f for f in CUSTOMERS["fields"]],
    }
    response = api.call("PUT", "/datasets/customers", body=changed)
    assert response.status == 409
    assert response.json()["error"]["code"] == "dataset_conflict"


def test_list_and_delete(api):
    for name in ("b-set", "a-set"):
        api.call("PUT", f"/datasets/{name}", body=CUSTOMERS)
    listed = api.call("GET", "/datasets").json()["datasets"]
    assert [d["name"] for d in listed] == ["a-set", "b-set"]
    assert api.call("DELETE", "/datasets/a-set").status == 204
    assert api.call("GET", "/datasets/a-set").status == 404
    assert api.call("DELETE", "/datasets/a-set").status == 404
    assert [d["name"] for d in api.call("GET", "/datasets").json()["datasets"]] == ["b-set"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"fields": [{"name": "a", "type": "string"}], "keys": ["b"]}, "not one of the fields"),
        ({"fields": [{"name": "a", "type": "money"}]}, "type"),
        ({"fields": []}, "fields"),
        ({"keys": []}, "fields"),
        ({"fields": [{"name": "a", "type": "integer", "constraints": {"min": "x"}}]}, "min/max"),
        # JSON bodies may spell infinities and NaN (1e999, Infinity, NaN): DynamoDB stores none of them
        ({"fields": [{"name": "a", "type": "decimal", "constraints": {"max": 1e999}}]}, "finite number"),
        ({"fields": [{"name": "a", "type": "decimal", "constraints": {"enum": [float("nan")]}}]}, "finite"),
    ],
)
def test_a_bad_definition_is_a_422_with_a_reason(api, body, fragment):
    response = api.call("PUT", "/datasets/things", body=body)
    assert response.status == 422, response.text
    assert fragment in response.text


def test_a_bad_dataset_name_is_a_422(api):
    assert api.call("PUT", "/datasets/-bad", body=CUSTOMERS).status == 422


def test_a_target_table_outside_the_allow_list_is_refused(api):
    response = api.call("PUT", "/datasets/orders", body={**CUSTOMERS, "target": {"table": "orders"}})
    assert response.status == 422
    assert "allow-list" in response.json()["error"]["message"]


def test_a_dataset_on_an_allow_listed_table_must_use_its_keys(stack, monkeypatch):
    from tests.integration.conftest import ApiClient, load_function

    # Given a deployment that allows datasets on the existing table orders, keyed by orderId
    monkeypatch.setenv("EXTERNAL_TABLE_ARNS", "arn:aws:dynamodb:us-east-1:123456789012:table/orders")
    monkeypatch.setenv("EXTERNAL_TABLE_KEYS", "orderId")
    api = ApiClient(load_function("api"))
    order_fields = [
        {"name": "orderId", "type": "string", "required": True},
        {"name": "total", "type": "decimal"},
    ]
    # When a dataset targets it with other keys, then it is refused naming the key
    wrong = api.call(
        "PUT", "/datasets/orders", body={"fields": order_fields, "keys": [], "target": {"table": "orders"}}
    )
    assert wrong.status == 422 and "orderId" in wrong.text
    # When it uses the table's keys, then it is created on that table
    right = api.call(
        "PUT",
        "/datasets/orders",
        body={"fields": order_fields, "keys": ["orderId"], "target": {"table": "orders"}},
    )
    assert right.status == 201, right.text
    assert right.json()["target"] == {"table": "orders"}
