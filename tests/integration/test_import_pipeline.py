"""The import pipeline on moto, through the importer handler: formats, modes, errors, limits."""

from __future__ import annotations

import gzip
import json
from datetime import date
from decimal import Decimal

import boto3
import openpyxl
import pytest

from tests.integration.importing import Importer

HEADER = "email,name,age,balance,active,signedUp\n"


@pytest.fixture
def importer(api, put_dataset, stack) -> Importer:
    put_dataset()
    return Importer(api, stack)


def test_a_csv_is_imported_typed(importer):
    # When a CSV of two people is imported
    status = importer.run((HEADER + "a@x.io,Ann,30,10.50,yes,2024-01-02\nb@x.io,Bob,,0,no,\n").encode())
    # Then both records are stored with their fields' types
    assert status["status"] == "COMPLETED", status
    assert status["result"]["created"] == 2 and status["result"]["failed"] == 0
    assert status["processedRows"] == status["totalRows"] == 2 and status["progress"] == 100
    records = importer.records()
    assert records["a@x.io"] == {
        "email": "a@x.io",
        "name": "Ann",
        "age": 30,
        "balance": Decimal("10.50"),
        "active": True,
        "signedUp": "2024-01-02",
    }
    assert records["b@x.io"] == {"email": "b@x.io", "name": "Bob", "balance": 0, "active": False}


def test_row_errors_are_reported_and_downloadable(importer, api):
    # Given a file with a bad value, a ragged row and a missing required value
    content = (
        HEADER + "a@x.io,Ann,thirty,1,yes,2024-01-02\nb@x.io,Bob,5,1,yes\n,NoMail,1,1,1,2024-01-01\n"
        "c@x.io,Cat,2,2,no,2024-01-01\n"
    ).encode()
    # When it is imported
    status = importer.run(content)
    # Then the good row is written and each bad one is a row error with its row number and column
    assert status["status"] == "COMPLETED"
    result = status["result"]
    assert (result["created"], result["failed"], result["rowsTotal"]) == (1, 3, 4)
    errors = {(e["row"], e["column"]): e["message"] for e in result["firstErrors"]}
    assert errors[(2, "age")] == "age is not an integer"
    assert "the header has 6 columns" in errors[(3, "")]
    assert errors[(4, "email")] == "email is required"
    # The full report downloads through the API's redirect
    rows = importer.error_report(status["id"])
    assert rows[0] == ["row", "error", "email", "name", "age", "balance", "active", "signedUp"]
    assert [r[0] for r in rows[1:]] == ["2", "3", "4"]
    assert rows[1][2:] == ["a@x.io", "Ann", "thirty", "1", "yes", "2024-01-02"]


def test_a_record_over_dynamodb_item_limit_is_a_row_error_even_in_multibyte_text(api, put_dataset, stack):
    # Given a dataset of text fields, and a row of 150,000 characters that take 450 KB in UTF-8
    fields = [{"name": "id", "type": "string", "required": True}]
    fields += [{"name": name, "type": "string"} for name in ("a", "b", "c", "d", "e")]
    put_dataset("notes", fields=fields, keys=["id"])
    importer = Importer(api, stack)
    heavy = ",".join(["big"] + ["€" * 30_000] * 5)
    content = f"id,a,b,c,d,e\n{heavy}\nsmall,v,w,x,y,z\n".encode()
    # When it is imported
    status = importer.run(content, dataset="notes")
    # Then the heavy row is a row error and the other row is written
    assert status["status"] == "COMPLETED", status
    assert (status["result"]["failed"], status["result"]["written"]) == (1, 1)
    assert status["result"]["firstErrors"][0]["row"] == 2
    assert "400 KB item limit" in status["result"]["firstErrors"][0]["message"]


def test_duplicate_keys_in_one_file_are_row_errors_and_the_first_wins(importer):
    status = importer.run((HEADER + "a@x.io,First,1,1,1,\nb@x.io,B,1,1,1,\na@x.io,Second,2,2,0,\n").encode())
    assert status["result"]["failed"] == 1
    assert status["result"]["firstErrors"][0]["message"] == "duplicate key: the same record as row 2"
    assert importer.records()["a@x.io"]["name"] == "First"


def test_unknown_columns_are_reported_and_ignored(importer):
    status = importer.run(b"E-mail,Notes,AGE\na@x.io,hello,3\n")
    assert status["result"]["unknownColumns"] == ["Notes"]
    assert status["result"]["mapping"] == {"E-mail": "email", "AGE": "age"}
    assert importer.records()["a@x.io"] == {"email": "a@x.io", "age": 3}


def test_missing_required_columns_fail_the_job_naming_them(importer):
    status = importer.run(b"name,age\nAnn,3\n")
    assert status["status"] == "FAILED"
    assert "no column for required fields: email" in status["errorMessage"]
    assert importer.records() == {}


def test_an_explicit_mapping_is_used(importer):
    status = importer.run(b"Mail,Years\na@x.io,40\n", mapping={"Mail": "email", "Years": "age"})
    assert status["status"] == "COMPLETED"
    assert importer.records()["a@x.io"]["age"] == 40


@pytest.mark.parametrize(
    ("content", "file_name", "message"),
    [
        (b"%PDF-1.7 not a table", "report.csv", "PDF"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "old.xls", "damaged Excel 97-2003 (.xls)"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "renamed.csv", "damaged Excel 97-2003 (.xls)"),
        (b'{"email": "a@x.io"}\n', "data.csv", "JSON Lines"),
        (b"email\na@x.io\n", "data.xlsx", "not one"),
        (b"", "empty.csv", "empty"),
    ],
)
def test_a_file_that_is_not_what_it_claims_fails_with_a_clear_message(importer, content, file_name, message):
    fmt = {"old.xls": "csv"}.get(file_name)
    status = importer.run(content, file_name=file_name, **({"format": fmt} if fmt else {}))
    assert status["status"] == "FAILED"
    assert message in status["errorMessage"]


def test_tsv_gzip_and_json_lines_are_imported(importer):
    tsv = importer.run(b"email\tage\na@x.io\t1\n", file_name="a.tsv")
    gz = importer.run(gzip.compress(b"email,age\nb@x.io,2\n"), file_name="b.csv.gz")
    jsonl = importer.run(
        b'{"email": "c@x.io", "age": 3, "active": true}\n{"email": "d@x.io", "age": "x"}\n',
        file_name="c.jsonl",
    )
    gz_jsonl = importer.run(gzip.compress(b'{"email": "e@x.io"}\n'), file_name="e.jsonl.gz")
    assert [s["status"] for s in (tsv, gz, jsonl, gz_jsonl)] == ["COMPLETED"] * 4
    assert jsonl["result"]["failed"] == 1 and jsonl["result"]["firstErrors"][0]["row"] == 2
    records = importer.records()
    assert records["a@x.io"]["age"] == 1 and records["b@x.io"]["age"] == 2
    assert records["c@x.io"]["active"] is True and "e@x.io" in records


def test_an_excel_workbook_is_imported_with_real_types(importer, tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    # Given a workbook with typed cells and an empty row
    sheet.append(["Email", "Age", "Balance", "Active", "Signed up"])
    sheet.append(["a@x.io", 41, 2.5, True, date(2024, 3, 1)])
    sheet.append([None, None, None, None, None])
    sheet.append(["b@x.io", 7.0, 3, False, date(2023, 1, 31)])
    path = tmp_path / "people.xlsx"
    book.save(path)
    # When it is imported
    status = importer.run(path.read_bytes(), file_name="people.xlsx")
    # Then its two rows are stored with real types
    assert status["status"] == "COMPLETED", status
    assert status["totalRows"] == 2
    records = importer.records()
    assert records["a@x.io"] == {
        "email": "a@x.io",
        "age": 41,
        "balance": Decimal("2.5"),
        "active": True,
        "signedUp": "2024-03-01",
    }
    assert records["b@x.io"]["age"] == 7


def test_a_zip_bomb_workbook_fails_the_job_without_crashing(importer, tmp_path):
    import zipfile

    path = tmp_path / "bomb.xlsx"
    openpyxl.Workbook().save(path)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/media/pad.bin", b"\0" * (30 * 1024 * 1024))
    status = importer.run(path.read_bytes(), file_name="bomb.xlsx")
    assert status["status"] == "FAILED"
    assert "zip bomb" in status["errorMessage"]


# ---- write modes ---------------------------------------------------------------------------------


def seed(importer: Importer) -> None:
    importer.run((HEADER + "a@x.io,Ann,30,1,yes,2024-01-01\nb@x.io,Bob,40,2,no,2024-01-01\n").encode())


def test_upsert_counts_created_and_updated(importer):
    seed(importer)
    status = importer.run((HEADER + "a@x.io,Ann B,31,1,yes,2024-01-01\nc@x.io,Cat,1,1,1,\n").encode())
    assert (status["result"]["created"], status["result"]["updated"]) == (1, 1)
    assert importer.records()["a@x.io"]["name"] == "Ann B"


def test_insert_only_makes_existing_keys_row_errors(importer):
    seed(importer)
    status = importer.run(
        (HEADER + "a@x.io,Changed,1,1,1,\nc@x.io,Cat,1,1,1,\n").encode(), options={"mode": "insert"}
    )
    assert (status["result"]["created"], status["result"]["failed"]) == (1, 1)
    assert status["result"]["firstErrors"][0]["message"] == "a record with this key already exists"
    assert importer.records()["a@x.io"]["name"] == "Ann"


def test_merge_updates_only_the_mapped_fields(importer):
    seed(importer)
    status = importer.run(b"email,age\na@x.io,99\nz@x.io,5\n", options={"mode": "merge"})
    assert (status["result"]["created"], status["result"]["updated"]) == (1, 1)
    records = importer.records()
    assert records["a@x.io"] == {
        "email": "a@x.io",
        "name": "Ann",
        "age": 99,
        "balance": 1,
        "active": True,
        "signedUp": "2024-01-01",
    }
    assert records["z@x.io"] == {"email": "z@x.io", "age": 5}


def test_skip_unchanged_writes_nothing_for_equal_records(importer):
    seed(importer)
    status = importer.run(
        (HEADER + "a@x.io,Ann,30,1.00,yes,2024-01-01\nb@x.io,Bob,41,2,no,2024-01-01\n").encode(),
        options={"mode": "skip_unchanged"},
    )
    assert (status["result"]["skipped"], status["result"]["updated"], status["result"]["written"]) == (
        1,
        1,
        1,
    )


def test_a_dry_run_writes_nothing_then_commits_without_a_new_upload(importer, api):
    seed(importer)
    # Given stored records and a file that updates one, adds one and has one bad row
    content = (HEADER + "a@x.io,Ann B,30,1,yes,2024-01-01\nc@x.io,Cat,1,1,1,\nd@x.io,Dan,x,1,1,\n").encode()
    # When it is imported as a dry run, then it counts what would happen and writes nothing
    dry = importer.run(content, options={"dryRun": True})
    assert dry["status"] == "COMPLETED" and dry["result"]["dryRun"] is True
    assert (dry["result"]["created"], dry["result"]["updated"], dry["result"]["failed"]) == (1, 1, 1)
    assert dry["result"]["written"] == 0
    assert importer.records()["a@x.io"]["name"] == "Ann" and "c@x.io" not in importer.records()
    assert api.call("GET", f"/jobs/{dry['id']}/download", query={"file": "errors"}).status == 302
    # Commit it
    # When the dry run is committed, then the same file is imported for real
    committed = api.call("POST", f"/jobs/{dry['id']}/commit")
    assert committed.status == 201
    importer.drain()
    final = importer.status(committed.json()["job"]["id"])
    assert final["status"] == "COMPLETED" and final["result"]["written"] == 2
    assert importer.records()["a@x.io"]["name"] == "Ann B" and "c@x.io" in importer.records()
    # A real import cannot be committed, nor a dry run twice-removed
    assert api.call("POST", f"/jobs/{final['id']}/commit").status == 409


# ---- tolerance, limits -----------------------------------------------------------------------------


def test_beyond_max_errors_the_job_fails_saying_what_was_written(importer):
    good = "".join(f"u{i}@x.io,U,{i},1,1,\n" for i in range(5))
    bad = "".join(f"v{i}@x.io,V,bad,1,1,\n" for i in range(5))
    status = importer.run((HEADER + good + bad).encode(), options={"maxErrors": 2})
    assert status["status"] == "FAILED"
    assert "5 rows failed, more than maxErrors=2; 5 rows were written" in status["errorMessage"]
    assert status["result"]["written"] == len(importer.records()) == 5
    # The error report holds every failed row, up to where it stopped
    assert [row[0] for row in importer.error_report(status["id"])[1:]] == ["7", "8", "9", "10", "11"]


def test_beyond_max_error_rate_the_job_fails(importer):
    rows = "".join(f"u{i}@x.io,U,{'bad' if i % 4 == 0 else i % 100},1,1,\n" for i in range(200))
    status = importer.run((HEADER + rows).encode(), options={"maxErrorRate": 10})
    assert status["status"] == "FAILED"
    assert "25.0% of rows failed, more than maxErrorRate=10.0%" in status["errorMessage"]


def test_a_duplicate_upload_event_changes_nothing(importer):
    created = importer.create()
    key = created["upload"]["key"]
    boto3.client("s3").put_object(
        Bucket=importer.bucket, Key=key, Body=(HEADER + "a@x.io,A,1,1,1,\n").encode()
    )
    from tests.integration.importing import s3_event

    importer.invoke(s3_event(importer.bucket, key))
    first = importer.status(created["job"]["id"])
    importer.invoke(s3_event(importer.bucket, key))
    second = importer.status(created["job"]["id"])
    assert first == second and first["status"] == "COMPLETED"


def test_append_only_datasets_give_rows_deterministic_ids(api, put_dataset, stack):
    put_dataset(
        "events", fields=[{"name": "kind", "type": "string"}, {"name": "n", "type": "integer"}], keys=[]
    )
    importer = Importer(api, stack)
    content = b"kind,n\nclick,1\nclick,1\nview,2\n"
    first = importer.run(content, dataset="events")
    again = importer.run(content, dataset="events")
    records = importer.records(dataset="events")
    assert len(records) == 6
    assert sorted(records) == sorted(
        [f"{first['id']}#{n:010d}" for n in (2, 3, 4)] + [f"{again['id']}#{n:010d}" for n in (2, 3, 4)]
    )


def test_a_failed_import_can_be_retried_and_only_a_failed_one(importer, api):
    # Given an import whose file never arrived, run anyway (as after a lost upload): it fails clearly
    created = importer.create()
    from tests.integration.importing import sqs_event

    importer.invoke(sqs_event(json.dumps({"jobId": created["job"]["id"], "tenant": "acme"})))
    failed = importer.status(created["job"]["id"])
    assert failed["status"] == "FAILED" and "never uploaded, or has expired" in failed["errorMessage"]
    # When the file is uploaded late and the job retried, it completes
    boto3.client("s3").put_object(
        Bucket=importer.bucket, Key=created["upload"]["key"], Body=(HEADER + "r@x.io,Retry,1,1,1,\n").encode()
    )
    retried = api.call("POST", f"/jobs/{created['job']['id']}/retry")
    assert retried.status == 200 and retried.json()["job"]["status"] == "PENDING"
    importer.drain()
    assert importer.status(created["job"]["id"])["status"] == "COMPLETED"
    assert api.call("POST", f"/jobs/{created['job']['id']}/retry").status == 409


def test_jobs_are_counted_by_type_with_their_duration(importer, capsys):
    importer.run((HEADER + "m@x.io,M,1,1,1,\n").encode())
    emitted = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')
    ]
    names = {metric["Name"] for blob in emitted for metric in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"ImportsStarted", "ImportsCompleted", "ImportDurationSeconds", "RowsImported"} <= names


def test_a_file_named_like_a_form_variable_imports_under_its_exact_key(importer):
    # Given a job for a file whose name is S3's POST form variable
    status = importer.run(b"email,age\nz@x.io,5\n", file_name="${filename}", format="csv")
    # Then the upload landed at the job's exact key, was imported, and the job keeps the name
    assert status["status"] == "COMPLETED", status
    assert status["fileName"] == "${filename}"
    assert importer.records()["z@x.io"]["age"] == 5


def test_a_dry_run_whose_file_was_swapped_cannot_be_committed(importer, api):
    # Given a completed dry run
    checked = (HEADER + "a@x.io,Ann,30,1,yes,2024-01-01\n").encode()
    dry = importer.run(checked, options={"dryRun": True})
    assert dry["status"] == "COMPLETED"
    # When the upload is replaced afterwards (the form was still valid), and the dry run committed
    key = importer.s3.list_objects_v2(Bucket=importer.bucket, Prefix="uploads/")["Contents"][0]["Key"]
    importer.s3.put_object(Bucket=importer.bucket, Key=key, Body=(HEADER + "evil@x.io,Eve,1,1,1,\n").encode())
    response = api.call("POST", f"/jobs/{dry['id']}/commit")
    # Then the commit is refused, saying why, and nothing was imported
    assert response.status == 409, response.text
    assert "uploaded again after dry run" in response.json()["error"]["message"]
    importer.drain()
    assert importer.records() == {}


def test_a_commit_reads_exactly_the_version_its_dry_run_checked(importer, api):
    # Given a committed dry run whose file is swapped after the commit was accepted
    dry = importer.run((HEADER + "a@x.io,Ann,30,1,yes,2024-01-01\n").encode(), options={"dryRun": True})
    committed = api.call("POST", f"/jobs/{dry['id']}/commit")
    assert committed.status == 201
    key = importer.s3.list_objects_v2(Bucket=importer.bucket, Prefix="uploads/")["Contents"][0]["Key"]
    importer.s3.put_object(Bucket=importer.bucket, Key=key, Body=(HEADER + "evil@x.io,Eve,1,1,1,\n").encode())
    # When the commit runs
    importer.drain()
    final = importer.status(committed.json()["job"]["id"])
    # Then it imported the checked rows, not the swapped ones
    assert final["status"] == "COMPLETED", final
    assert set(importer.records()) == {"a@x.io"}


def test_a_replayed_create_never_re_signs_the_form_of_a_started_job(importer, api):
    # Given an import created with an idempotency key, uploaded and run to completion
    body = {"dataset": "customers", "fileName": "once.csv"}
    headers = {"Idempotency-Key": "import-once"}
    first = api.call("POST", "/imports", body=body, headers=headers)
    assert first.status == 201 and first.json()["upload"] is not None
    created = first.json()
    importer.s3.put_object(
        Bucket=importer.bucket,
        Key=created["upload"]["key"],
        Body=(HEADER + "a@x.io,Ann,30,1,yes,\n").encode(),
    )
    from tests.integration.importing import s3_event

    importer.invoke(s3_event(importer.bucket, created["upload"]["key"]))
    assert importer.status(created["job"]["id"])["status"] == "COMPLETED"
    # When the same request is replayed
    replay = api.call("POST", "/imports", body=body, headers=headers)
    # Then it answers with the same job, and no upload form
    assert replay.status == 201
    assert replay.json()["job"]["id"] == created["job"]["id"] and replay.json().get("upload") is None
