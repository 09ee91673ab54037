"""`make run`: the main job on the local stack, end to end, checking its own results.

1. start the local stack (moto + the local Lambda runtime) on free ports;
2. create the `customers` dataset from examples/customers.schema.json;
3. import examples/customers.csv (12,000 rows, some invalid) and examples/customers-update.xlsx,
   each through the API and a presigned POST upload;
4. export the NZ customers to XLSX and download the file through its presigned URL;
5. check every count against examples/expected.json; exit non-zero on any difference.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from impex.cli.client import ApiError, ImpexClient
from impex.cli.progress import JobProgress
from impex.local.runtime import LocalConfig, LocalImpex
from impex.local.template import project_root


class DemoFailed(Exception):
    """The demo's own check found a wrong count or a failed job."""


def run_demo() -> int:
    """Run the demo; 0 when every check passed."""
    examples = project_root() / "examples"
    expected = json.loads((examples / "expected.json").read_text())
    config = LocalConfig()
    if "IMPEX_LOCAL_PORT" not in os.environ:
        config.api_port = 0  # any free port: the demo must not trip over a running `make serve`
    if "IMPEX_LOCAL_AWS_PORT" not in os.environ:
        config.aws_port = 0
    downloads = config.home / "downloads"
    print("starting the local stack (moto + local Lambda runtime)…", flush=True)
    try:
        with LocalImpex(config) as stack:
            print(f"  API {stack.api_url}\n  AWS {stack.aws_endpoint}\n", flush=True)
            client = ImpexClient(stack.api_url, stack.issuer.token("demo"))
            summaries = _run(client, examples, expected, downloads)
    except (ApiError, DemoFailed) as error:
        print(f"\ndemo FAILED: {error}", file=sys.stderr)
        return 1
    print("\n" + "\n".join(summaries))
    print("\ndemo OK: every count matched examples/expected.json")
    return 0


def _run(client: ImpexClient, examples: Path, expected: dict[str, Any], downloads: Path) -> list[str]:
    schema = json.loads((examples / "customers.schema.json").read_text())
    client.put_dataset("customers", schema)
    print("dataset 'customers' created (10 typed fields, key customerId)")
    with JobProgress() as progress:
        csv_job = client.start_import(examples / "customers.csv", "customers")
        csv_job = progress.follow(client, csv_job, label="import customers.csv        ")
        _check_import(csv_job, expected["csv"], "customers.csv")
        xlsx_job = client.start_import(examples / "customers-update.xlsx", "customers")
        xlsx_job = progress.follow(client, xlsx_job, label="import customers-update.xlsx")
        _check_import(xlsx_job, expected["xlsx"], "customers-update.xlsx")
        wanted = expected["export"]
        export = client.start_export("customers", "xlsx", filters=[wanted["filter"]])
        export = progress.follow(client, export, label="export NZ customers to xlsx ")
    if export["status"] != "COMPLETED":
        raise DemoFailed(f"the export ended {export['status']}: {export.get('errorMessage')}")
    if export["processedRows"] != wanted["rows"]:
        raise DemoFailed(f"the export has {export['processedRows']} rows, expected {wanted['rows']}")
    target = downloads / export["fileName"]
    client.download(export["id"], target)
    rows = _xlsx_rows(target)
    if rows != wanted["rows"]:
        raise DemoFailed(f"the downloaded file has {rows} data rows, expected {wanted['rows']}")
    report = downloads / f"{csv_job['id']}-errors.csv"
    client.download(csv_job["id"], report, which="errors")
    return [
        _line(csv_job),
        _line(xlsx_job),
        _line(export),
        f"row errors of customers.csv saved to {report}",
        f"export saved to {target} ({target.stat().st_size:,} bytes, {rows:,} rows)",
    ]


def _check_import(job: dict[str, Any], expected: dict[str, int], name: str) -> None:
    if job["status"] != "COMPLETED":
        raise DemoFailed(f"the import of {name} ended {job['status']}: {job.get('errorMessage')}")
    result = job["result"]
    for key in ("created", "updated", "failed"):
        if key in expected and result[key] != expected[key]:
            raise DemoFailed(f"the import of {name} has {key}={result[key]}, expected {expected[key]}")
    if result["rowsTotal"] != expected["rows"]:
        raise DemoFailed(f"the import of {name} read {result['rowsTotal']} rows, expected {expected['rows']}")


def _line(job: dict[str, Any]) -> str:
    result = job.get("result") or {}
    if job["type"] == "import":
        return (
            f"{job['type']} {job['fileName']:<24} {job['status']}  rows {result['rowsTotal']:>6}  "
            f"created {result['created']:>6}  updated {result['updated']:>4}  failed {result['failed']:>4}"
        )
    return f"export {job['fileName']:<24} {job['status']}  rows {result.get('rows', 0):>6}"


def _xlsx_rows(path: Path) -> int:
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_path(str(path))
    return sum(max(book.get_sheet_by_name(name).height - 1, 0) for name in book.sheet_names)
