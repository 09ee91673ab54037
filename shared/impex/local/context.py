"""A Lambda context object for local invocations that honours the function's timeout."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from impex.local.template import ACCOUNT_ID, REGION


@dataclass
class LocalLambdaContext:
    """Quacks like the context Lambda passes to handlers; the deadline starts at construction."""

    function_name: str
    timeout_seconds: float
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    _deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the invocation times out (never negative)."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))
