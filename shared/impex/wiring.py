"""The composition root: every long-lived object of every function is built here, from its settings.

Handlers (functions/*/app.py) import only this module (and impex.observability for their
decorators). The worker pipelines and settings are imported inside the builders that use them, so
the api function's cold start never loads the import or export pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from impex.aws import clients
from impex.aws.events import JobEvents
from impex.aws.files import FilesBucket
from impex.aws.queues import DeadLetters, PriorityQueues
from impex.aws.tables import DocumentTable
from impex.datasets.store import DatasetStore
from impex.jobs.model import JobType
from impex.jobs.store import JobStore
from impex.settings import RECORD_REQUESTS_IN_FLIGHT, ApiSettings, CommonSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

    from impex.api.service import JobService
    from impex.aws.records import RecordTable
    from impex.pipelines.exporter import ExportPipeline
    from impex.pipelines.importer import ImportPipeline
    from impex.pipelines.sweeper import Sweeper
    from impex.pipelines.workers import ExportTrigger, ImportTrigger
    from impex.settings.workers import ExporterSettings, ImporterSettings

RecordTables = Callable[[str], "RecordTable"]


# ---- adapters, built once per settings ------------------------------------------------------------


def job_store(settings: CommonSettings) -> JobStore:
    """The jobs table, publishing every change to the job event bus."""
    table = DocumentTable(clients.documents(), settings.jobs_table)
    events = JobEvents(clients.events(), settings.event_bus_name)
    return JobStore(table, retention_days=settings.job_retention_days, events=events)


def dataset_store(settings: CommonSettings, *, default_shards: int = 1) -> DatasetStore:
    """The datasets table, with the deployment's allow-list of external tables (and the shards of a
    new dataset, for the api function, which creates them)."""
    table = DocumentTable(clients.documents(), settings.datasets_table)
    return DatasetStore(table, external_tables=settings.external_tables(), default_shards=default_shards)


def files_bucket(settings: CommonSettings) -> FilesBucket:
    """The one bucket impex keeps its files in."""
    return FilesBucket(clients.s3(settings.s3_addressing_style), settings.files_bucket)


def import_queues(settings: CommonSettings) -> PriorityQueues:
    """The import queues by priority (the normal one also receives the S3 upload notifications)."""
    return PriorityQueues(
        clients.sqs(),
        high=settings.import_high_queue_url,
        normal=settings.import_queue_url,
        low=settings.import_low_queue_url,
    )


def export_queues(settings: CommonSettings) -> PriorityQueues:
    """The export queues by priority."""
    return PriorityQueues(
        clients.sqs(),
        high=settings.export_high_queue_url,
        normal=settings.export_queue_url,
        low=settings.export_low_queue_url,
    )


def record_tables(max_workers: int = RECORD_REQUESTS_IN_FLIGHT) -> RecordTables:
    """Record tables by name, on the lean DynamoDB client, each with its own bounded thread pool."""
    # Imported here: the api function writes no records (the module and its thread pools' imports
    # took ~1.5 ms of its cold start; the lean client's HTTP stack now loads on its first request).
    from impex.aws.records import RecordTable

    return lambda name: RecordTable(clients.dynamodb_fast(), name, max_workers=max_workers)


# ---- the functions' objects -----------------------------------------------------------------------


def sweeper(settings: CommonSettings, *, jobs: JobStore | None = None) -> Sweeper:
    """The sweeper; with a SweeperSettings it also drains the dead-letter queues."""
    from impex.pipelines.export_fanout import NO_EXPORT_SPLITTING, FanOutExports
    from impex.pipelines.fanout import NO_SPLITTING, FanOutImports
    from impex.pipelines.sweeper import Sweeper
    from impex.settings.workers import SweeperSettings

    dead_letters = None
    if isinstance(settings, SweeperSettings):
        dead_letters = {
            JobType.IMPORT: DeadLetters(clients.sqs(), settings.import_dead_letter_queue_url),
            JobType.EXPORT: DeadLetters(clients.sqs(), settings.export_dead_letter_queue_url),
        }
    jobs = jobs or job_store(settings)
    files = files_bucket(settings)
    return Sweeper(
        jobs=jobs,
        queues={JobType.IMPORT: import_queues(settings), JobType.EXPORT: export_queues(settings)},
        files=files,
        # The scheduled sweeper ends fanned-out imports whose last chunk's worker stopped; the API's
        # sweep (POST /jobs/process) leaves them to it, and needs no write access to reports.
        fanout=(
            {
                JobType.IMPORT: FanOutImports(
                    jobs=jobs, files=files, queues=import_queues(settings), limits=NO_SPLITTING
                ),
                JobType.EXPORT: FanOutExports(
                    jobs=jobs, files=files, queues=export_queues(settings), limits=NO_EXPORT_SPLITTING
                ),
            }
            if isinstance(settings, SweeperSettings)
            else None
        ),
        stuck_after_seconds=settings.stuck_after_seconds,
        upload_ttl_seconds=settings.upload_url_ttl_seconds,
        upload_grace_seconds=settings.upload_grace_seconds,
        pending_requeue_after_seconds=settings.pending_requeue_after_seconds,
        dead_letter_queues=dead_letters,
    )


def job_service(settings: ApiSettings) -> JobService:
    """The API's use cases, wired to AWS."""
    from impex.api.service import ApiLimits, JobService

    jobs = job_store(settings)
    return JobService(
        jobs=jobs,
        datasets=dataset_store(settings, default_shards=settings.default_record_shards),
        files=files_bucket(settings),
        export_queues=export_queues(settings),
        import_queues=import_queues(settings),
        limits=ApiLimits(
            max_upload_bytes=settings.max_upload_bytes,
            upload_url_ttl_seconds=settings.upload_url_ttl_seconds,
            download_url_ttl_seconds=settings.download_url_ttl_seconds,
        ),
        # Built on the first POST /jobs/process: no other route needs the sweeper's pipeline code, and
        # importing it would slow every cold start.
        sweep_tenant=lambda tenant, limit: (
            sweeper(settings, jobs=jobs).sweep(tenant=tenant, limit_per_type=limit).message()
        ),
    )


def api(settings: ApiSettings | None = None, *, service: JobService | None = None) -> APIGatewayHttpResolver:
    """The api function's resolver (settings from the environment unless given)."""
    from impex.api.app import build_app
    from impex.api.dependencies import ApiDependencies
    from impex.api.idempotency import IdempotentCreation

    settings = settings or ApiSettings.from_environment()
    service = service or job_service(settings)
    idempotency = IdempotentCreation(settings.idempotency_table, service.jobs, client=clients.dynamodb_client)
    return build_app(
        ApiDependencies(service=service, idempotency=idempotency, tenant_claim=settings.tenant_claim)
    )


def import_pipeline(
    settings: ImporterSettings,
    *,
    records: RecordTables | None = None,
    files: FilesBucket | None = None,
    jobs: JobStore | None = None,
) -> ImportPipeline:
    """The import pipeline; tests may pass their own adapters (fault injection through the seams)."""
    from impex.formats.xlsx import ArchiveLimits
    from impex.pipelines.fanout import FanOutImports, FanOutLimits
    from impex.pipelines.importer import ImportLimits, ImportPipeline

    jobs = jobs or job_store(settings)
    files = files or files_bucket(settings)
    queues = import_queues(settings)
    return ImportPipeline(
        jobs=jobs,
        datasets=dataset_store(settings),
        files=files,
        records=records or record_tables(settings.write_concurrency),
        queues=queues,
        limits=ImportLimits(
            max_file_bytes=settings.max_upload_bytes,
            max_columns=settings.max_columns,
            max_rows=settings.max_rows,
            max_cell_chars=settings.max_cell_chars,
            batch_rows=settings.batch_rows,
            batches_in_flight=settings.batches_in_flight,
            columnar_conversion=settings.columnar_conversion,
            continuation_reserve_seconds=settings.continuation_reserve_seconds,
            retry_base_seconds=settings.retry_base_seconds,
            progress_every_seconds=settings.progress_every_seconds,
            archive=ArchiveLimits(
                max_uncompressed_bytes=settings.xlsx_max_uncompressed_bytes,
                max_ratio=settings.xlsx_max_compression_ratio,
                max_sheet_bytes=settings.sheet_budget_bytes(),
            ),
        ),
        records_table=settings.records_table,
        external_tables=settings.external_tables(),
        fanout=FanOutImports(
            jobs=jobs,
            files=files,
            queues=queues,
            limits=FanOutLimits(
                threshold_bytes=settings.fanout_threshold_bytes, workers=settings.fanout_workers
            ),
        ),
    )


def import_trigger(
    settings: ImporterSettings | None = None, *, pipeline: ImportPipeline | None = None
) -> ImportTrigger:
    """The importer function's record handler (settings from the environment unless given)."""
    from impex.pipelines.dropped import DroppedFiles
    from impex.pipelines.fairness import TenantCap
    from impex.pipelines.workers import ImportTrigger
    from impex.settings.workers import ImporterSettings

    settings = settings or ImporterSettings.from_environment()
    pipeline = pipeline or import_pipeline(settings)
    dropped = DroppedFiles(jobs=pipeline.jobs, datasets=pipeline.datasets, files=pipeline.files)
    cap = TenantCap(pipeline.jobs, pipeline.queues, settings.tenant_concurrency)
    settle = pipeline.fanout.settle if pipeline.fanout is not None else None
    return ImportTrigger(pipeline.jobs, pipeline.run, dropped.start, cap, settle_parent=settle)


def export_pipeline(
    settings: ExporterSettings, *, records: RecordTables | None = None, jobs: JobStore | None = None
) -> ExportPipeline:
    """The export pipeline; tests may pass their own adapters (fault injection through the seams)."""
    from impex.pipelines.export_fanout import ExportFanOutLimits, FanOutExports
    from impex.pipelines.exporter import ExportLimits, ExportPipeline

    jobs = jobs or job_store(settings)
    files = files_bucket(settings)
    queues = export_queues(settings)
    limits = ExportFanOutLimits(
        workers=settings.export_fanout_workers, rows_per_shard=settings.export_fanout_rows_per_shard
    )
    return ExportPipeline(
        jobs=jobs,
        datasets=dataset_store(settings),
        files=files,
        records=records or record_tables(),
        queues=queues,
        fanout=FanOutExports(jobs=jobs, files=files, queues=queues, limits=limits),
        records_table=settings.records_table,
        external_tables=settings.external_tables(),
        limits=ExportLimits(
            continuation_reserve_seconds=settings.continuation_reserve_seconds,
            retry_base_seconds=settings.retry_base_seconds,
            page_size=settings.page_size,
        ),
    )


def export_trigger(
    settings: ExporterSettings | None = None, *, pipeline: ExportPipeline | None = None
) -> ExportTrigger:
    """The exporter function's record handler (settings from the environment unless given)."""
    from impex.pipelines.fairness import TenantCap
    from impex.pipelines.workers import ExportTrigger
    from impex.settings.workers import ExporterSettings

    settings = settings or ExporterSettings.from_environment()
    pipeline = pipeline or export_pipeline(settings)
    cap = TenantCap(pipeline.jobs, pipeline.queues, settings.tenant_concurrency)
    settle = pipeline.fanout.settle if pipeline.fanout is not None else None
    return ExportTrigger(pipeline.jobs, pipeline.run, cap, settle_parent=settle)


def scheduled_sweeper() -> Sweeper:
    """The sweeper function's sweeper (settings from the environment)."""
    from impex.settings.workers import SweeperSettings

    return sweeper(SweeperSettings.from_environment())
