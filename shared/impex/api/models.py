"""Request and response bodies of the HTTP API; the status response is the seed's contract."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.alias_generators import to_camel

from impex.datasets.model import DATASET_NAME, Dataset, DatasetDefinition
from impex.jobs.model import Job, JobStatus, JobType, Priority
from impex.jobs.options import (
    ExportFilter,
    ExportOptions,
    ImportOptions,
    check_file_name,
    check_text_encoding,
)


class _Body(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", defer_build=True
    )


class _Out(BaseModel):
    """Response models: camelCase keys; absent optional values are left out (the seed's `field?`)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> Any:
        # Document the fields: the wrap serializer below only leaves out absent values, but pydantic
        # cannot see through it and would document every response as an empty schema.
        return handler({key: value for key, value in core_schema.items() if key != "serialization"})

    @model_serializer(mode="wrap")
    def _drop_none(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        return {k: v for k, v in data.items() if v is not None} if isinstance(data, dict) else data


class _LaterOut(_Out):
    """The response models of routes other than the status request: each one's schema is built by the
    first request that returns one, not by every cold start (the status request is most of them)."""

    model_config = ConfigDict(defer_build=True)


# ---- errors --------------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """Every error the API returns has this shape."""

    error: ErrorDetail


# ---- jobs ----------------------------------------------------------------------------------------

ImportFormat = Literal["csv", "tsv", "xlsx", "xlsb", "xls", "ods", "jsonl", "csv.gz", "tsv.gz", "jsonl.gz"]
ExportFormat = Literal["csv", "xlsx", "json", "jsonl", "parquet"]


class CreateImport(_Body):
    """POST /imports."""

    dataset: str = Field(min_length=1, max_length=64)
    file_name: str = Field(min_length=1, max_length=255)
    format: ImportFormat | None = None
    mapping: dict[str, str] | None = Field(default=None, description="file header -> dataset field")
    priority: Priority = Priority.NORMAL
    options: ImportOptions = Field(default_factory=ImportOptions)

    @model_validator(mode="after")
    def _one_mapping(self) -> CreateImport:
        if self.mapping is not None and self.options.mapping is not None:
            raise ValueError("give the mapping once, either at the top level or in options")
        if self.options.committed_from is not None:
            raise ValueError("committedFrom is set by impex; commit a dry run with POST /jobs/{jobId}/commit")
        if self.options.encoding is not None:
            check_text_encoding(self.options.encoding)
        return self

    @field_validator("file_name")
    @classmethod
    def _plain_file_name(cls, name: str) -> str:
        return check_file_name(name)


class CreateExport(_Body):
    """POST /exports."""

    dataset: str = Field(min_length=1, max_length=64)
    format: ExportFormat
    filters: list[ExportFilter] = Field(default_factory=list, max_length=50)
    fields: list[str] | None = Field(default=None, min_length=1, max_length=500)
    priority: Priority = Priority.NORMAL
    options: ExportOptions = Field(default_factory=ExportOptions)


class JobStatusResponse(_Out):
    """GET /jobs/{jobId}/status: the seed's response, field for field."""

    id: str
    type: JobType
    status: JobStatus
    progress: int
    total_rows: int | None = None
    processed_rows: int
    error_message: str | None = None
    result: dict[str, Any] | None = None
    file_url: str | None = None
    file_name: str | None = None
    file_size: int | None = None
    started_at: str | None = None
    completed_at: str | None = None
    created_at: str
    updated_at: str

    @classmethod
    def from_job(cls, job: Job, *, file_url: str | None) -> JobStatusResponse:
        """Map a stored job to the seed's status shape; the file fields describe the export's file."""
        return cls(
            id=job.id,
            type=job.type,
            status=job.status,
            progress=job.progress,
            total_rows=job.total_rows,
            processed_rows=job.processed_rows,
            error_message=job.error_message,
            result=job.result,
            file_url=file_url,
            file_name=job.file.name if job.file else None,
            file_size=job.file.size if job.file else None,
            started_at=job.started_at,
            completed_at=job.completed_at,
            created_at=job.created_at,
            updated_at=job.updated_at,
        )


class JobSummary(JobStatusResponse):
    """A job in listings: the status fields plus what it works on."""

    model_config = ConfigDict(defer_build=True)  # as _LaterOut's

    dataset: str
    format: str
    priority: Priority
    attempts: int


class Upload(_LaterOut):
    """A presigned S3 POST: send the fields, then the file as the last form field named `file`."""

    url: str
    fields: dict[str, str]
    key: str
    max_bytes: int
    expires_at: str


class CreatedImport(_LaterOut):
    job: JobStatusResponse
    upload: Upload | None = Field(
        description="the presigned POST for the file; absent when a replayed request finds the job started"
    )


class CreatedExport(_LaterOut):
    """A created job (an export, or the import that commits a dry run)."""

    job: JobStatusResponse


class JobList(_LaterOut):
    jobs: list[JobSummary]
    next_cursor: str | None = None


class ProcessResult(BaseModel):
    """POST /jobs/process, the seed's contract."""

    model_config = ConfigDict(defer_build=True)  # as _LaterOut's

    success: bool
    message: str


# ---- datasets ------------------------------------------------------------------------------------

DatasetName = Annotated[str, Field(pattern=DATASET_NAME)]


class DatasetOut(_LaterOut):
    name: str
    fields: list[dict[str, Any]]
    keys: list[str]
    target: dict[str, Any] | None = None
    description: str | None = None
    shards: int
    created_at: str
    updated_at: str

    @classmethod
    def from_dataset(cls, dataset: Dataset) -> DatasetOut:
        """The stored dataset as the API shows it (no tenant; a dataset from before sharding has 1)."""
        data = dataset.model_dump(by_alias=True, mode="json", exclude_none=True)
        data["shards"] = dataset.shard_count
        return cls.model_validate({k: v for k, v in data.items() if k != "tenant"})


class DatasetList(_LaterOut):
    datasets: list[DatasetOut]


__all__ = [
    "CreateExport",
    "CreateImport",
    "CreatedExport",
    "CreatedImport",
    "DatasetDefinition",
    "DatasetList",
    "DatasetName",
    "DatasetOut",
    "ErrorBody",
    "ExportFilter",
    "JobList",
    "JobStatusResponse",
    "JobSummary",
    "ProcessResult",
    "Upload",
]
