"""Make moto behave like the real services where impex depends on it.

DynamoDB applies each item write atomically: a conditional UpdateItem checks and writes in one step,
so two workers racing to claim a job cannot both win. moto checks and writes in separate steps
without a lock, so under threads two conditional writes can both pass (seen about once in 30 tries).
Serialising moto's item writes restores the guarantee our claim logic relies on; it does not make
an unconditional read-then-write safe, so the race tests still catch such a bug.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_LOCK = threading.RLock()
_PATCHED = False


def make_item_writes_atomic() -> None:
    """Wrap moto's DynamoDB item writes in one lock (idempotent)."""
    global _PATCHED
    if _PATCHED:
        return
    from moto.dynamodb.models import DynamoDBBackend

    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        original = getattr(DynamoDBBackend, name)

        def locked(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with _LOCK:
                return __original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, functools.wraps(original)(locked))
    _PATCHED = True
