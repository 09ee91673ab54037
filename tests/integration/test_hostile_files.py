"""Files from customers nobody controls: a hostile cell or line is that row's error, and the rest of
the file is written; options that could never read a file are refused when the job is created."""

from __future__ import annotations

import codecs
import io
import time

import pytest

from tests.bombs import xml_bomb, zip_bomb
from tests.integration.importing import Importer

# The importer runs in the test's process: each test here is held to its memory ceiling.
pytestmark = pytest.mark.usefixtures("importer_memory_ceiling")

DOCS = {
    "fields": [
        {"name": "id", "type": "string", "required": True},
        {"name": "n", "type": "integer"},
        {"name": "at", "type": "datetime"},
        {"name": "doc", "type": "json"},
    ],
    "keys": ["id"],
}


@pytest.fixture
def importer(api, put_dataset, stack) -> Importer:
    put_dataset(**DOCS)
    return Importer(api, stack)


def test_hostile_cells_are_row_errors_and_every_other_row_is_written(importer):
    # Given a CSV whose rows 3 to 6 each hold one value no field can store
    deep = "[" * 3000 + "]" * 3000
    lines = [
        "id,n,at,doc",
        'ok1,1,2024-01-01T00:00:00Z,"{""a"": 1}"',
        f"big,{'9' * 5000},,",
        "early,,0001-01-01T00:00:00+01:00,",
        f"deep,,,{deep}",
        f"wide,{'1' * 39},,",
        "ok2,2,,[1]",
    ]
    # When it is imported
    status = importer.run(("\n".join(lines) + "\n").encode())
    # Then the job completes, the good rows are written, and each bad one is one row error
    assert status["status"] == "COMPLETED", status
    assert (status["result"]["written"], status["result"]["failed"]) == (2, 4)
    assert set(importer.records(dataset="customers")) == {"ok1", "ok2"}
    errors = {(e["row"], e["column"]): e["message"] for e in status["result"]["firstErrors"]}
    assert errors == {
        (3, "n"): "n has more than 38 digits, more than DynamoDB can store",
        (4, "at"): "at is outside the range of dates (years 1 to 9999 in UTC)",
        (5, "doc"): "doc is nested more than 32 levels deep, more than DynamoDB allows",
        (6, "n"): "n has more than 38 digits, more than DynamoDB can store",
    }
    report = importer.error_report(status["id"])
    assert [row[0] for row in report[1:]] == ["3", "4", "5", "6"]


def test_hostile_json_lines_are_row_errors(importer):
    deep = "[" * 3000 + "]" * 3000
    content = (
        '{"id": "a", "n": 1}\n' + deep + "\n" + '{"id": "b", "n": ' + "9" * 5000 + "}\n" + '{"id": "c"}\n'
    )
    status = importer.run(content.encode(), file_name="docs.jsonl")
    assert status["status"] == "COMPLETED", status
    assert (status["result"]["written"], status["result"]["failed"]) == (2, 2)
    assert set(importer.records(dataset="customers")) == {"a", "c"}


@pytest.mark.parametrize("encoding", ["rot13", "zlib_codec", "no-such-encoding"])
def test_an_encoding_that_is_no_text_encoding_is_a_422_at_creation(importer, encoding):
    response = importer.api.call(
        "POST",
        "/imports",
        body={"dataset": "customers", "fileName": "a.csv", "options": {"encoding": encoding}},
    )
    assert response.status == 422
    assert "is not a text encoding" in response.text and "utf-8" in response.text


def test_the_error_report_neutralises_formulas_as_csv_exports_do(importer):
    # Given a file whose failing row holds formulas in its cells and in a header name
    content = "id,n,=cmd|' /C calc'!A0\nok,1,x\n=HYPERLINK(\"http://evil\"),not-a-number,@SUM(1)\n"
    # When it is imported
    status = importer.run(content.encode())
    # Then the error report's header, message and cells are all neutralised
    assert status["status"] == "COMPLETED" and status["result"]["failed"] == 1
    report = importer.error_report(status["id"])
    assert report[0] == ["row", "error", "id", "n", "'=cmd|' /C calc'!A0"]
    assert report[1][0] == "3" and report[1][1] == "n: n is not an integer"
    assert report[1][2:] == ['\'=HYPERLINK("http://evil")', "not-a-number", "'@SUM(1)"]


def memory_mb(field: str) -> int:
    """This process's VmRSS (now) or VmHWM (peak since the last reset), in MB."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field)) // 1024


def test_a_sparse_workbook_fails_its_job_without_exhausting_the_worker(importer, tmp_path):
    import openpyxl

    # Given a 1.6 KB workbook with a cell at A1 and one at the sheet's last cell
    book = openpyxl.Workbook()
    book.active["A1"], book.active["B1"], book.active["XFD1048576"] = "id", "n", "x"
    path = tmp_path / "sparse.xlsx"
    book.save(path)
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # the peak starts afresh: what earlier tests allocated does not count
    before = memory_mb("VmRSS")
    # When it is imported
    status = importer.run(path.read_bytes(), file_name="sparse.xlsx")
    # Then the job fails saying why, and the worker's memory barely moved
    assert status["status"] == "FAILED"
    assert "span A1:XFD1048576 (17,179,869,184 cells)" in status["errorMessage"]
    grown_mb = memory_mb("VmHWM") - before
    assert grown_mb < 100, f"the worker grew by {grown_mb:.0f} MB"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        # classic Mac line endings, with a CR inside a quoted field
        (b'id,n,doc\r1,1,"[1,\r2]"\r2,2,\r', {"1", "2"}),
        # whitespace inside the header's quoted names does not fool the delimiter sniffer
        (b'"id","n","doc\tjson"\n3,3,\n4,4,\n', {"3", "4"}),
    ],
)
def test_real_world_csv_quirks_import(importer, content, expected):
    status = importer.run(content)
    assert status["status"] == "COMPLETED", status
    assert set(importer.records(dataset="customers")) == expected


def test_a_file_whose_header_matches_no_field_fails_naming_both_sides(importer):
    status = importer.run(b"foo,bar\n1,2\n3,4\n")
    assert status["status"] == "FAILED"
    assert status["errorMessage"] == (
        "none of the file's columns (foo, bar) matches a field of dataset 'customers' (id, n, at, doc); "
        "rename the headers or give a mapping"
    )
    assert importer.records(dataset="customers") == {}


def test_unknown_json_lines_keys_are_counted_with_a_bounded_sample(importer):
    # Given JSON Lines whose every line after the first carries keys of its own
    lines = ['{"id": "r0", "n": 0}'] + [
        f'{{"id": "r{i}", "n": {i}, "k{i}": {i}, "x": 1}}' for i in range(1, 3001)
    ]
    # When it is imported
    status = importer.run(("\n".join(lines) + "\n").encode(), file_name="wide.jsonl")
    # Then every row is written, the unknown keys are counted, and only 20 names are kept
    assert status["status"] == "COMPLETED", status
    result = status["result"]
    assert result["written"] == 3001
    assert result["unknownKeys"] == 6000
    assert len(result["unknownKeySample"]) == 20 and result["unknownKeySample"][:2] == ["k1", "x"]


BLANK_LINES = 5_000_000


def blank_line_bomb() -> bytes:
    """A gzip of a header, 5M blank lines and one row: a few KB that inflate to 5 MB of nothing."""
    import gzip

    return gzip.compress(b"id,n\n" + b"\n" * BLANK_LINES + b"last,1\n")


def test_blank_lines_still_heartbeat_and_the_row_after_them_is_written(importer, stack):
    from impex import wiring
    from impex.settings.workers import ImporterSettings
    from tests.fakes import HookedJobStore

    # Given a gzip of blank lines with one row at the end, and progress due every 0.1 s
    created = importer.create(file_name="blank.csv.gz")
    importer.s3.put_object(Bucket=importer.bucket, Key=created["upload"]["key"], Body=blank_line_bomb())
    updates: list[dict] = []
    jobs = HookedJobStore(stack.physical["JobsTable"], on_progress=updates.append)
    pipeline = wiring.import_pipeline(
        ImporterSettings.from_environment(progress_every_seconds=0.1), jobs=jobs
    )
    # When it is imported
    pipeline.run(jobs.claim(created["job"]["id"]))
    # Then progress was recorded while the blank lines streamed past, and the last row was written
    assert len(updates) >= 2, updates
    assert [u["checkpoint"]["last_row"] for u in updates] == sorted(
        u["checkpoint"]["last_row"] for u in updates
    )
    assert importer.status(created["job"]["id"])["status"] == "COMPLETED"
    assert set(importer.records(dataset="customers")) == {"last"}


def test_a_cancel_during_blank_lines_stops_the_job_at_once_and_writes_nothing_after(importer, stack):
    import time

    from impex import wiring
    from impex.settings.workers import ImporterSettings
    from tests.fakes import HookedJobStore

    # Given the blank-line bomb, and a cancel that lands at the first heartbeat
    created = importer.create(file_name="blank.csv.gz")
    importer.s3.put_object(Bucket=importer.bucket, Key=created["upload"]["key"], Body=blank_line_bomb())
    cancelled_at: list[float] = []

    def cancel_once(_: dict) -> None:
        if not cancelled_at:
            importer.api.call("POST", f"/jobs/{created['job']['id']}/cancel")
            cancelled_at.append(time.monotonic())

    jobs = HookedJobStore(stack.physical["JobsTable"], on_progress=cancel_once)
    pipeline = wiring.import_pipeline(
        ImporterSettings.from_environment(progress_every_seconds=0.1), jobs=jobs
    )
    # When it runs
    pipeline.run(jobs.claim(created["job"]["id"]))
    stopped_after = time.monotonic() - cancelled_at[0]
    # Then it stopped within moments of the cancel, before the row after the blank lines
    assert stopped_after < 2, stopped_after
    assert importer.status(created["job"]["id"])["status"] == "CANCELLED"
    assert importer.records(dataset="customers") == {}


def declared_dimension_workbook() -> bytes:
    """Two real rows under a declared dimension of the whole sheet (16384 columns by 1M rows)."""
    import re
    import zipfile

    import openpyxl

    book = openpyxl.Workbook()
    book.active["A1"], book.active["B1"], book.active["A2"], book.active["B2"] = "id", "n", "d1", 1
    plain, forged = io.BytesIO(), io.BytesIO()
    book.save(plain)
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(forged, "w", zipfile.ZIP_DEFLATED) as out:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:XFD1048576"', data)
            out.writestr(item, data)
    return forged.getvalue()


def long_line(encoding: str) -> bytes:
    """A good first row, then a line with no line break past the cap: 16 MB read raw (UTF-8 and
    single-byte encodings), 4 million characters once decoded (UTF-16 and UTF-32)."""
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-32-le": codecs.BOM_UTF32_LE}.get(encoding, b"")
    characters = 5_000_000 if bom else 17_000_000
    return bom + ("id,n\nok,1\n" + "x" * characters).encode(encoding)


@pytest.mark.parametrize(
    ("file_name", "make", "message"),
    [
        ("bomb.xlsx", zip_bomb, "a possible zip bomb"),
        ("lol.xlsx", xml_bomb, "declares XML entities"),
        ("long8.csv", lambda: long_line("utf-8"), "longer than"),
        ("long16.csv", lambda: long_line("utf-16-le"), "longer than"),
        ("long32.csv", lambda: long_line("utf-32-le"), "longer than"),
        ("long1252.csv", lambda: long_line("cp1252"), "longer than"),
    ],
)
def test_a_bomb_fails_its_job_saying_why_and_writes_nothing(importer, file_name, make, message):
    # Given a file built to exhaust a reader's memory
    content = make()
    # When it is imported
    status = importer.run(content, file_name=file_name)
    # Then the job fails with the reason, no row is written or reported, and memory held (the fixture)
    assert status["status"] == "FAILED", status
    assert message in status["errorMessage"], status["errorMessage"]
    assert importer.records(dataset="customers") == {}
    result = status.get("result") or {}
    assert result.get("written", 0) == 0 and result.get("firstErrors", []) == []


def test_a_declared_dimension_of_the_whole_sheet_costs_nothing(importer):
    # Given two real rows under a declared 16384-column, million-row dimension
    status = importer.run(declared_dimension_workbook(), file_name="declared.xlsx")
    # Then the row is imported like any other, with no row errors
    assert status["status"] == "COMPLETED", status
    assert (status["result"]["written"], status["result"]["failed"]) == (1, 0)
    assert status["result"]["firstErrors"] == []
    assert importer.records(dataset="customers") == {"d1": {"id": "d1", "n": 1}}


def test_a_pathological_pattern_is_one_fast_row_error_per_cell(api, put_dataset, stack):
    # Given a dataset whose pattern backtracks exponentially in a backtracking engine
    put_dataset(
        "codes",
        fields=[
            {"name": "id", "type": "string", "required": True},
            {"name": "code", "type": "string", "constraints": {"pattern": "(a+)+$"}},
        ],
        keys=["id"],
    )
    importer = Importer(api, stack)
    rows = [f"bad{i},{'a' * 5000}!" for i in range(200)] + ["good,aaaa"]
    started = time.perf_counter()
    # When 200 cells that take such an engine forever are imported
    status = importer.run(
        ("id,code\n" + "\n".join(rows) + "\n").encode(), file_name="codes.csv", dataset="codes"
    )
    # Then each is one row error, the good row is written, and the whole import took seconds
    assert status["status"] == "COMPLETED", status
    assert (status["result"]["written"], status["result"]["failed"]) == (1, 200)
    assert {e["column"] for e in status["result"]["firstErrors"]} == {"code"}
    assert set(importer.records(dataset="codes")) == {"good"}
    assert time.perf_counter() - started < 30
