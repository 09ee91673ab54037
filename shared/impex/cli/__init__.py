"""The `impex` command: an HTTP client of the impex API, plus `impex local …` for the local stack."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from impex.cli.client import ApiError, ImpexClient

DEFAULT_URL = "http://127.0.0.1:3000/api/import-export"
_OPS = [
    (">=", "gte"),
    ("<=", "lte"),
    ("!=", "ne"),
    ("=", "eq"),
    (">", "gt"),
    ("<", "lt"),
    ("~", "begins_with"),
]


def parse_filter(text: str) -> dict[str, Any]:
    """`age>=18`, `country=NZ`, `name~Jo` → {"field", "op", "value"}; values are JSON when they parse."""
    for symbol, op in _OPS:
        field, found, raw = text.partition(symbol)
        if found and field:
            try:
                value: Any = json.loads(raw)
            except json.JSONDecodeError:
                value = raw
            if op == "begins_with":
                value = raw
            return {"field": field.strip(), "op": op, "value": value}
    raise ValueError(f"cannot read the filter '{text}'; use field=value, field>=value, field~prefix …")


def _pairs(items: list[str] | None) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in items or []:
        header, found, field = item.partition("=")
        if not found:
            raise ValueError(f"cannot read the mapping '{item}'; use 'File header=field'")
        result[header] = field
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="impex", description="Bulk import/export jobs for DynamoDB datasets."
    )
    parser.add_argument(
        "--url", default=os.environ.get("IMPEX_URL", DEFAULT_URL), help="API base URL (IMPEX_URL)"
    )
    parser.add_argument("--token", default=os.environ.get("IMPEX_TOKEN"), help="bearer token (IMPEX_TOKEN)")
    parser.add_argument(
        "--tenant",
        default=os.environ.get("IMPEX_TENANT", "demo"),
        help="tenant for the token minted against a local stack when no token is given",
    )
    parser.add_argument("--json", action="store_true", help="print JSON, for scripts")
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser("local", help="the local stack").add_subparsers(
        dest="local_command", required=True
    )
    serve = local.add_parser("serve", help="run the local stack in the foreground")
    serve.add_argument("--port", type=int, default=None, help="API port (IMPEX_LOCAL_PORT, default 3000)")
    local.add_parser("demo", help="start the local stack, run the demo job, stop")
    token = local.add_parser("token", help="print a JWT the local stack accepts")
    token.add_argument("--tenant", dest="token_tenant", required=True)

    datasets = commands.add_parser("datasets", help="dataset definitions").add_subparsers(
        dest="datasets_command", required=True
    )
    put = datasets.add_parser("put", help="create or replace a dataset from a JSON schema file")
    put.add_argument("name")
    put.add_argument("--schema", required=True, type=Path)
    datasets.add_parser("list", help="list datasets")

    imp = commands.add_parser("import", help="import a file into a dataset")
    imp.add_argument("file", type=Path)
    imp.add_argument("--dataset", required=True)
    imp.add_argument("--mapping", action="append", metavar="HEADER=FIELD")
    imp.add_argument("--mode", choices=["upsert", "insert", "merge", "skip_unchanged"])
    imp.add_argument("--format", dest="file_format")
    imp.add_argument("--dry-run", action="store_true")
    imp.add_argument("--wait", action="store_true", help="wait for the job, with a progress bar")

    exp = commands.add_parser("export", help="export a dataset to a file")
    exp.add_argument("dataset")
    exp.add_argument("--format", required=True, choices=["csv", "xlsx", "json", "jsonl", "parquet"])
    exp.add_argument("--filter", action="append", metavar="FIELD=VALUE")
    exp.add_argument("--fields", help="comma-separated fields, in order")
    exp.add_argument("-o", "--output", type=Path, help="save the file here (implies --wait)")
    exp.add_argument("--wait", action="store_true")

    jobs = commands.add_parser("jobs", help="jobs").add_subparsers(dest="jobs_command", required=True)
    listing = jobs.add_parser("list")
    listing.add_argument("--type", choices=["import", "export"])
    listing.add_argument("--status")
    for name in ("status", "cancel", "retry"):
        jobs.add_parser(name).add_argument("job_id")
    return parser


def _client(args: argparse.Namespace) -> ImpexClient:
    token = args.token
    if not token:
        host = urlsplit(args.url).hostname or ""
        if host not in ("127.0.0.1", "localhost"):
            raise ApiError("no token: pass --token or set IMPEX_TOKEN")
        from impex.local.auth import LocalIssuer, impex_home

        token = LocalIssuer(impex_home()).token(args.tenant)
    return ImpexClient(args.url, token)


def _print(args: argparse.Namespace, value: Any, human: str) -> None:
    print(json.dumps(value, indent=2, default=str) if args.json else human)


def _wait(client: ImpexClient, job: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    if args.json:
        return client.wait(job["id"])
    from impex.cli.progress import JobProgress

    with JobProgress() as progress:
        return progress.follow(client, job, label=f"{job['type']} {job.get('fileName', '')}")


def run(argv: list[str] | None = None) -> int:
    """Run one command; the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "local":
        from impex.local import cli as local_cli

        return local_cli.run(args)
    commands = {"datasets": _datasets, "import": _import, "export": _export, "jobs": _jobs}
    return commands[args.command](args, _client(args))


def _datasets(args: argparse.Namespace, client: ImpexClient) -> int:
    if args.datasets_command == "put":
        definition = json.loads(args.schema.read_text())
        dataset = client.put_dataset(args.name, definition)
        _print(
            args,
            dataset,
            f"dataset {dataset['name']}: {len(dataset['fields'])} fields, keys {dataset['keys']}",
        )
    else:
        found = client.datasets()
        _print(
            args, found, "\n".join(f"{d['name']}\t{len(d['fields'])} fields\tkeys {d['keys']}" for d in found)
        )
    return 0


def _import(args: argparse.Namespace, client: ImpexClient) -> int:
    options: dict[str, Any] = {"dryRun": args.dry_run}
    if args.mode:
        options["mode"] = args.mode
    job = client.start_import(
        args.file, args.dataset, mapping=_pairs(args.mapping), options=options, file_format=args.file_format
    )
    if args.wait:
        job = _wait(client, job, args)
    _print(args, job, _summary(job))
    return 0 if job["status"] != "FAILED" else 1


def _export(args: argparse.Namespace, client: ImpexClient) -> int:
    filters = [parse_filter(f) for f in args.filter or []]
    fields = [f.strip() for f in args.fields.split(",")] if args.fields else None
    job = client.start_export(args.dataset, args.format, filters=filters, fields=fields)
    if args.wait or args.output:
        job = _wait(client, job, args)
    if args.output and job["status"] == "COMPLETED":
        client.download(job["id"], args.output)
        job["savedTo"] = str(args.output)
    _print(args, job, _summary(job))
    return 0 if job["status"] != "FAILED" else 1


def _jobs(args: argparse.Namespace, client: ImpexClient) -> int:
    if args.jobs_command == "list":
        page = client.jobs(type=args.type or "", status=args.status or "")
        _print(args, page, "\n".join(_summary(j) for j in page["jobs"]) or "no jobs")
        return 0
    if args.jobs_command == "status":
        job = client.status(args.job_id)
    elif args.jobs_command == "cancel":
        job = client.cancel(args.job_id)
    else:
        job = client.retry(args.job_id)["job"]
    _print(args, job, _summary(job))
    return 0


def _summary(job: dict[str, Any]) -> str:
    line = f"{job['id']}  {job['type']:<6} {job['status']:<10} {job.get('processedRows', 0):>9} rows"
    result = job.get("result") or {}
    if job["type"] == "import" and result:
        line += (
            f"  created {result.get('created', 0)}, updated {result.get('updated', 0)}, "
            f"skipped {result.get('skipped', 0)}, failed {result.get('failed', 0)}"
        )
    if job.get("errorMessage"):
        line += f"  — {job['errorMessage']}"
    if job.get("savedTo"):
        line += f"  → {job['savedTo']}"
    return line


def main() -> None:
    """Console entry point: errors are one line on stderr, never a traceback."""
    try:
        code = run()
    except ApiError as error:
        print(f"impex: {error}", file=sys.stderr)
        code = 1
    except (OSError, ValueError) as error:
        print(f"impex: {error}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
