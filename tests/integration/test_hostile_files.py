"""Files from customers nobody controls: a hostile cell or line is that row's error, and the rest of
the file is written; options that could never read a file are refused when the job is created."""

from __future__ import annotations

import pytest

from tests.integration.importing import Importer

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


def test_a_sparse_workbook_fails_its_job_without_exhausting_the_worker(importer, tmp_path):
    import resource

    import openpyxl

    # Given a 1.6 KB workbook with a cell at A1 and one at the sheet's last cell
    book = openpyxl.Workbook()
    book.active["A1"], book.active["B1"], book.active["XFD1048576"] = "id", "n", "x"
    path = tmp_path / "sparse.xlsx"
    book.save(path)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # When it is imported
    status = importer.run(path.read_bytes(), file_name="sparse.xlsx")
    # Then the job fails saying why, and the worker's memory barely moved
    assert status["status"] == "FAILED"
    assert "span A1:XFD1048576 (17,179,869,184 cells)" in status["errorMessage"]
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
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
