"""Make moto behave like the real services where impex depends on it.

DynamoDB applies each item write atomically: a conditional UpdateItem checks and writes in one step,
and a read sees an item either before or after a write, never half-way. moto applies an update's
actions one by one to the stored item, without a lock, so under threads two conditional writes can
both pass (seen about once in 30 tries) and a GetItem can see a job already COMPLETED whose result
is not yet set (seen in CI). Serialising moto's DynamoDB requests, the response's serialisation
included, restores both guarantees; it does not make an unconditional read-then-write safe, so the
race tests still catch such a bug.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_LOCK = threading.RLock()
_PATCHED = False


def make_dynamodb_requests_atomic() -> None:
    """Run each moto DynamoDB request, its serialised response included, under one lock (idempotent)."""
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
    _PATCHED = True
