"""One benchmark case per process (so peak RSS is the case's own): python -m benchmarks.cases CASE CONFIG.

Every case prints one JSON line: {"rows": …, "seconds": …, "peak_rss_mb": …}.
"""

from __future__ import annotations

import csv
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

FIELDS = [
    {"name": "id", "type": "string", "required": True},
    {"name": "name", "type": "string"},
    {"name": "email", "type": "string"},
    {"name": "qty", "type": "integer"},
    {"name": "price", "type": "decimal"},
    {"name": "active", "type": "boolean"},
    {"name": "joined", "type": "date"},
    {"name": "seenAt", "type": "datetime"},
    {"name": "score", "type": "decimal"},
    {"name": "note", "type": "string"},
]


def _cast(row: dict[str, str]) -> dict[str, Any]:
    """The samples' per-row casting (what the baseline does by hand)."""
    item: dict[str, Any] = {"pk": "bench#items", "sk": row["id"]}
    for name, value in row.items():
        if value == "":
            continue
        if name == "qty":
            item[name] = int(value)
        elif name in ("price", "score"):
            item[name] = Decimal(value)
        elif name == "active":
            item[name] = value.lower() in ("true", "yes", "1")
        elif name == "joined":
            item[name] = date.fromisoformat(value).isoformat()
        elif name == "seenAt":
            item[name] = datetime.fromisoformat(value.replace("Z", "+00:00")).isoformat()
        else:
            item[name] = value
    return item


def _cast_cells(row: dict[str, Any]) -> dict[str, Any]:
    """The baseline's casting of typed spreadsheet cells (openpyxl gives floats, datetimes, bools)."""
    item: dict[str, Any] = {"pk": "bench#items", "sk": str(row["id"])}
    for name, value in row.items():
        if value is None:
            continue
        if name == "qty":
            item[name] = int(value)
        elif name in ("price", "score"):
            item[name] = Decimal(str(value))
        elif name == "active":
            item[name] = bool(value)
        elif name == "joined":
            item[name] = value.date().isoformat() if isinstance(value, datetime) else str(value)
        else:
            item[name] = str(value)
    return item


def _records_client(config: dict[str, Any]) -> Any:
    """What impex uses for record traffic in Lambda, pointed at the fake endpoint."""
    from impex.aws.dynamo_http import raw_client_like

    client = boto3.client(
        "dynamodb",
        endpoint_url=config["fake"],
        region_name="us-east-1",
        config=Config(parameter_validation=False, max_pool_connections=32),
    )
    return raw_client_like(client)


def _in_flight(config: dict[str, Any]) -> dict[str, int]:
    """RecordTable's max_workers when the run sets it (--max-workers), or nothing: impex's default."""
    return {} if config.get("max_workers") is None else {"max_workers": int(config["max_workers"])}


def _rss_mb() -> float:
    """Peak RSS of this process's own address space (VmHWM; ru_maxrss would include the parent's,
    which a child inherits across fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _session(config: dict[str, Any]) -> boto3.session.Session:
    return boto3.Session(aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1")


# ---- imports -------------------------------------------------------------------------------------------


def import_csv_baseline(config: dict[str, Any]) -> dict[str, Any]:
    """csv.DictReader over the S3 stream + per-row casting + Table.batch_writer()."""
    session = _session(config)
    s3 = session.client("s3", endpoint_url=config["moto"])
    table = session.resource("dynamodb", endpoint_url=config["fake"]).Table("records")
    started = time.perf_counter()
    body = s3.get_object(Bucket=config["bucket"], Key=config["key"])["Body"]
    rows = 0
    with table.batch_writer() as batch:
        for row in csv.DictReader(io.TextIOWrapper(body, encoding="utf-8", newline="")):
            batch.put_item(Item=_cast(row))
            rows += 1
    return {"rows": rows, "seconds": time.perf_counter() - started}


def import_csv_impex(config: dict[str, Any]) -> dict[str, Any]:
    """The real import pipeline: S3 stream -> reader -> mapping/conversion -> batches -> DynamoDB."""
    pipeline, job = _import_job(config, config["key"], "csv")
    started = time.perf_counter()
    pipeline.run(job)
    seconds = time.perf_counter() - started
    final = _completed(pipeline, job)
    return {"rows": final.result["rowsTotal"], "seconds": seconds, "failed": final.result["failed"]}


def _completed(pipeline: Any, job: Any) -> Any:
    """The job, which must have ended COMPLETED with a result."""
    final = pipeline.jobs.get(job.id)
    assert final is not None and final.status.value == "COMPLETED" and final.result, final
    return final


def _setup(config: dict[str, Any], *, define: bool = True) -> tuple[Any, Any, Any]:
    """Point impex at the benchmark's endpoints: the job store, the dataset store, the records client."""
    import os

    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": config["moto"],
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "ERROR",
        }
    )
    from impex.aws import clients
    from impex.aws.tables import DocumentTable
    from impex.datasets.model import DatasetDefinition
    from impex.datasets.store import DatasetStore
    from impex.jobs.store import JobStore

    resources = config["resources"]
    dynamodb = clients.documents()  # the client the functions use for the jobs and datasets tables
    jobs = JobStore(DocumentTable(dynamodb, resources["JobsTable"]), retention_days=1)
    datasets = DatasetStore(DocumentTable(dynamodb, resources["DatasetsTable"]), external_tables={})
    shards = int(config.get("shards", 1))
    definition = {"fields": FIELDS, "keys": ["id"], "shards": shards}
    if define:  # a chunk worker imports into the dataset its parent defined
        datasets.put("bench", _dataset_name(config), DatasetDefinition.model_validate(definition))
    return jobs, datasets, _records_client(config)


def _dataset_name(config: dict[str, Any]) -> str:
    """One dataset per shard count (shards cannot change once a dataset exists)."""
    shards = int(config.get("shards", 1))
    return "items" if shards == 1 else f"items-{shards}-shards"


def import_csv_fanout(config: dict[str, Any]) -> dict[str, Any]:
    """One import fanned out over N worker processes: this process splits the file (N = 1: imports
    it, unsplit), then N processes each claim and run one chunk job, as N Lambda invocations would."""
    workers = int(config["workers"])
    pipeline, job = _import_job(config, config["key"], "csv", fanout_workers=workers)
    started = time.perf_counter()
    pipeline.run(job)
    split_seconds = time.perf_counter() - started
    chunks = _run_chunk_workers("import_chunk", {**config, "parent": job.id}, workers) if workers > 1 else []
    seconds = time.perf_counter() - started
    return {
        "rows": _completed(pipeline, job).result["rowsTotal"],
        "seconds": seconds,
        "split_seconds": split_seconds if workers > 1 else 0.0,
        **_workers_use(chunks),
    }


def import_chunk(config: dict[str, Any]) -> dict[str, Any]:
    """One chunk job of a fanned-out import, claimed and run (one worker of import_csv_fanout)."""
    from impex.jobs.model import chunk_job_id

    pipeline, _ = _import_job(
        config, config["key"], "csv", fanout_workers=int(config["workers"]), create=False
    )
    claimed = pipeline.jobs.claim(chunk_job_id(config["parent"], int(config["chunk"])))
    assert claimed is not None, "the chunk job was not PENDING"
    started = time.perf_counter()
    pipeline.run(claimed)
    return {"seconds": time.perf_counter() - started}


def _import_job(
    config: dict[str, Any], key: str, file_format: str, *, fanout_workers: int = 1, create: bool = True
) -> tuple[Any, Any]:
    jobs, datasets, fast = _setup(config, define=create)
    from ulid import ULID

    from impex.aws import clients
    from impex.aws.files import FilesBucket
    from impex.aws.records import RecordTable
    from impex.clock import iso, utc_now
    from impex.formats.file_format import FileFormat
    from impex.jobs.model import FileRef, Job, JobType
    from impex.pipelines.fanout import FanOutImports, FanOutLimits
    from impex.pipelines.importer import ImportLimits, ImportPipeline
    from impex.settings import CommonSettings
    from impex.wiring import import_queues

    resources = config["resources"]
    now = iso(utc_now())
    job = (
        None
        if not create
        else jobs.create(
            Job(
                id=str(ULID()),
                type=JobType.IMPORT,
                tenant="bench",
                dataset=_dataset_name(config),
                format=FileFormat(file_format),
                file=FileRef(bucket=config["bucket"], key=key, name=Path(key).name),
                created_at=now,
                updated_at=now,
            )
        )
    )
    claimed = jobs.claim(job.id) if job is not None else None
    settings = CommonSettings.model_construct(
        import_queue_url=resources["ImportQueue"],
        import_high_queue_url=resources["ImportHighQueue"],
        import_low_queue_url=resources["ImportLowQueue"],
    )
    files = FilesBucket(clients.s3("path"), config["bucket"])
    queues = import_queues(settings)
    pipeline = ImportPipeline(
        jobs=jobs,
        datasets=datasets,
        files=files,
        records=lambda name: RecordTable(fast, name, **_in_flight(config)),
        queues=queues,
        limits=ImportLimits(
            max_file_bytes=5 * 1024**3,
            **(
                {"batches_in_flight": int(config["batches_in_flight"])}
                if "batches_in_flight" in config
                else {}
            ),
            columnar_conversion=not config.get("exact_conversion", False),
        ),
        records_table="records",
        external_tables={},
        fanout=FanOutImports(
            jobs=jobs,
            files=files,
            queues=queues,
            limits=FanOutLimits(threshold_bytes=1, workers=fanout_workers),
        ),
    )
    return pipeline, claimed


def import_xlsx_baseline(config: dict[str, Any]) -> dict[str, Any]:
    """openpyxl read-only over the workbook + the same per-row casting (reading and typing only)."""
    import openpyxl

    path = Path(config["xlsx_path"])
    started = time.perf_counter()
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    sheet = book.active
    rows = sheet.iter_rows(values_only=True)
    header = [str(h) for h in next(rows)]
    count = 0
    for values in rows:
        _cast_cells(dict(zip(header, values, strict=False)))
        count += 1
    return {"rows": count, "seconds": time.perf_counter() - started}


def import_xlsx_impex(config: dict[str, Any]) -> dict[str, Any]:
    """impex's XLSX read path as the importer runs it: every check it makes (archive, sheet extent),
    calamine, header mapping, and each batch of rows converted into DynamoDB items as BatchWriter.process
    does (column by column, the exact path for any row the columns leave)."""
    from itertools import islice

    from impex.datasets.columnar import ColumnarConverter
    from impex.datasets.mapping import RowConverter, map_columns
    from impex.datasets.model import Dataset
    from impex.datasets.records import RecordLayout
    from impex.formats.source import checked_workbook
    from impex.formats.workbooks import WorkbookKind
    from impex.formats.xlsx import ArchiveLimits

    dataset = Dataset.model_validate(
        {
            "fields": FIELDS,
            "keys": ["id"],
            "tenant": "bench",
            "name": "items",
            "createdAt": "x",
            "updatedAt": "x",
        }
    )
    layout = RecordLayout(dataset, "records", None)
    batch_rows = int(config.get("batch_rows", 1000))  # ImporterSettings.batch_rows' default
    path = Path(config["xlsx_path"])
    started = time.perf_counter()
    reader = checked_workbook(path, WorkbookKind.XLSX, None, ArchiveLimits())
    converter = RowConverter(dataset, reader.header, map_columns(reader.header, dataset))
    columnar = ColumnarConverter(converter, layout, "job")
    count = exact = 0
    rows = reader.rows()
    while batch := list(islice(rows, batch_rows)):
        for row, ready in zip(batch, columnar.prepare(batch), strict=True):
            if ready is None:
                record, issues = converter.convert(row.cells)
                assert not issues, issues
                identity = layout.identity(record, "job", row.number)
                layout.item(record, layout.key(identity, record), "job", row.number)
                exact += 1
            count += 1
    return {"rows": count, "seconds": time.perf_counter() - started, "exact_rows": exact}


# ---- exports -------------------------------------------------------------------------------------------


def export_csv_baseline(config: dict[str, Any]) -> dict[str, Any]:
    """boto3's resource Table.query pages + csv.DictWriter to a file."""
    from boto3.dynamodb.conditions import Key

    session = _session(config)
    table = session.resource("dynamodb", endpoint_url=config["fake"]).Table("records")
    names = [f["name"] for f in FIELDS]
    started = time.perf_counter()
    rows = 0
    with tempfile.TemporaryFile("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=names, extrasaction="ignore")
        writer.writeheader()
        kwargs: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq("bench#items")}
        while True:
            page = table.query(**kwargs)
            writer.writerows(page["Items"])
            rows += len(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return {"rows": rows, "seconds": time.perf_counter() - started}


def export_xlsx_baseline(config: dict[str, Any]) -> dict[str, Any]:
    """openpyxl's write_only mode over the same records (read with the resource layer)."""
    import openpyxl
    from boto3.dynamodb.conditions import Key

    session = _session(config)
    table = session.resource("dynamodb", endpoint_url=config["fake"]).Table("records")
    names = [f["name"] for f in FIELDS]
    started = time.perf_counter()
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(names)
    rows = 0
    kwargs: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq("bench#items")}
    while True:
        page = table.query(**kwargs)
        for item in page["Items"]:
            sheet.append([item.get(n) for n in names])
        rows += len(page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    with tempfile.TemporaryFile() as handle:
        book.save(handle)
    return {"rows": rows, "seconds": time.perf_counter() - started}


def export_impex(config: dict[str, Any]) -> dict[str, Any]:
    """The real export pipeline: Query pages -> writer -> multipart upload to S3 (moto)."""
    from impex.aws import clients

    pipeline, job = _export_job(config, config["format"])
    started = time.perf_counter()
    pipeline.run(job)
    seconds = time.perf_counter() - started
    final = pipeline.jobs.get(job.id)
    assert final is not None and final.status.value == "COMPLETED", final
    if config.get("keep_file") and final.file is not None:  # for the checks after the clock stopped
        clients.s3("path").download_file(config["bucket"], final.file.key, config["keep_file"])
    return {"rows": final.processed_rows, "seconds": seconds, "bytes": final.file.size if final.file else 0}


def export_csv_fanout(config: dict[str, Any]) -> dict[str, Any]:
    """One CSV export fanned out over N worker processes (N = 1: one worker, in key order): this
    process claims it and splits it, then N processes each claim and run one chunk job; the last
    to end assembles the file."""
    workers = int(config["workers"])
    pipeline, job = _export_job(config, "csv", fanout_workers=workers)
    started = time.perf_counter()
    pipeline.run(job)
    chunks = _run_chunk_workers("export_chunk", {**config, "parent": job.id}, workers) if workers > 1 else []
    seconds = time.perf_counter() - started
    final = pipeline.jobs.get(job.id)
    assert final is not None and final.status.value == "COMPLETED", final
    return {
        "rows": final.processed_rows,
        "seconds": seconds,
        "bytes": final.file.size if final.file else 0,
        **_workers_use(chunks),
    }


def export_chunk(config: dict[str, Any]) -> dict[str, Any]:
    """One chunk job of a fanned-out export, claimed and run (one worker of export_csv_fanout)."""
    from impex.jobs.model import chunk_job_id

    pipeline, _ = _export_job(config, "csv", fanout_workers=int(config["workers"]), create=False)
    claimed = pipeline.jobs.claim(chunk_job_id(config["parent"], int(config["chunk"])))
    assert claimed is not None, "the chunk job was not PENDING"
    started = time.perf_counter()
    pipeline.run(claimed)
    return {"seconds": time.perf_counter() - started}


def _run_chunk_workers(case: str, config: dict[str, Any], workers: int) -> list[dict[str, float]]:
    """Run ``case`` in ``workers`` processes at once, one a chunk; each one's peak RSS and CPU time."""
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.cases", case, json.dumps({**config, "chunk": index})],
            stdout=subprocess.PIPE,
            text=True,
        )
        for index in range(workers)
    ]
    peaks: list[dict[str, float]] = []
    for child in children:
        output, _ = child.communicate()
        if child.returncode != 0:
            raise SystemExit(f"a chunk worker failed: {output[-2000:]}")
        peaks.append(json.loads(output.splitlines()[-1]))
    return peaks


def _workers_use(chunks: list[dict[str, float]]) -> dict[str, float]:
    """The most RSS any worker (this one included) took, and the CPU seconds they all used."""
    return {
        "worker_peak_rss_mb": round(max([_rss_mb(), *(c["peak_rss_mb"] for c in chunks)]), 1),
        "cpu_s": round(_cpu_seconds() + sum(c["cpu_s"] for c in chunks), 1),
    }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _export_job(
    config: dict[str, Any], fmt: str, *, fanout_workers: int = 1, create: bool = True
) -> tuple[Any, Any]:
    """An export pipeline pointed at the benchmark's endpoints, and (``create``) a claimed job."""
    jobs, datasets, fast = _setup(config, define=create)
    from ulid import ULID

    from impex.aws import clients
    from impex.aws.files import FilesBucket, export_key
    from impex.aws.records import RecordTable
    from impex.clock import iso, utc_now
    from impex.formats.file_format import FileFormat
    from impex.jobs.model import FileRef, Job, JobType
    from impex.jobs.options import ExportJobOptions
    from impex.pipelines.export_fanout import ExportFanOutLimits, FanOutExports
    from impex.pipelines.exporter import ExportLimits, ExportPipeline
    from impex.settings import CommonSettings
    from impex.wiring import export_queues

    resources = config["resources"]
    claimed = None
    if create:
        now = iso(utc_now())
        job_id = str(ULID())
        name = f"bench.{fmt}"
        order = "key" if fanout_workers == 1 else "any"
        job = jobs.create(
            Job(
                id=job_id,
                type=JobType.EXPORT,
                tenant="bench",
                dataset=_dataset_name(config),
                format=FileFormat(fmt),
                options=ExportJobOptions(fields=[f["name"] for f in FIELDS], order=order),
                file=FileRef(bucket=config["bucket"], key=export_key("bench", job_id, name), name=name),
                created_at=now,
                updated_at=now,
            )
        )
        claimed = jobs.claim(job.id)
    settings = CommonSettings.model_construct(
        export_queue_url=resources["ExportQueue"],
        export_high_queue_url=resources["ExportHighQueue"],
        export_low_queue_url=resources["ExportLowQueue"],
    )
    files = FilesBucket(clients.s3("path"), config["bucket"])
    queues = export_queues(settings)
    pipeline = ExportPipeline(
        jobs=jobs,
        datasets=datasets,
        files=files,
        records=lambda table: RecordTable(fast, table),
        queues=queues,
        records_table="records",
        external_tables={},
        limits=ExportLimits(),
        fanout=FanOutExports(
            jobs=jobs,
            files=files,
            queues=queues,
            limits=ExportFanOutLimits(workers=fanout_workers, rows_per_shard=1),
        ),
    )
    return pipeline, claimed


def read_csv_pyarrow(config: dict[str, Any]) -> dict[str, Any]:
    """pyarrow's streaming CSV reader (newlines in values, 1 MB blocks), every cell as text, handed
    over as Python rows, which is what per-row conversion and validation need."""
    import pyarrow.csv as pacsv

    path = Path(config["csv_path"])
    started = time.perf_counter()
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=1024 * 1024, use_threads=False),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys([f["name"] for f in FIELDS], "string"), strings_can_be_null=False
        ),
    )
    rows = 0
    for batch in reader:
        for _row in zip(*(column.to_pylist() for column in batch.columns), strict=True):
            rows += 1
    return {"rows": rows, "seconds": time.perf_counter() - started}


def read_csv_impex(config: dict[str, Any]) -> dict[str, Any]:
    """impex's CSV reader (RFC 4180 records with row numbers and resumable byte offsets)."""
    from impex.formats.delimited import DelimitedReader
    from impex.formats.text import LineSource

    path = Path(config["csv_path"])
    started = time.perf_counter()
    rows = 0
    with path.open("rb") as stream:
        reader = DelimitedReader(LineSource(stream, "utf-8"), ",")
        for _row in reader.rows():
            rows += 1
    return {"rows": rows, "seconds": time.perf_counter() - started}


CASES = {
    "read_csv_pyarrow": read_csv_pyarrow,
    "read_csv_impex": read_csv_impex,
    "import_csv_baseline": import_csv_baseline,
    "import_csv_impex": import_csv_impex,
    "import_xlsx_baseline": import_xlsx_baseline,
    "import_xlsx_impex": import_xlsx_impex,
    "export_csv_baseline": export_csv_baseline,
    "export_xlsx_baseline": export_xlsx_baseline,
    "export_impex": export_impex,
    "import_csv_fanout": import_csv_fanout,
    "import_chunk": import_chunk,
    "export_csv_fanout": export_csv_fanout,
    "export_chunk": export_chunk,
}


if __name__ == "__main__":
    case, raw = sys.argv[1], sys.argv[2]
    result = CASES[case](json.loads(raw))
    result["peak_rss_mb"] = round(_rss_mb(), 1)
    result.setdefault("cpu_s", round(_cpu_seconds(), 2))
    print(json.dumps(result))
