"""The worker functions' settings models (the importer's, the exporter's and the sweeper's)."""

from __future__ import annotations

from pydantic import Field

from impex.settings import RECORD_REQUESTS_IN_FLIGHT, CommonSettings


class ImporterSettings(CommonSettings):
    """Settings of the importer function. Limits have documented defaults (README, Configuration)."""

    records_table: str = Field(min_length=3)
    max_upload_bytes: int = Field(ge=1, le=5 * 1024**3)
    max_columns: int = Field(default=1000, ge=1, le=10_000)
    max_rows: int = Field(default=10_000_000, ge=1)
    max_cell_chars: int = Field(default=32_767, ge=1, le=400_000)
    xlsx_max_uncompressed_bytes: int = Field(default=1024**3, ge=1024**2)
    xlsx_max_compression_ratio: int = Field(default=200, ge=10)
    # The most record requests in flight at once (the adaptive window's ceiling), and how many
    # batches' reads and writes run at once: together they fill DynamoDB's per-request latency.
    write_concurrency: int = Field(default=RECORD_REQUESTS_IN_FLIGHT, ge=1, le=64)
    batch_rows: int = Field(default=1000, ge=1, le=100_000)
    batches_in_flight: int = Field(default=6, ge=1, le=8)
    # Rows converted column by column where their cells allow (false: every row the exact way).
    columnar_conversion: bool = True
    continuation_reserve_seconds: float = Field(default=60.0, ge=0)
    retry_base_seconds: float = Field(default=5.0, ge=0)
    # How often progress and a heartbeat are written (and the error-report part uploaded).
    progress_every_seconds: float = Field(default=2.0, ge=0)
    # The most a spreadsheet's dense range may take in memory; by default a quarter of the function's
    # memory (Lambda sets AWS_LAMBDA_FUNCTION_MEMORY_SIZE, in MB).
    xlsx_memory_budget_bytes: int | None = Field(default=None, ge=1024**2)
    aws_lambda_function_memory_size: int = Field(default=1769, ge=128)
    # A text import at least this large is split into chunks that up to FANOUT_WORKERS importer
    # invocations run at once (1 turns fan-out off).
    fanout_threshold_bytes: int = Field(default=256 * 1024**2, ge=1)
    fanout_workers: int = Field(default=8, ge=1, le=100)

    def sheet_budget_bytes(self) -> int:
        """The memory a workbook's sheet may take once read (XlsxMemoryBudgetBytes, or a quarter of the
        function's memory)."""
        if self.xlsx_memory_budget_bytes is not None:
            return self.xlsx_memory_budget_bytes
        return self.aws_lambda_function_memory_size * 1024**2 // 4


class ExporterSettings(CommonSettings):
    """Settings of the exporter function."""

    records_table: str = Field(min_length=3)
    continuation_reserve_seconds: float = Field(default=60.0, ge=0)
    retry_base_seconds: float = Field(default=5.0, ge=0)
    # Items per Query/Scan page (None: DynamoDB's 1 MB pages); small pages make tests take several.
    page_size: int | None = Field(default=None, ge=1)
    # A CSV or JSON Lines export of a sharded dataset whose first partition holds at least this many
    # records is split between up to EXPORT_FANOUT_WORKERS exporter invocations (1 turns it off).
    export_fanout_workers: int = Field(default=4, ge=1, le=100)
    export_fanout_rows_per_shard: int = Field(default=20_000, ge=1)


class SweeperSettings(CommonSettings):
    """Settings of the sweeper function."""

    import_dead_letter_queue_url: str = Field(min_length=8)
    export_dead_letter_queue_url: str = Field(min_length=8)
