"""Dropped files: an object put under incoming/{tenant}/{dataset}/ becomes its own import job.

Options come from the object's `impex-*` metadata (x-amz-meta-impex-mode: insert, …-dry-run: true).
The same S3 event always names the same job, so a duplicate event creates nothing.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from impex.aws.files import FilesBucket
from impex.clock import iso, utc_now
from impex.datasets.store import DatasetStore
from impex.errors import DatasetNotFound, InvalidInput, JobExists
from impex.formats.file_format import FileFormat, format_from_file_name
from impex.jobs.model import TENANT_PATTERN, FileRef, Job, JobStatus, JobType
from impex.jobs.options import ImportOptions, check_text_encoding
from impex.jobs.store import JobStore
from impex.observability import logger
from impex.pipelines.messages import DroppedFile, StoredObject, dropped_job_id

METADATA_PREFIX = "impex-"


class DroppedFiles:
    """Turns dropped files into import jobs, once each."""

    def __init__(self, *, jobs: JobStore, datasets: DatasetStore, files: FilesBucket) -> None:
        self._jobs = jobs
        self._datasets = datasets
        self._files = files

    def start(self, stored: StoredObject, dropped: DroppedFile) -> Job | None:
        """Create (once) the import job of a file dropped under incoming/, and claim it."""
        if not TENANT_PATTERN.fullmatch(dropped.tenant):
            logger.warning("dropped file has an unusable tenant in its key", extra={"key": stored.key})
            return None
        job_id = dropped_job_id(stored)
        existing = self._jobs.get(job_id) or self._create(job_id, stored, dropped)
        if existing.status is not JobStatus.PENDING:
            return None
        return self._jobs.claim(job_id)

    def _create(self, job_id: str, stored: StoredObject, dropped: DroppedFile) -> Job:
        now = iso(utc_now())
        file_name = dropped.file_name.rsplit("/", 1)[-1]
        job = Job(
            id=job_id,
            type=JobType.IMPORT,
            tenant=dropped.tenant,
            dataset=dropped.dataset,
            format=format_from_file_name(file_name) or FileFormat.CSV,
            file=FileRef(bucket=stored.bucket, key=stored.key, name=file_name, size=stored.size),
            created_at=now,
            updated_at=now,
        )
        problem = self._problem_with(job, stored, dropped)
        try:
            created = self._jobs.create(job)
        except JobExists:
            found = self._jobs.get(job_id)
            if found is None:
                raise
            return found  # a duplicate event created it first
        if problem is not None:
            return self._jobs.fail(job_id, problem)
        return created

    def _problem_with(self, job: Job, stored: StoredObject, dropped: DroppedFile) -> str | None:
        """Read the job's options from the object's metadata; say what stops it from running, if anything."""
        problem: str | None = None
        info = self._files.find(stored.key, bucket=stored.bucket)
        if info is not None:
            try:
                job.options = options_from_metadata(info.metadata)
            except InvalidInput as error:
                problem = error.message
        try:
            self._datasets.get(dropped.tenant, dropped.dataset)
        except DatasetNotFound:
            problem = (
                f"dataset '{dropped.dataset}' does not exist for tenant '{dropped.tenant}'; create it first"
            )
        return problem


def options_from_metadata(metadata: dict[str, str]) -> ImportOptions:
    """Import options given as object metadata: x-amz-meta-impex-mode: insert, …-dry-run: true, …"""
    raw: dict[str, Any] = {}
    try:
        for name, value in metadata.items():
            if not name.lower().startswith(METADATA_PREFIX):
                continue
            option = name[len(METADATA_PREFIX) :].lower()
            camel = option.split("-")[0] + "".join(part.title() for part in option.split("-")[1:])
            raw[camel] = json.loads(value) if camel == "mapping" else value
        options = ImportOptions.model_validate(raw)
        if options.encoding is not None:
            check_text_encoding(options.encoding)
        return options
    except (ValidationError, ValueError) as error:
        raise InvalidInput(f"the file's impex-* metadata is invalid: {error}") from None
