"""What a finished job reports in its `result` (the status response's `result` field)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class _Result(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    def as_dict(self) -> dict[str, Any]:
        """The JSON-able form stored on the job."""
        return self.model_dump(by_alias=True, mode="json", exclude_none=True)


class ImportResult(_Result):
    """Counts of an import, the columns it used and ignored, and its first row errors."""

    rows_total: int
    created: int
    updated: int
    skipped: int
    failed: int
    written: int
    unknown_columns: list[str]
    unknown_keys: int = 0  # JSON Lines: keys outside the first object's, counted
    unknown_key_sample: list[str] = []  # … and up to 20 of their names
    mapping: dict[str, str]
    first_errors: list[dict[str, Any]]
    mode: str
    dry_run: bool


class ExportResult(_Result):
    """Rows and file of an export (the file's name, size and type once it is complete)."""

    rows: int
    format: str
    file_name: str | None = None
    file_size: int | None = None
    content_type: str | None = None
