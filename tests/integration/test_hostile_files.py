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
