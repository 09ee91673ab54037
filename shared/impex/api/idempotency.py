"""Idempotent job creation: the same Idempotency-Key with the same body returns the same job.

Powertools idempotency keeps the records (per tenant, key and operation, for 24 hours) in the
IdempotencyTable; the same key with another body is IdempotencyKeyReused. Powertools' idempotency
package imports boto3 (~0.14 s), so it is imported by the first request with a key, not at cold start.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from impex.errors import IdempotencyKeyInProgress, IdempotencyKeyReused
from impex.jobs.model import Job
from impex.jobs.store import JobStore

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
    from mypy_boto3_dynamodb.client import DynamoDBClient

IDEMPOTENCY_TTL_SECONDS = 24 * 3600


class IdempotentCreation:
    """Runs a job-creating use case once per (tenant, Idempotency-Key, operation)."""

    def __init__(self, table_name: str, jobs: JobStore, client: Callable[[], DynamoDBClient]) -> None:
        self._table_name = table_name
        self._client = client
        self._jobs = jobs

    @cached_property
    def _config(self) -> IdempotencyConfig:
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

        return IdempotencyConfig(
            event_key_jmespath="[tenant, key, operation]",
            payload_validation_jmespath="body",
            expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
        )

    @cached_property
    def _persistence(self) -> DynamoDBPersistenceLayer:
        # Made on the first request with an Idempotency-Key: no other request needs it, and making
        # it (and its client) at cold start would cost every cold start.
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

        return DynamoDBPersistenceLayer(table_name=self._table_name, boto3_client=self._client())

    def create(
        self,
        create: Callable[[str, Any], Job],
        tenant: str,
        body: BaseModel,
        *,
        key: str | None,
        operation: str,
        lambda_context: LambdaContext | None,
    ) -> Job:
        """``create(tenant, body)`` once per key; a replay returns the job it created."""
        if key is None:
            return create(tenant, body)
        from aws_lambda_powertools.utilities.idempotency import idempotent_function
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyValidationError,
        )

        @idempotent_function(
            data_keyword_argument="request", config=self._config, persistence_store=self._persistence
        )
        def create_once(request: dict[str, Any]) -> dict[str, Any]:
            return {"jobId": create(tenant, body).id}

        if lambda_context is not None:
            self._config.register_lambda_context(lambda_context)
        request = {"tenant": tenant, "key": key, "operation": operation, "body": body.model_dump(mode="json")}
        try:
            created = create_once(request=request)
        except IdempotencyValidationError:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used with a different request body"
            ) from None
        except IdempotencyAlreadyInProgressError:
            raise IdempotencyKeyInProgress(
                "a request with this Idempotency-Key is still in progress; retry shortly"
            ) from None
        return self._jobs.get_for_tenant(tenant, created["jobId"])
