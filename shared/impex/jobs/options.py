"""Per-job options, shared by the API (which validates requests) and the workers (which read them)."""

from __future__ import annotations

import codecs
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

UNSAFE_FILE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


def check_file_name(name: str) -> str:
    """A plain file name: no slashes, no control characters, not . or .."""
    if UNSAFE_FILE_NAME.search(name) or name in {".", ".."}:
        raise ValueError("a file name has no slashes or control characters")
    return name


def check_text_encoding(name: str) -> str:
    """A text encoding Python knows (utf-8, utf-16, cp1252, latin-1, …), by any of its names."""
    try:
        info = codecs.lookup(name)
    except LookupError:
        info = None
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise ValueError(
            f"'{name}' is not a text encoding; use a name such as utf-8, utf-8-sig, utf-16, utf-16-le, "
            "utf-32, cp1252, latin-1, iso-8859-15, cp437 or shift_jis"
        )
    return name


class _Options(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", defer_build=True
    )


class ImportOptions(_Options):
    """How an import reads, validates and writes its file."""

    mode: Literal["upsert", "insert", "merge", "skip_unchanged"] = "upsert"
    dry_run: bool = False
    max_errors: int | None = Field(default=None, ge=0)
    max_error_rate: float | None = Field(default=None, ge=0, le=100)
    delimiter: str | None = Field(default=None, min_length=1, max_length=1)
    encoding: str | None = Field(default=None, max_length=40)
    sheet: str | None = Field(default=None, max_length=100)
    day_first: bool | None = None
    max_attempts: int = Field(default=3, ge=1, le=10)
    mapping: dict[str, str] | None = None
    # Set by impex on the job that commits a dry run; never sent by clients.
    committed_from: str | None = None


class ExportOptions(_Options):
    """How an export writes its file."""

    file_name: str | None = Field(default=None, min_length=1, max_length=255)
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    bom: bool = False
    gzip: bool = False
    neutralize_formulas: bool = True
    max_attempts: int = Field(default=3, ge=1, le=10)
    # "key": every row in key order, written by one worker. "any" (the default): no order is
    # promised, so a large export of a sharded dataset may be written by several workers at once.
    order: Literal["key", "any"] = "any"

    @field_validator("file_name")
    @classmethod
    def _plain_file_name(cls, name: str | None) -> str | None:
        return None if name is None else check_file_name(name)


FilterOp = Literal[
    "eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "begins_with", "contains", "exists", "not_exists"
]


class ExportFilter(_Options):
    """One `field op value` condition; conditions are combined with AND."""

    field: str = Field(min_length=1, max_length=64)
    op: FilterOp
    value: Any = None


class ExportJobOptions(ExportOptions):
    """An export job's options as stored: how to write the file, and which records and fields."""

    filters: list[ExportFilter] = Field(default_factory=list)
    fields: list[str] = Field(default_factory=list)
