"""Make moto behave like the real services where impex depends on it.

DynamoDB applies each item write atomically: a conditional UpdateItem checks and writes in one step,
and a read sees an item either before or after a write, never half-way. moto applies an update's
actions one by one to the stored item, without a lock, so under threads two conditional writes can
both pass (seen about once in 30 tries) and a GetItem can see a job already COMPLETED whose result
is not yet set (seen in CI). Serialising moto's DynamoDB requests, the response's serialisation
included, restores both guarantees; it does not make an unconditional read-then-write safe, so the
race tests still catch such a bug.

DynamoDB reads a Query's partition alone. moto 5 gathers and sorts every item of the table for each
Query page, then keeps the partition's: a page costs O(table), so a 40k-row export on the local
stack took over a minute and, under the lock above, held every other request (a status read
waited 10 s). A Query of a table's own key now gathers its one partition, in the same order.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_LOCK = threading.RLock()
_PATCHED = False
_QUERYING = threading.local()  # the (table, partition key) this thread's Query reads


def make_moto_dynamodb_faithful() -> None:
    """Run each moto DynamoDB request, its serialised response included, under one lock, and read a
    Query's one partition (idempotent)."""
    global _PATCHED
    if _PATCHED:
        return
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action

    @functools.wraps(original)
    def locked(self: Any) -> Any:
        with _LOCK:
            return original(self)

    DynamoHandler.call_action = locked  # type: ignore[method-assign]
    _read_one_partition_per_query()
    _PATCHED = True


def _read_one_partition_per_query() -> None:
    from moto.dynamodb.models.table import Table

    query, all_items = Table.query, Table.all_items

    @functools.wraps(query)
    def partition_query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name or hash_key is None or not self.range_key_attr:
            return query(self, hash_key, *args, **kwargs)
        _QUERYING.partition = (self, hash_key)
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            _QUERYING.partition = None

    @functools.wraps(all_items)
    def items_for_query(self: Any) -> Any:
        partition = getattr(_QUERYING, "partition", None)
        if partition is None or partition[0] is not self:
            return all_items(self)
        # .get: the items dict is a defaultdict, and a Query must not add an empty partition to it
        return sorted(self.items.get(partition[1], {}).values(), key=lambda item: item.range_key)

    Table.query = partition_query  # type: ignore[method-assign]
    Table.all_items = items_for_query  # type: ignore[method-assign]
