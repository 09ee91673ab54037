"""Record items in DynamoDB, in batches: BatchGetItem by 100, BatchWriteItem by 25, bounded concurrency.

moto does not enforce the 25-item BatchWriteItem limit; DynamoDB does, so the chunking is ours.
Unprocessed items and throttling are retried with exponential backoff and full jitter, and the
requests in flight adapt (InFlightWindow): enough to fill each request's latency, fewer against a
throttled partition.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from impex.aws.dynamo_http import RETRYABLE

BATCH_WRITE_LIMIT = 25
BATCH_GET_LIMIT = 100


class WriteFailed(Exception):
    """DynamoDB kept refusing a batch after every retry (a transient failure for the job)."""


class InFlightWindow:
    """How many requests may be in flight: one more per window of requests DynamoDB took whole (up
    to the cap), half as many after a throttled one (additive increase, multiplicative decrease).
    With a few milliseconds a request, throughput is what is in flight; against a hot partition,
    more in flight is only more refusals."""

    def __init__(self, cap: int, *, start: int | None = None) -> None:
        self.cap = cap
        self._size = float(start or cap)
        self._active = 0
        self._changed = threading.Condition()
        self.throttles = 0  # throttled requests so far (their callers adapt too)

    @property
    def size(self) -> int:
        """Requests allowed in flight now."""
        return max(1, int(self._size))

    def acquire(self) -> None:
        """Wait for room in the window."""
        with self._changed:
            while self._active >= self.size:
                self._changed.wait()
            self._active += 1

    def release(self, *, throttled: bool) -> None:
        """A request came back: shrink the window if it was throttled, grow it otherwise."""
        with self._changed:
            self._active -= 1
            if throttled:
                self.throttles += 1
                self._size = max(1.0, self._size / 2)
            else:
                self._size = min(float(self.cap), self._size + 1.0 / self.size)
            self._changed.notify_all()


def _key_id(key: dict[str, Any], names: list[str]) -> tuple[Any, ...]:
    """A hashable identity for a low-level key (each key attribute has one type per table)."""
    return tuple([next(iter(key[name].values())) for name in names])


class RecordTable:
    """One table's record items through the low-level client (no parameter validation: speed)."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        max_workers: int = 16,
        max_retries: int = 10,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self.table_name = table_name
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="records")
        self.window = InFlightWindow(max_workers, start=max(1, max_workers // 2))
        self._max_retries = max_retries
        self._sleep = sleep

    def close(self) -> None:
        """Stop the worker threads."""
        self._pool.shutdown(wait=True)

    # ---- reads -----------------------------------------------------------------------------------

    def get_many(
        self, keys: Sequence[dict[str, Any]], projection: Sequence[str] | None = None
    ) -> list[dict[str, Any] | None]:
        """The stored item of each key (None where there is none), in the order of ``keys``."""
        if not keys:
            return []
        names = list(keys[0])
        ids = [_key_id(key, names) for key in keys]
        unique = list(dict(zip(ids, keys, strict=True)).values())
        chunks = [unique[i : i + BATCH_GET_LIMIT] for i in range(0, len(unique), BATCH_GET_LIMIT)]
        found: dict[tuple[Any, ...], dict[str, Any]] = {}
        for items in self._pool.map(lambda chunk: self._get_chunk(chunk, projection), chunks):
            for item in items:
                found[_key_id(item, names)] = item
        return [found.get(key) for key in ids]

    def _get_chunk(
        self, keys: list[dict[str, Any]], projection: Sequence[str] | None
    ) -> list[dict[str, Any]]:
        request: dict[str, Any] = {"Keys": keys, "ConsistentRead": True}
        if projection:
            names = {f"#p{i}": name for i, name in enumerate(dict.fromkeys([*keys[0], *projection]))}
            request["ProjectionExpression"] = ", ".join(names)
            request["ExpressionAttributeNames"] = names
        items: list[dict[str, Any]] = []
        pending = {self.table_name: request}
        for attempt in range(self._max_retries + 1):
            response = self._call("batch_get_item", RequestItems=pending)
            items.extend(response.get("Responses", {}).get(self.table_name, []))
            pending = response.get("UnprocessedKeys") or {}
            if not pending:
                return items
            self._backoff(attempt)
        raise WriteFailed(f"DynamoDB left keys unread after {self._max_retries} retries")

    # ---- writes ----------------------------------------------------------------------------------

    def put_many(self, items: Sequence[dict[str, Any]]) -> None:
        """Put every item (at most one per key per call), 25 per request, several requests at once."""
        chunks = [list(items[i : i + BATCH_WRITE_LIMIT]) for i in range(0, len(items), BATCH_WRITE_LIMIT)]
        for _ in self._pool.map(self._write_chunk, chunks):
            pass

    def _write_chunk(self, items: list[dict[str, Any]]) -> None:
        assert len(items) <= BATCH_WRITE_LIMIT
        pending: list[dict[str, Any]] = [{"PutRequest": {"Item": item}} for item in items]
        for attempt in range(self._max_retries + 1):
            response = self._call("batch_write_item", RequestItems={self.table_name: pending})
            pending = (response.get("UnprocessedItems") or {}).get(self.table_name, [])
            if not pending:
                return
            self._backoff(attempt)
        raise WriteFailed(f"DynamoDB left {len(pending)} items unwritten after {self._max_retries} retries")

    def put_if(self, items: Sequence[tuple[dict[str, Any], str, dict[str, Any]]]) -> list[bool]:
        """Conditional puts, one request each (concurrently): (item, condition, values) -> written?"""
        return list(self._pool.map(lambda entry: self._put_one(*entry), items))

    def _put_one(self, item: dict[str, Any], condition: str, values: dict[str, Any]) -> bool:
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": item,
            "ConditionExpression": condition,
        }
        names = {f"#{n}": n for n in _names_in(condition)}
        if names:
            request["ExpressionAttributeNames"] = names
        if values:
            request["ExpressionAttributeValues"] = values
        try:
            self._call("put_item", **request)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def update_many(self, updates: Sequence[tuple[dict[str, Any], dict[str, Any]]]) -> list[bool]:
        """Set only the given attributes of each item: (key, attributes) -> True if the item was new."""
        return list(self._pool.map(lambda entry: self._update_one(*entry), updates))

    def _update_one(self, key: dict[str, Any], attributes: dict[str, Any]) -> bool:
        names = {f"#a{i}": name for i, name in enumerate(attributes)}
        values = {f":a{i}": value for i, value in enumerate(attributes.values())}
        expression = "SET " + ", ".join(f"#a{i} = :a{i}" for i in range(len(attributes)))
        response = self._call(
            "update_item",
            TableName=self.table_name,
            Key=key,
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_OLD",
        )
        return not response.get("Attributes")

    # ---- pages -----------------------------------------------------------------------------------

    def page(
        self,
        request: dict[str, Any],
        *,
        start_key: dict[str, Any] | None = None,
        segment: tuple[int, int] | None = None,
        limit: int | None = None,
    ) -> tuple[list[Any], Any]:
        """One Query page (when the request has a key condition) or Scan page: (items, LastEvaluatedKey)."""
        call = dict(request, TableName=self.table_name)
        if start_key:
            call["ExclusiveStartKey"] = start_key
        if limit:
            call["Limit"] = limit
        if "KeyConditionExpression" in call:
            response = self._call("query", **call)
        else:
            if segment is not None:
                call["Segment"], call["TotalSegments"] = segment
            response = self._call("scan", **call)
        return response.get("Items", []), response.get("LastEvaluatedKey")

    def page_later(
        self, request: dict[str, Any], *, start_key: dict[str, Any] | None = None, limit: int | None = None
    ) -> Future[tuple[list[Any], Any]]:
        """One Query/Scan page read on the table's pool, so the caller can work while it arrives."""
        return self._pool.submit(self.page, request, start_key=start_key, limit=limit)

    def pages_in_parallel(
        self, requests: list[tuple[dict[str, Any], dict[str, Any] | None, tuple[int, int] | None]]
    ) -> list[tuple[list[Any], Any]]:
        """Several pages at once (parallel Scan segments)."""
        return list(
            self._pool.map(lambda entry: self.page(entry[0], start_key=entry[1], segment=entry[2]), requests)
        )

    # ---- plumbing --------------------------------------------------------------------------------

    def _call(self, operation: str, **request: Any) -> dict[str, Any]:
        for attempt in range(self._max_retries + 1):
            self.window.acquire()
            throttled = True
            try:
                response: dict[str, Any] = getattr(self._client, operation)(**request)
                throttled = bool(response.get("UnprocessedItems") or response.get("UnprocessedKeys"))
                return response
            except ClientError as error:
                throttled = error.response["Error"]["Code"] in RETRYABLE
                if not throttled or attempt == self._max_retries:
                    raise
            finally:
                self.window.release(throttled=throttled)
            self._backoff(attempt)
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> None:
        # Exponential backoff with full jitter, capped at 5 seconds.
        self._sleep(random.uniform(0, min(5.0, 0.05 * 2**attempt)))  # noqa: S311 - jitter, not crypto


def _names_in(condition: str) -> list[str]:
    return [
        token[1:] for token in condition.replace("(", " ").replace(")", " ").split() if token.startswith("#")
    ]
