"""The `impex` command: an HTTP client of the impex API, plus `impex local …` for the local stack."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from impex.cli.client import TERMINAL, ApiError, ImpexClient

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


# Exit codes (documented in the README's CLI reference); 2, a usage error, is argparse's own.
EXIT_OK, EXIT_FAILED, EXIT_ROW_ERRORS = 0, 1, 3
# How long `jobs cancel` waits for a running job's worker to end it (it stops at its next batch).
CANCEL_WAIT_SECONDS = 10


def _global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """--url, --token, --tenant and --json, accepted before or after the subcommand: the top parser
    sets the defaults, each subcommand's copy only overrides what is given after it."""

    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--url", default=default(os.environ.get("IMPEX_URL", DEFAULT_URL)), help="API base URL (IMPEX_URL)"
    )
    parser.add_argument(
        "--token", default=default(os.environ.get("IMPEX_TOKEN")), help="bearer token (IMPEX_TOKEN)"
    )
    parser.add_argument(
        "--tenant",
        default=default(os.environ.get("IMPEX_TENANT", "demo")),
        help="tenant of the token minted for a local stack when no token is given (IMPEX_TENANT)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print JSON (stable, see the README), for scripts",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="impex", description="Bulk import/export jobs for DynamoDB datasets."
    )
    _global_options(parser, defaults=True)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, defaults=False)
    commands = parser.add_subparsers(dest="command", required=True)
    _local_commands(commands, common)
    _dataset_commands(commands, common)
    _transfer_commands(commands, common)
    _job_commands(commands, common)
    return parser


def _local_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    local = commands.add_parser("local", help="the local stack", parents=[common]).add_subparsers(
        dest="local_command", required=True
    )
    serve = local.add_parser("serve", help="run the local stack in the foreground", parents=[common])
    serve.add_argument(
        "--port", type=int, default=None, help="API port (IMPEX_LOCAL_PORT, default 3000; 0: any)"
    )
    local.add_parser("demo", help="start the local stack, run the demo job, stop", parents=[common])
    # No global options here: its own --tenant names the token's tenant.
    token = local.add_parser("token", help="print a JWT the local stack accepts")
    token.add_argument("--tenant", dest="token_tenant", required=True, help="the tenant the token is for")


def _dataset_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    datasets = commands.add_parser("datasets", help="dataset definitions", parents=[common]).add_subparsers(
        dest="datasets_command", required=True
    )
    put = datasets.add_parser(
        "put", help="create or replace a dataset from a JSON schema file", parents=[common]
    )
    put.add_argument("name", help="the dataset's name")
    put.add_argument(
        "--schema", required=True, type=Path, help="a JSON file: {fields, keys, …} (see examples/)"
    )
    for name, what in (
        ("get", "show a dataset's definition"),
        ("delete", "delete a dataset (not its records)"),
    ):
        datasets.add_parser(name, help=what, parents=[common]).add_argument("name", help="the dataset's name")
    datasets.add_parser("list", help="list datasets", parents=[common])


def _transfer_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    imp = commands.add_parser("import", help="import a file into a dataset", parents=[common])
    imp.add_argument("file", type=Path, help="the CSV, TSV, JSON Lines or workbook file (gzip too)")
    imp.add_argument("--dataset", required=True, help="the dataset to import into")
    imp.add_argument(
        "--mapping", action="append", metavar="HEADER=FIELD", help="map a file header to a field (repeatable)"
    )
    imp.add_argument(
        "--mode",
        choices=["upsert", "insert", "merge", "skip_unchanged"],
        help="how rows meet existing records",
    )
    imp.add_argument("--format", dest="file_format", help="the file's format, when its name does not say")
    imp.add_argument(
        "--dry-run", action="store_true", help="validate and count, write nothing (commit it later)"
    )
    imp.add_argument("--wait", action="store_true", help="wait for the job, with a progress bar")
    exp = commands.add_parser("export", help="export a dataset to a file", parents=[common])
    exp.add_argument("dataset", help="the dataset to export")
    exp.add_argument(
        "--format",
        required=True,
        choices=["csv", "xlsx", "json", "jsonl", "parquet"],
        help="the file's format",
    )
    exp.add_argument(
        "--filter",
        action="append",
        metavar="FIELD=VALUE",
        help="keep records where FIELD=, >=, <=, >, <, != or ~ (prefix) VALUE; repeatable, ANDed",
    )
    exp.add_argument("--fields", help="comma-separated fields, in order (default: all)")
    exp.add_argument("-o", "--output", type=Path, help="save the file here (implies --wait)")
    exp.add_argument("--wait", action="store_true", help="wait for the job, with a progress bar")


def _job_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    jobs = commands.add_parser("jobs", help="jobs", parents=[common]).add_subparsers(
        dest="jobs_command", required=True
    )
    listing = jobs.add_parser("list", help="list this tenant's jobs, newest first", parents=[common])
    listing.add_argument("--type", choices=["import", "export"], help="only imports or only exports")
    listing.add_argument(
        "--status",
        choices=["PENDING", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED"],
        help="only jobs in this status",
    )
    for name, what in (
        ("status", "show a job's status"),
        ("watch", "follow a job until it ends, with a progress bar"),
        ("cancel", "cancel a PENDING or PROCESSING job (waits up to 10 s for its worker to end it)"),
        ("retry", "retry a FAILED job from its checkpoint"),
        ("commit", "import for real the file a COMPLETED dry run checked"),
    ):
        command = jobs.add_parser(name, help=what, parents=[common])
        command.add_argument("job_id", help="the job's id")
        if name == "commit":
            command.add_argument("--wait", action="store_true", help="wait for the committed job")
    download = jobs.add_parser("download", help="save a job's file, or its error report", parents=[common])
    download.add_argument("job_id", help="the job's id")
    download.add_argument(
        "--errors", action="store_true", help="the import's error report instead of its file"
    )
    download.add_argument("-o", "--output", type=Path, required=True, help="where to save it")


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
    if args.datasets_command in ("put", "get"):
        if args.datasets_command == "put":
            dataset = client.put_dataset(args.name, json.loads(args.schema.read_text()))
        else:
            dataset = client.dataset(args.name)
        _print(
            args,
            dataset,
            f"dataset {dataset['name']}: {len(dataset['fields'])} fields, keys {dataset['keys']}",
        )
    elif args.datasets_command == "delete":
        client.delete_dataset(args.name)
        _print(args, {"name": args.name, "deleted": True}, f"dataset {args.name} deleted")
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
    return _exit_code(job)


def _exit_code(job: dict[str, Any]) -> int:
    """0 done, 1 FAILED (or CANCELLED), 3 an import that finished with row errors (saying how to get them)."""
    if job["status"] in ("FAILED", "CANCELLED"):
        return EXIT_FAILED
    failed = (job.get("result") or {}).get("failed", 0)
    if job["status"] == "COMPLETED" and job["type"] == "import" and failed:
        report = f"impex jobs download {job['id']} --errors -o errors.csv"
        print(f"impex: {failed} rows failed; get the report: {report}", file=sys.stderr)
        return EXIT_ROW_ERRORS
    return EXIT_OK


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
    return EXIT_FAILED if job["status"] in ("FAILED", "CANCELLED") else EXIT_OK


def _jobs(args: argparse.Namespace, client: ImpexClient) -> int:
    command = args.jobs_command
    if command == "list":
        page = client.jobs(type=args.type or "", status=args.status or "")
        _print(args, page, "\n".join(_summary(j) for j in page["jobs"]) or "no jobs")
        return EXIT_OK
    if command == "download":
        saved = client.download(args.job_id, args.output, which="errors" if args.errors else "result")
        _print(args, {"id": args.job_id, "savedTo": str(saved)}, f"saved {saved}")
        return EXIT_OK
    if command == "status":
        job = client.status(args.job_id)
    elif command == "watch":
        job = _wait(client, client.status(args.job_id), args)
    elif command == "cancel":
        job = client.cancel(args.job_id, wait_seconds=CANCEL_WAIT_SECONDS)
        if job["status"] not in TERMINAL:
            print(
                f"cancel requested; {args.job_id} stops at its next batch (impex jobs watch)",
                file=sys.stderr,
            )
    elif command == "commit":
        job = client.commit(args.job_id)["job"]
        if args.wait:
            job = _wait(client, job, args)
    else:
        job = client.retry(args.job_id)["job"]
    _print(args, job, _summary(job))
    return _exit_code(job) if command in ("status", "watch", "commit") else EXIT_OK


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
        print(f"impex: {error}" + (f"; {error.hint}" if error.hint else ""), file=sys.stderr)
        code = EXIT_FAILED
    except (OSError, ValueError) as error:
        print(f"impex: {error}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
