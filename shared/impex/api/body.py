"""Reading a request body as JSON within limits, so no body of any size or depth becomes a 500."""

from __future__ import annotations

import json
from typing import Any

from impex.errors import BadRequest, BodyTooLarge

# API Gateway itself caps payloads at 10 MB and Lambda at 6 MB; no impex request needs more than this.
MAX_BODY_BYTES = 1024 * 1024
# Deeper than any impex request (a dataset definition nests 4 levels), and far below the depth at
# which Python's parser or pydantic would run out of stack.
MAX_BODY_DEPTH = 32


def parse_json_body(text: str) -> Any:
    """The body as JSON; BodyTooLarge or BadRequest (saying which limit) for what cannot be read."""
    # Characters first (cheap); encode only a body that could be over the limit in UTF-8.
    size = len(text) if len(text) > MAX_BODY_BYTES or len(text) * 4 <= MAX_BODY_BYTES else len(text.encode())
    if size > MAX_BODY_BYTES:
        raise BodyTooLarge(
            f"the request body is {size:,} bytes; impex accepts at most {MAX_BODY_BYTES:,}",
            details={"limit": "bodyBytes", "max": MAX_BODY_BYTES},
        )
    try:
        value = json.loads(text)
    except RecursionError:
        raise _too_deep() from None
    except ValueError as error:  # JSONDecodeError, or an integer longer than Python converts
        if isinstance(error, json.JSONDecodeError):
            raise BadRequest(f"the request body is not valid JSON ({error.msg} at {error.pos})") from None
        raise BadRequest(
            "the request body holds a number with more digits than impex reads (4,300)",
            details={"limit": "numberDigits", "max": 4300},
        ) from None
    if _depth(value) > MAX_BODY_DEPTH:
        raise _too_deep()
    return value


def _too_deep() -> BadRequest:
    return BadRequest(
        f"the request body is nested more than {MAX_BODY_DEPTH} levels deep",
        details={"limit": "bodyDepth", "max": MAX_BODY_DEPTH},
    )


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest (iteratively: a deep value must not exhaust the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        current, level = stack.pop()
        if isinstance(current, dict):
            children: Any = current.values()
        elif isinstance(current, list):
            children = current
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_BODY_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest
