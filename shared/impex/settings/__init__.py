"""One settings model per function, read from the environment and validated at cold start.

Resource names have no defaults: a function deployed without one fails at cold start, loudly,
instead of writing to a table that happens to be called "jobs".

The models are plain pydantic models filled from the environment (each field from the variable of
its name in upper case, as the template sets them): every field is a scalar, which pydantic parses
from the variable's text as pydantic-settings would, and importing pydantic-settings (its sources,
argparse and dotenv) took ~20 ms of every cold start, a tenth of the api's over a bare resolver's.
The workers' models are in impex.settings.workers: the api function never builds them (~3 ms).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The adaptive window's default ceiling of record requests in flight. With ~6 ms a request (a long
# tail included) 16 in flight held one worker to ~1,600 requests/s, ~32k rows/s of 25-item writes and
# 100-key existence reads; 48 reach what the worker's CPU allows. A throttled request halves the
# window, so a hot partition sees no more than it takes. The lean client keeps at most 64 connections.
RECORD_REQUESTS_IN_FLIGHT = 48


@dataclass(frozen=True)
class ExternalTable:
    """An existing table the deployment allows datasets to target, with its key attribute names."""

    name: str
    partition_key: str
    sort_key: str | None

    @property
    def key_names(self) -> list[str]:
        """Key attribute names, partition key first."""
        return [self.partition_key] + ([self.sort_key] if self.sort_key else [])


class EnvironmentSettings(BaseModel):
    """A settings model whose fields come from the environment."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    @classmethod
    def from_environment(cls, **overrides: Any) -> Self:
        """The settings the environment holds (``overrides`` replacing some), validated."""
        found = {name: os.environ[name.upper()] for name in cls.model_fields if name.upper() in os.environ}
        return cls.model_validate({**found, **overrides})


class CommonSettings(EnvironmentSettings):
    """What every function needs: the shared tables, bucket, queues, event bus and limits."""

    jobs_table: str = Field(min_length=3)
    datasets_table: str = Field(min_length=3)
    files_bucket: str = Field(min_length=3)
    job_retention_days: int = Field(ge=1, le=3650)
    # Parallel comma-separated lists from the template's ExternalTableArns / ExternalTableKeys parameters.
    external_table_arns: str = ""
    external_table_keys: str = ""
    s3_addressing_style: Literal["auto", "virtual", "path"] = "auto"
    event_bus_name: str = Field(min_length=1)
    upload_url_ttl_seconds: int = Field(ge=60, le=900)
    tenant_concurrency: int = Field(ge=1, le=1000)
    import_queue_url: str = Field(min_length=8)
    import_high_queue_url: str = Field(min_length=8)
    import_low_queue_url: str = Field(min_length=8)
    export_queue_url: str = Field(min_length=8)
    export_high_queue_url: str = Field(min_length=8)
    export_low_queue_url: str = Field(min_length=8)
    # The sweeper's thresholds (POST /jobs/process runs the same sweep from the api function).
    stuck_after_seconds: int = Field(ge=10)
    upload_grace_seconds: int = Field(default=300, ge=0)
    pending_requeue_after_seconds: int = Field(default=1200, ge=60)

    @model_validator(mode="after")
    def _external_tables_parse(self) -> CommonSettings:
        self.external_tables()  # raises ValueError on a malformed allow-list
        return self

    def external_tables(self) -> dict[str, ExternalTable]:
        """The allow-list of existing tables datasets may target, by table name."""
        arns = [a.strip() for a in self.external_table_arns.split(",") if a.strip()]
        keys = [k.strip() for k in self.external_table_keys.split(",") if k.strip()]
        if len(arns) != len(keys):
            raise ValueError(
                "EXTERNAL_TABLE_ARNS and EXTERNAL_TABLE_KEYS must list the same number of tables"
            )
        tables: dict[str, ExternalTable] = {}
        for arn, key in zip(arns, keys, strict=True):
            if ":table/" not in arn:
                raise ValueError(f"'{arn}' is not a DynamoDB table ARN")
            name = arn.split(":table/", 1)[1]
            partition_key, _, sort_key = key.partition("/")
            tables[name] = ExternalTable(name=name, partition_key=partition_key, sort_key=sort_key or None)
        return tables


class ApiSettings(CommonSettings):
    """Settings of the api function."""

    idempotency_table: str = Field(min_length=3)
    tenant_claim: str = Field(min_length=1)
    max_upload_bytes: int = Field(ge=1, le=5 * 1024**3)
    download_url_ttl_seconds: int = Field(ge=60, le=900)
    # The shards of a new dataset whose definition does not say (the template's DefaultRecordShards).
    default_record_shards: int = Field(ge=1, le=100)
