"""Record items in DynamoDB, in batches: BatchGetItem by 100, BatchWriteItem by 25, bounded concurrency.

moto does not enforce the 25-item BatchWriteItem limit; DynamoDB does, so the chunking is ours.
Unprocessed items and throttling are retried with exponential backoff and full jitter, and the
requests in flight adapt (InFlightWindow): enough to fill each request's latency, fewer against a
throttled partition. Batches go through the lean client's multiplexer (one I/O thread for every
request in flight, see aws.dynamo_http.Multiplexer); with any other client they run on a pool.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import ClientError

from impex.aws.dynamo_http import RETRYABLE, RawDynamoDB, throttled_by
from impex.settings import RECORD_REQUESTS_IN_FLIGHT

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

    def try_acquire(self) -> bool:
        """Take room in the window if there is some now."""
        with self._changed:
            if self._active >= self.size:
                return False
            self._active += 1
            return True

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


def full_jitter(attempt: int) -> float:
    """Seconds to wait before a batch's retry: exponential backoff with full jitter, capped at 5 s."""
    return random.uniform(0, min(5.0, 0.05 * 2**attempt))  # noqa: S311 - jitter, not crypto


class _Transport(Protocol):
    def submit_many(
        self, method: str, requests: list[dict[str, Any]], *, gate: InFlightWindow, not_before: list[float]
    ) -> list[Future[dict[str, Any]]]: ...


class _Pooled:
    """Requests on a thread pool, for a client that can only block (botocore's, the tests' fakes)."""

    def __init__(self, client: Any, pool: ThreadPoolExecutor) -> None:
        self._client = client
        self._pool = pool

    def submit_many(
        self, method: str, requests: list[dict[str, Any]], *, gate: InFlightWindow, not_before: list[float]
    ) -> list[Future[dict[str, Any]]]:
        call: Callable[..., dict[str, Any]] = getattr(self._client, method)

        def send(request: dict[str, Any], when: float) -> dict[str, Any]:
            time.sleep(max(0.0, when - time.monotonic()))
            gate.acquire()
            response: dict[str, Any] | None = None
            error: BaseException | None = None
            try:
                response = call(**request)
                return response
            except BaseException as raised:
                error = raised
                raise
            finally:
                gate.release(throttled=throttled_by(response, error))

        return [
            self._pool.submit(send, request, when) for request, when in zip(requests, not_before, strict=True)
        ]


@dataclass(slots=True)
class _Batch:
    """One BatchWriteItem or BatchGetItem and what is left of it to send."""

    request_items: dict[str, Any]
    # What an answer leaves to send again (its UnprocessedItems / UnprocessedKeys), or None.
    left_by: Callable[[dict[str, Any]], dict[str, Any] | None]
    unfinished: str  # what a batch that never finished leaves: "items unwritten", "keys unread"
    rounds: int = 0  # times sent again for what DynamoDB left unprocessed
    refusals: int = 0  # times sent again after a throttling (or other retryable) error
    not_before: float = 0.0  # time.monotonic() of its next sending (after a backoff)


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
        max_workers: int = RECORD_REQUESTS_IN_FLIGHT,
        max_retries: int = 10,
        backoff: Callable[[int], float] = full_jitter,
    ) -> None:
        self._client = client
        self.table_name = table_name
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="records")
        # Batches go through the lean client's multiplexer (one I/O thread for every request in
        # flight); any other client blocks, so its requests run on the pool.
        self._transport: _Transport = (
            client if isinstance(client, RawDynamoDB) else _Pooled(client, self._pool)
        )
        self.window = InFlightWindow(max_workers, start=max(1, max_workers // 2))
        self._max_retries = max_retries
        self._backoff = backoff

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
        found: dict[tuple[Any, ...], dict[str, Any]] = {}

        def left_by(response: dict[str, Any]) -> dict[str, Any] | None:
            for item in response.get("Responses", {}).get(self.table_name, []):
                found[_key_id(item, names)] = item
            return response.get("UnprocessedKeys") or None

        batches = []
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            chunk = unique[start : start + BATCH_GET_LIMIT]
            request: dict[str, Any] = {"Keys": chunk, "ConsistentRead": True}
            if projection:
                aliases = {f"#p{i}": name for i, name in enumerate(dict.fromkeys([*names, *projection]))}
                request["ProjectionExpression"] = ", ".join(aliases)
                request["ExpressionAttributeNames"] = aliases
            batches.append(_Batch({self.table_name: request}, left_by, "keys unread"))
        self._send_batches("batch_get_item", batches)
        return [found.get(key) for key in ids]

    # ---- writes ----------------------------------------------------------------------------------

    def put_many(self, items: Sequence[dict[str, Any]]) -> None:
        """Put every item (at most one per key per call), 25 per request, several requests at once."""

        def left_by(response: dict[str, Any]) -> dict[str, Any] | None:
            return response.get("UnprocessedItems") or None

        requests = [{"PutRequest": {"Item": item}} for item in items]
        batches = [
            _Batch({self.table_name: requests[i : i + BATCH_WRITE_LIMIT]}, left_by, "items unwritten")
            for i in range(0, len(requests), BATCH_WRITE_LIMIT)
        ]
        self._send_batches("batch_write_item", batches)

    def _send_batches(self, method: str, batches: list[_Batch]) -> None:
        """Send every batch, as many in flight as the window allows, then each again (after its own
        backoff) for what DynamoDB left unprocessed or refused as throttled; returns or raises only
        once nothing it sent is in flight, so a failure never leaves writes landing after it."""
        pending = batches
        while pending:
            sent = self._transport.submit_many(
                method,
                [{"RequestItems": batch.request_items} for batch in pending],
                gate=self.window,
                not_before=[batch.not_before for batch in pending],
            )
            wait(sent)  # one wake-up for the lot, not one an answer
            again: list[_Batch] = []
            failure: BaseException | None = None
            for batch, answered in zip(pending, sent, strict=True):
                try:
                    delay = self._after(batch, answered)
                except BaseException as error:
                    failure = failure or error
                    continue
                if delay is not None:
                    batch.not_before = time.monotonic() + delay
                    again.append(batch)
            if failure is not None:
                raise failure
            pending = again

    def _after(self, batch: _Batch, answered: Future[dict[str, Any]]) -> float | None:
        """Seconds before the batch goes again, or None when it is done."""
        try:
            response = answered.result()
        except ClientError as error:
            if error.response["Error"]["Code"] not in RETRYABLE or batch.refusals == self._max_retries:
                raise
            batch.refusals += 1
            return self._backoff(batch.refusals - 1)
        left = batch.left_by(response)
        if left is None:
            return None
        if batch.rounds == self._max_retries:
            count = sum(len(v) if isinstance(v, list) else len(v.get("Keys", [])) for v in left.values())
            raise WriteFailed(f"DynamoDB left {count} {batch.unfinished} after {self._max_retries} retries")
        batch.request_items = left
        batch.rounds += 1
        return self._backoff(batch.rounds - 1)

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
            time.sleep(self._backoff(attempt))
        raise AssertionError("unreachable")


def _names_in(condition: str) -> list[str]:
    return [
        token[1:] for token in condition.replace("(", " ").replace(")", " ").split() if token.startswith("#")
    ]
