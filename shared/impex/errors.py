"""Typed domain errors. The API maps each class to an HTTP status; nothing matches on messages."""

from __future__ import annotations

from typing import Any


class ImpexError(Exception):
    """Base class: a machine-readable code, a message a person can act on, and optional details."""

    code = "impex_error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequest(ImpexError):
    """The request could not be read (malformed JSON, a bad cursor)."""

    code = "bad_request"


class BodyTooLarge(ImpexError):
    """The request body is larger than impex reads."""

    code = "body_too_large"


class ItemTooLarge(ImpexError):
    """What the request would store is over DynamoDB's 400 KB item limit."""

    code = "item_too_large"


class InvalidInput(ImpexError):
    """The request was read but its content is not acceptable (unknown field, bad schema)."""

    code = "invalid_input"


class Unauthenticated(ImpexError):
    """The caller has no usable identity (missing or malformed tenant claim)."""

    code = "unauthenticated"


class NotFound(ImpexError):
    """The thing does not exist, or belongs to another tenant (which must not leak)."""

    code = "not_found"


class JobNotFound(NotFound):
    code = "job_not_found"


class DatasetNotFound(NotFound):
    code = "dataset_not_found"


class FileNotReady(NotFound):
    code = "file_not_available"


class Conflict(ImpexError):
    """The request clashes with the current state of a resource."""

    code = "conflict"


class IllegalTransition(Conflict):
    """A status change that the job state machine does not allow from the job's current state."""

    code = "illegal_transition"


class DatasetConflict(Conflict):
    code = "dataset_conflict"


class IdempotencyKeyReused(InvalidInput):
    """An Idempotency-Key sent again with another request body."""

    code = "idempotency_key_reused"


class IdempotencyKeyInProgress(Conflict):
    """An Idempotency-Key whose first request has not finished yet."""

    code = "idempotency_key_in_progress"


class JobExists(Conflict):
    """A job with this id exists already (a duplicate event created it first)."""

    code = "job_exists"
