"""The impex CLI against the running local stack."""

from __future__ import annotations

import json

import openpyxl
import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import REQUEST_TIMEOUT

pytestmark = pytest.mark.e2e
SCHEMA_FILE = ROOT / "examples" / "customers.schema.json"


def put_schema(stack, tenant: str) -> None:
    """`impex datasets put customers --schema examples/customers.schema.json` for ``tenant``."""
    result = stack.cli("datasets", "put", "customers", "--schema", str(SCHEMA_FILE), tenant=tenant)
    assert result.returncode == 0, result.stderr


def imported(stack, path, tenant: str, *flags: str) -> dict:
    """`impex --json import PATH --dataset customers --wait [FLAGS]`: the finished job."""
    result = stack.cli(
        "--json", "import", str(path), "--dataset", "customers", "--wait", *flags, tenant=tenant
    )
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_the_cli_runs_the_whole_flow(local_stack, tmp_path):
    schema = ROOT / "examples" / "customers.schema.json"
    put = local_stack.cli("datasets", "put", "customers", "--schema", str(schema))
    assert put.returncode == 0, put.stderr
    assert "customers" in local_stack.cli("datasets", "list").stdout
    imported = local_stack.cli(
        "--json",
        "import",
        str(ROOT / "examples" / "customers-update.xlsx"),
        "--dataset",
        "customers",
        "--wait",
    )
    assert imported.returncode == 0, imported.stderr
    job = json.loads(imported.stdout)
    assert job["status"] == "COMPLETED" and job["result"]["created"] == 500
    target = tmp_path / "nz.xlsx"
    exported = local_stack.cli(
        "export",
        "customers",
        "--format",
        "xlsx",
        "--filter",
        "country=NZ",
        "--filter",
        "orders>=10",
        "--fields",
        "customerId,orders",
        "-o",
        str(target),
    )
    assert exported.returncode == 0, exported.stderr
    rows = list(openpyxl.load_workbook(target).active.iter_rows(values_only=True))
    assert rows[0] == ("customerId", "orders") and len(rows) > 1
    assert all(orders >= 10 for _, orders in rows[1:])
    listed = json.loads(local_stack.cli("--json", "jobs", "list", "--type", "export").stdout)
    assert len(listed["jobs"]) == 1
    status = local_stack.cli("jobs", "status", job["id"])
    assert job["id"] in status.stdout and "COMPLETED" in status.stdout


def test_cli_dry_run_and_mapping(local_stack, tmp_path):
    put_schema(local_stack, "cli2")
    path = tmp_path / "odd.csv"
    path.write_text("ID number,Mail\nC000009,z@example.com\n")
    result = local_stack.cli(
        "--json",
        "import",
        str(path),
        "--dataset",
        "customers",
        "--mapping",
        "ID number=customerId",
        "--mapping",
        "Mail=email",
        "--dry-run",
        "--wait",
        tenant="cli2",
    )
    job = json.loads(result.stdout)
    assert job["status"] == "COMPLETED" and job["result"]["dryRun"] is True and job["result"]["created"] == 1


def test_cli_errors_are_one_line_not_a_traceback(local_stack):
    result = local_stack.cli("jobs", "status", "01JDZ8Q4N6X3V2C8Y7T5R9K1MB")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "not found" in result.stderr
    assert "Traceback" not in result.stderr
    missing = local_stack.cli("import", "/nonexistent.csv", "--dataset", "customers")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    bad = local_stack.cli("export", "customers", "--format", "csv", "--filter", "nonsense")
    assert bad.returncode == 1 and "cannot read the filter" in bad.stderr


def test_cli_cancel(local_stack):
    put_schema(local_stack, "cli3")
    created = json.loads(
        local_stack.cli(
            "--json",
            "import",
            str(ROOT / "examples" / "customers.csv"),
            "--dataset",
            "customers",
            tenant="cli3",
        ).stdout
    )
    cancelled = local_stack.cli("--json", "jobs", "cancel", created["id"], tenant="cli3")
    if cancelled.returncode == 0:  # ended by the cancel, or (a cancel too late) by its last batch
        assert json.loads(cancelled.stdout)["status"] in ("CANCELLED", "COMPLETED")
    else:  # it finished first: a 409 as one line
        assert "cannot become CANCELLED" in cancelled.stderr


def test_local_token_prints_a_token_the_stack_accepts(local_stack):
    token = local_stack.cli("local", "token", "--tenant", "someone").stdout.strip()
    import requests

    assert (
        requests.get(
            f"{local_stack.api}/jobs", headers={"Authorization": f"Bearer {token}"}, timeout=REQUEST_TIMEOUT
        ).status_code
        == 200
    )


def test_cli_retry(local_stack, tmp_path):
    put_schema(local_stack, "cli4")
    bad = tmp_path / "bad.csv"
    bad.write_text("no,such,columns\n1,2,3\n")
    failed = imported(local_stack, bad, "cli4")
    assert (
        failed["status"] == "FAILED"
        and "none of the file's columns (no, such, columns)" in failed["errorMessage"]
    )
    retried = local_stack.cli("--json", "jobs", "retry", failed["id"], tenant="cli4")
    assert retried.returncode == 0 and json.loads(retried.stdout)["status"] == "PENDING"
    done = local_stack.cli("jobs", "retry", "01JDZ8Q4N6X3V2C8Y7T5R9K1MB", tenant="cli4")
    assert done.returncode == 1 and "not found" in done.stderr


def test_cli_datasets_get_and_delete_with_options_after_the_subcommand(local_stack):
    put_schema(local_stack, "cli5")
    shown = local_stack.cli("datasets", "get", "customers", "--json", tenant="cli5")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["name"] == "customers"
    deleted = local_stack.cli("datasets", "delete", "customers", "--json", tenant="cli5")
    assert deleted.returncode == 0 and json.loads(deleted.stdout) == {"name": "customers", "deleted": True}
    gone = local_stack.cli("datasets", "get", "customers", tenant="cli5")
    assert gone.returncode == 1 and "impex datasets put" in gone.stderr  # the hint names a CLI command


def test_cli_row_errors_exit_3_and_say_how_to_get_the_report(local_stack, tmp_path):
    put_schema(local_stack, "cli6")
    path = tmp_path / "some-bad.csv"
    path.write_text(
        "customerId,email,name,country,orders\nC000001,a@example.com,Ann,NZ,3\nC000002,b@example.com,Bob,AU,many\n"
    )
    # When a file with a bad row is imported and waited for
    result = local_stack.cli("import", str(path), "--dataset", "customers", "--wait", "--json", tenant="cli6")
    # Then the exit code is 3, and stderr names the command that fetches the report
    job = json.loads(result.stdout)
    assert result.returncode == 3, result.stderr
    assert (job["result"]["written"], job["result"]["failed"]) == (1, 1)
    command = f"impex jobs download {job['id']} --errors -o errors.csv"
    assert command in result.stderr
    report = tmp_path / "errors.csv"
    saved = local_stack.cli("jobs", "download", job["id"], "--errors", "-o", str(report), tenant="cli6")
    assert saved.returncode == 0, saved.stderr
    assert "many" in report.read_text() and report.read_text().startswith("row,error")


def test_cli_commits_a_dry_run_and_downloads_an_export(local_stack, tmp_path):
    put_schema(local_stack, "cli7")
    path = tmp_path / "good.csv"
    path.write_text("customerId,email,name,country,orders\nC000001,a@example.com,Ann,NZ,3\n")
    dry = imported(local_stack, path, "cli7", "--dry-run")
    assert dry["status"] == "COMPLETED" and dry["result"]["dryRun"] is True
    committed = local_stack.cli("jobs", "commit", dry["id"], "--wait", "--json", tenant="cli7")
    assert committed.returncode == 0, committed.stderr
    assert json.loads(committed.stdout)["result"]["created"] == 1
    export = json.loads(
        local_stack.cli("--json", "export", "customers", "--format", "csv", "--wait", tenant="cli7").stdout
    )
    target = tmp_path / "out.csv"
    saved = local_stack.cli("jobs", "download", export["id"], "-o", str(target), tenant="cli7")
    assert saved.returncode == 0 and "C000001" in target.read_text()
    watched = local_stack.cli("jobs", "watch", export["id"], "--json", tenant="cli7")
    assert watched.returncode == 0 and json.loads(watched.stdout)["status"] == "COMPLETED"
