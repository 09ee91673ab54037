"""make bench: impex against named baselines, measured in the same run, each case in its own process.

    python -m benchmarks.run [--rows 1000000] [--xlsx-rows 200000] [--export-rows 1000000]
                             [--large-rows 10000000] [--only import|export]

Prints one machine-readable line per case:
    BENCH import_csv rows_per_s=… baseline_rows_per_s=… ratio=… peak_rss_mb=… baseline_peak_rss_mb=…
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import boto3

from benchmarks.fake_dynamodb import FakeDynamoDB

ROOT = Path(__file__).resolve().parent.parent


def generate_csv(path: Path, rows: int, seed: int = 1) -> int:
    """~110 bytes a row, 10 typed columns, a quoted newline in about 1% of rows."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("id,name,email,qty,price,active,joined,seenAt,score,note\n")
        for i in range(rows):
            note = '"multi-line\nnote, quoted"' if rng.random() < 0.01 else "plain note"
            handle.write(
                f"K{i:08d},Customer {i % 9973},c{i}@example.com,{rng.randint(0, 999)},"
                f"{rng.randint(0, 99999) / 100},"
                f"{'true' if i % 2 else 'false'},2024-{1 + i % 12:02d}-{1 + i % 28:02d},"
                f"2024-05-01T{i % 24:02d}:{i % 60:02d}:00Z,{rng.random():.6f},{note}\n"
            )
    return path.stat().st_size


def generate_xlsx(path: Path, rows: int) -> None:
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = book.add_worksheet()
    date_format = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_row(
        0, 0, ["id", "name", "email", "qty", "price", "active", "joined", "seenAt", "score", "note"]
    )
    from datetime import date

    for i in range(1, rows + 1):
        sheet.write_string(i, 0, f"K{i:08d}")
        sheet.write_string(i, 1, f"Customer {i}")
        sheet.write_string(i, 2, f"c{i}@example.com")
        sheet.write_number(i, 3, i % 1000)
        sheet.write_number(i, 4, (i % 10000) / 100)
        sheet.write_boolean(i, 5, i % 2 == 0)
        sheet.write_datetime(i, 6, date(2024, 1 + i % 12, 1 + i % 28), date_format)
        sheet.write_string(i, 7, f"2024-05-01T{i % 24:02d}:00:00Z")
        sheet.write_number(i, 8, (i % 997) / 997)
        sheet.write_string(i, 9, "plain note")
    book.close()


def run_case(case: str, config: dict[str, Any]) -> dict[str, Any]:
    """Run one case in a fresh process; with BENCH_PROFILE=dir, impex's cases run under py-spy
    (on the PATH) and leave their collapsed stacks there (py-spy's raw format)."""
    command = [sys.executable, "-m", "benchmarks.cases", case, json.dumps(config)]
    profile_dir = os.environ.get("BENCH_PROFILE")
    if profile_dir and "impex" in case:
        label = "-".join([case, *(str(config[k]) for k in ("format", "shards") if k in config)])
        output_file = f"{profile_dir}/{label}.txt"
        command = ["py-spy", "record", "-r", "200", "-o", output_file, "-f", "raw", "--", *command]
    output = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    results = [line for line in output.stdout.splitlines() if line.startswith("{")]  # py-spy prints too
    if not results or (output.returncode != 0 and not profile_dir):  # py-spy may exit 1 after a clean run
        raise SystemExit(f"benchmark case {case} failed:\n{output.stderr[-3000:]}")
    return json.loads(results[-1])  # type: ignore[no-any-return]


def written_through(fake: FakeDynamoDB, case: str, config: dict[str, Any], rows: int) -> dict[str, Any]:
    """Run an import case and check that every row of the file reached the endpoint."""
    before = fake.stats()["writes"]
    result = run_case(case, config)
    written = fake.stats()["writes"] - before
    if written != rows:
        raise SystemExit(f"{case} wrote {written} items for a file of {rows} rows")
    return result


def bench_line(name: str, ours: dict[str, Any], baseline: dict[str, Any] | None, **extra: Any) -> str:
    rate = ours["rows"] / ours["seconds"]
    parts = [f"BENCH {name}", f"rows={ours['rows']}", f"rows_per_s={rate:.0f}"]
    if baseline is not None:
        base_rate = baseline["rows"] / baseline["seconds"]
        parts += [f"baseline_rows_per_s={base_rate:.0f}", f"ratio={rate / base_rate:.2f}"]
    parts.append(f"peak_rss_mb={ours['peak_rss_mb']}")
    if baseline is not None:
        parts.append(f"baseline_peak_rss_mb={baseline['peak_rss_mb']}")
    parts += [f"{k}={v}" for k, v in extra.items()]
    return " ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small-rows", type=int, default=100_000, help="the smaller file, for RSS flatness")
    parser.add_argument("--xlsx-rows", type=int, default=200_000)
    parser.add_argument("--export-rows", type=int, default=1_000_000)
    parser.add_argument("--small-export-rows", type=int, default=100_000, help="for RSS flatness")
    parser.add_argument(
        "--xlsx-large-rows",
        type=int,
        default=1_100_000,
        help="an XLSX export of more rows than a sheet holds (impex only: streaming, peak RSS); 0: none",
    )
    parser.add_argument("--small-formats", default="csv,parquet", help="formats also run at the small size")
    parser.add_argument(
        "--large-rows",
        type=int,
        default=0,
        help="also import a file this large (10000000: ~1 GB) for peak RSS; impex only, no baseline",
    )
    parser.add_argument(
        "--sharded-rows", type=int, default=30_000, help="rows of the import against DynamoDB's real limits"
    )
    parser.add_argument("--shards", type=int, default=16, help="shards of the sharded dataset")
    parser.add_argument(
        "--max-workers", type=int, default=None, help="record requests in flight, at most (default: impex's)"
    )
    parser.add_argument(
        "--batches-in-flight", type=int, default=None, help="import batches in flight (default: impex's)"
    )
    parser.add_argument(
        "--exact-conversion", action="store_true", help="imports convert every row the exact way (A/B)"
    )
    parser.add_argument(
        "--latency-rows", type=int, default=300_000, help="rows of the import and export against latency"
    )
    parser.add_argument("--fanout-rows", type=int, default=1_000_000, help="rows of the fanned-out import")
    parser.add_argument("--fanout-workers", default="1,2,4,8", help="worker counts of the fan-out cases")
    parser.add_argument("--fanout-shards", type=int, default=64, help="shards of the fanned-out dataset")
    parser.add_argument("--only", choices=["import", "export", "sharded", "latency", "fanout", "api"])
    args = parser.parse_args()

    import logging

    from moto.server import ThreadedMotoServer

    from impex.local.template import LocalStack, load_template

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line a request otherwise
    host, port = moto.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    session = boto3.Session(aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1")
    stack = LocalStack(
        load_template(ROOT / "template.yaml"),
        stack_name="bench",
        parameters={
            "JwtIssuer": "https://bench",
            "JwtAudience": "bench",
            "CorsAllowedOrigins": "https://bench",
        },
    ).create(session, moto_url)
    bucket = stack.physical["FilesBucket"]
    s3 = session.client("s3", endpoint_url=moto_url)
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        with FakeDynamoDB() as fake:
            base = {"moto": moto_url, "fake": fake.url, "bucket": bucket, "resources": stack.physical}
            if args.batches_in_flight is not None:
                base["batches_in_flight"] = args.batches_in_flight
            if args.exact_conversion:
                base["exact_conversion"] = True
            if args.only in (None, "import"):
                for rows, label in ((args.small_rows, "import_csv_small"), (args.rows, "import_csv")):
                    path = work / f"bench-{rows}.csv"
                    size = generate_csv(path, rows)
                    key = f"uploads/bench/{path.name}"
                    s3.upload_file(str(path), bucket, key)
                    config = {**base, "key": key}
                    baseline = written_through(fake, "import_csv_baseline", config, rows)
                    ours = written_through(fake, "import_csv_impex", config, rows)
                    lines.append(bench_line(label, ours, baseline, file_mb=round(size / 1024**2, 1)))
                    print(lines[-1], flush=True)
                    if label == "import_csv":
                        # The reader alone, against pyarrow's, and its share of the whole import.
                        read = {"csv_path": str(path)}
                        reader = run_case("read_csv_impex", read)
                        pyarrow = run_case("read_csv_pyarrow", read)
                        share = (ours["rows"] / ours["seconds"]) / (reader["rows"] / reader["seconds"])
                        lines.append(bench_line("read_csv", reader, pyarrow, share_of_import=f"{share:.3f}"))
                        print(lines[-1], flush=True)
                if args.large_rows:
                    path = work / "bench-large.csv"
                    size = generate_csv(path, args.large_rows)
                    key = f"uploads/bench/{path.name}"
                    s3.upload_file(str(path), bucket, key)
                    path.unlink()
                    ours = written_through(fake, "import_csv_impex", {**base, "key": key}, args.large_rows)
                    lines.append(bench_line("import_csv_large", ours, None, file_mb=round(size / 1024**2, 1)))
                    print(lines[-1], flush=True)
                    s3.delete_object(Bucket=bucket, Key=key)
                xlsx = work / "bench.xlsx"
                generate_xlsx(xlsx, args.xlsx_rows)
                config = {**base, "xlsx_path": str(xlsx)}
                baseline = run_case("import_xlsx_baseline", config)
                ours = run_case("import_xlsx_impex", config)
                lines.append(bench_line("import_xlsx_read", ours, baseline))
                print(lines[-1], flush=True)
        if args.only in (None, "export"):
            sizes = (
                (args.small_export_rows, args.small_formats.split(","), "_small"),
                (args.export_rows, ["csv", "jsonl", "parquet"], ""),
                (args.xlsx_rows, ["xlsx"], ""),
            )
            for rows, formats, suffix in sizes:
                with FakeDynamoDB(page_rows=rows) as fake:
                    base = {"moto": moto_url, "fake": fake.url, "bucket": bucket, "resources": stack.physical}
                    baseline_case = "export_xlsx_baseline" if "xlsx" in formats else "export_csv_baseline"
                    baseline = run_case(baseline_case, base)
                    for fmt in formats:
                        kept = work / f"export-{rows}.{fmt}"
                        # Only the XLSX is checked, so only its file is kept (downloading costs RSS).
                        keep = {"keep_file": str(kept)} if fmt == "xlsx" else {}
                        ours = run_case("export_impex", {**base, "format": fmt, **keep})
                        checks = _xlsx_checks(kept, rows, libreoffice=True) if fmt == "xlsx" else {}
                        lines.append(
                            bench_line(
                                f"export_{fmt}{suffix}",
                                ours,
                                baseline,
                                file_mb=round(ours.get("bytes", 0) / 1024**2, 1),
                                **checks,
                            )
                        )
                        print(lines[-1], flush=True)
                        kept.unlink(missing_ok=True)
            if args.xlsx_large_rows:
                lines.append(_xlsx_large(args.xlsx_large_rows, work, moto_url, bucket, stack.physical))
                print(lines[-1], flush=True)
        if args.only in (None, "sharded"):
            lines.append(_sharded_import(args, work, s3, bucket, moto_url, stack.physical))
            print(lines[-1], flush=True)
        if args.only in (None, "latency"):
            lines += _latency_cases(args, work, s3, bucket, moto_url, stack.physical)
        if args.only in (None, "fanout"):
            lines += _fanout_imports(args, work, s3, bucket, moto_url, stack.physical)
            lines += _fanout_exports(args, moto_url, bucket, stack.physical)
        if args.only in (None, "api"):
            from benchmarks.api import cold_start_line, status_line

            lines.append(cold_start_line(stack.function("ApiFunction").environment, moto_url))
            print(lines[-1], flush=True)
            lines.append(status_line())
            print(lines[-1], flush=True)
    moto.stop()
    print("\n".join(["", "summary:", *lines]))


def _xlsx_checks(path: Path, rows: int, *, libreoffice: bool) -> dict[str, Any]:
    """The exported workbook read back: openpyxl always, LibreOffice (if installed) when asked."""
    from benchmarks.xlsx_check import check_with_libreoffice, check_with_openpyxl

    checks: dict[str, Any] = {"sheets": check_with_openpyxl(path, rows), "openpyxl": "same"}
    if libreoffice:
        checks["libreoffice"] = check_with_libreoffice(path, rows)
    return checks


def _xlsx_large(rows: int, work: Path, moto: str, bucket: str, resources: Any) -> str:
    """impex alone exporting more rows than one sheet holds, for streaming and peak RSS."""
    kept = work / "export-large.xlsx"
    with FakeDynamoDB(page_rows=rows) as fake:
        config = {"moto": moto, "fake": fake.url, "bucket": bucket, "resources": resources}
        ours = run_case("export_impex", {**config, "format": "xlsx", "keep_file": str(kept)})
    checks = _xlsx_checks(kept, rows, libreoffice=False)
    kept.unlink()
    return bench_line("export_xlsx_large", ours, None, file_mb=round(ours["bytes"] / 1024**2, 1), **checks)


def _latency_line(name: str, slow: dict[str, Any], fast: dict[str, Any], **extra: Any) -> str:
    rate, zero = slow["rows"] / slow["seconds"], fast["rows"] / fast["seconds"]
    parts = [
        f"BENCH {name} rows_per_s={rate:.0f} zero_latency_rows_per_s={zero:.0f} ratio={rate / zero:.2f}",
        f"rows={slow['rows']} peak_rss_mb={slow['peak_rss_mb']}",
        *(f"{k}={v}" for k, v in extra.items()),
    ]
    return " ".join(parts)


def _latency_cases(
    args: argparse.Namespace, work: Path, s3: Any, bucket: str, moto: str, resources: Any
) -> list[str]:
    """The same import and export, one worker, against an endpoint with DynamoDB's request latency
    (no capacity caps) and against the zero-latency one: what share of its own speed a worker keeps
    when every request takes milliseconds."""
    rows = args.latency_rows
    path = work / "bench-latency.csv"
    generate_csv(path, rows, seed=11)
    key = f"uploads/bench/{path.name}"
    s3.upload_file(str(path), bucket, key)
    config: dict[str, Any] = {
        "moto": moto,
        "bucket": bucket,
        "resources": resources,
        "key": key,
        "max_workers": args.max_workers,
    }
    if args.batches_in_flight is not None:  # both runs: the ratio is of one configuration
        config["batches_in_flight"] = args.batches_in_flight
    if args.exact_conversion:
        config["exact_conversion"] = True
    lines = []
    with FakeDynamoDB() as zero, FakeDynamoDB(latency=True) as slow:
        fast = written_through(zero, "import_csv_impex", {**config, "fake": zero.url}, rows)
        slowed = written_through(slow, "import_csv_impex", {**config, "fake": slow.url}, rows)
        requests = slow.stats()["requests"]
    lines.append(_latency_line("import_csv_latency", slowed, fast, requests=requests))
    print(lines[-1], flush=True)
    with FakeDynamoDB(page_rows=rows) as zero, FakeDynamoDB(page_rows=rows, latency=True) as slow:
        fast = run_case("export_impex", {**config, "fake": zero.url, "format": "csv"})
        slowed = run_case("export_impex", {**config, "fake": slow.url, "format": "csv"})
        requests = slow.stats()["requests"]
    lines.append(_latency_line("export_csv_latency", slowed, fast, requests=requests))
    print(lines[-1], flush=True)
    return lines


def _sharded_import(
    args: argparse.Namespace, work: Path, s3: Any, bucket: str, moto: str, resources: Any
) -> str:
    """One worker importing the same file into a one-shard and a sharded dataset, against the
    endpoint with DynamoDB's latency and per-partition caps (the one-shard run is the baseline)."""
    path = work / "bench-sharded.csv"
    generate_csv(path, args.sharded_rows, seed=7)
    key = f"uploads/bench/{path.name}"
    s3.upload_file(str(path), bucket, key)
    with FakeDynamoDB(realistic=True) as real:
        config = {
            **_endpoints(moto, real, bucket, resources),
            "key": key,
            "max_workers": args.max_workers,
        }
        one = written_through(real, "import_csv_impex", {**config, "shards": 1}, args.sharded_rows)
        throttled_one = real.stats()
        many = written_through(real, "import_csv_impex", {**config, "shards": args.shards}, args.sharded_rows)
        stats = real.stats()
    unprocessed_many = stats["unprocessed"] - throttled_one["unprocessed"]
    return bench_line(
        "import_csv_sharded",
        many,
        one,
        shards=args.shards,
        baseline_shards=1,
        baseline_unprocessed=throttled_one["unprocessed"],
        unprocessed=unprocessed_many,
    )


def _endpoints(moto: str, fake: FakeDynamoDB, bucket: str, resources: Any) -> dict[str, Any]:
    """Where a case finds moto, the records endpoint, the bucket and the stack's resources."""
    return {"moto": moto, "fake": fake.url, "bucket": bucket, "resources": resources}


def _fanout_imports(
    args: argparse.Namespace, work: Path, s3: Any, bucket: str, moto: str, resources: Any
) -> list[str]:
    """One file imported by 1, 2, 4, 8 worker processes (the split included in the time), each run
    against a fresh endpoint with DynamoDB's latency and per-partition and table caps."""
    path = work / "bench-fanout.csv"
    generate_csv(path, args.fanout_rows, seed=13)
    key = f"uploads/bench/{path.name}"
    s3.upload_file(str(path), bucket, key)
    path.unlink()
    lines, single = [], None
    for workers in (int(n) for n in args.fanout_workers.split(",")):
        with FakeDynamoDB(realistic=True) as real:
            config = {
                **_endpoints(moto, real, bucket, resources),
                "key": key,
                "shards": args.fanout_shards,
                "workers": workers,
            }
            result = written_through(real, "import_csv_fanout", config, args.fanout_rows)
            unprocessed = real.stats()["unprocessed"]
        single = single or result["rows"] / result["seconds"]
        extra = f"split_s={result['split_seconds']:.1f} shards={args.fanout_shards} unprocessed={unprocessed}"
        lines.append(_fanout_line("import_csv_fanout", workers, result, single, extra))
        print(lines[-1], flush=True)
    s3.delete_object(Bucket=bucket, Key=key)
    return lines


def _fanout_line(name: str, workers: int, result: dict[str, Any], single: float, extra: str) -> str:
    """`BENCH <name> workers=N rows_per_s=… speedup=… peak_rss_mb=…` (speedup over N = 1), then details."""
    rate = result["rows"] / result["seconds"]
    return (
        f"BENCH {name} workers={workers} rows_per_s={rate:.0f} speedup={rate / single:.2f} "
        f"peak_rss_mb={result['worker_peak_rss_mb']} rows={result['rows']} {extra} "
        f"workers_cpu_s={result['cpu_s']}"
    )


def _fanout_exports(args: argparse.Namespace, moto: str, bucket: str, resources: Any) -> list[str]:
    """One CSV export of a sharded dataset written by 1 worker (in key order) and by 2, 4, 8
    worker processes (the split and the assembly included), each against a fresh endpoint with
    DynamoDB's request latency; every partition serves its share of the rows."""
    shards = args.fanout_shards
    per_shard = args.fanout_rows // shards
    lines, single = [], None
    for workers in (int(n) for n in args.fanout_workers.split(",")):
        # Pages of 100 records: DynamoDB honours a Query's Limit (the merge asks for ~80-300 a
        # partition), the fake serves pre-built pages whatever the Limit.
        with FakeDynamoDB(page_rows=per_shard, per_page=100, realistic=True) as real:
            config = {**_endpoints(moto, real, bucket, resources), "shards": shards, "workers": workers}
            result = run_case("export_csv_fanout", config)
        if result["rows"] != per_shard * shards:
            raise SystemExit(f"the export wrote {result['rows']} rows of {per_shard * shards}")
        single = single or result["rows"] / result["seconds"]
        extra = f"shards={shards} file_mb={result['bytes'] / 1024**2:.1f}"
        lines.append(_fanout_line("export_csv_fanout", workers, result, single, extra))
        print(lines[-1], flush=True)
    return lines


if __name__ == "__main__":
    main()
