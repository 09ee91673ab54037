"""Every workbook format imports by the same rules: .xls, .xlsb and .ods give the same records, counts,
row errors and error report as the same sheet saved as .xlsx, whatever the file is named."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from tests.integration.conftest import CUSTOMERS
from tests.integration.importing import Importer
from tests.workbooks import grid, workbook_bytes

pytestmark = pytest.mark.usefixtures("importer_memory_ceiling")

PEOPLE = grid(
    [
        ["E-mail", "name", "age", "active", "signedUp", "balance"],
        ["a@x.io", "Ann", 30, True, date(2024, 5, 1), 12.5],
        [None],  # a blank row: later rows keep their sheet row numbers
        ["b@x.io", "Bob", "old", False, None, None],
        ["c@x.io", None, 200, None, "2023-02-03", -1],
        [None, "nobody", 5],
    ]
)


@pytest.fixture
def importer(api, put_dataset, stack) -> Importer:
    for kind in ("xlsx", "xls", "xlsb", "ods"):
        put_dataset(f"people_{kind}", **CUSTOMERS)
    return Importer(api, stack)


def outcome(importer: Importer, status: dict[str, Any], dataset: str) -> tuple[Any, ...]:
    result = status["result"]
    errors = sorted((e["row"], e.get("column"), e["message"]) for e in result["firstErrors"])
    return (
        status["status"],
        (result["written"], result["failed"]),
        errors,
        importer.error_report(status["id"]),
        importer.records(dataset=dataset),
    )


def test_every_workbook_format_imports_exactly_as_xlsx_does(importer):
    # Given the same sheet saved as .xlsx, .xls, .xlsb and .ods
    outcomes = {}
    for kind in ("xlsx", "xls", "xlsb", "ods"):
        content = workbook_bytes(kind, PEOPLE)
        # When each is imported
        status = importer.run(content, file_name=f"people.{kind}", dataset=f"people_{kind}")
        outcomes[kind] = outcome(importer, status, f"people_{kind}")
    # Then the .xlsx import is right, and every other format gives exactly the same
    state, counts, errors, report, records = outcomes["xlsx"]
    assert report[0][:3] == ["row", "error", "E-mail"] and [r[0] for r in report[1:]] == ["4", "5", "6"]
    assert (state, counts) == ("COMPLETED", (1, 3))
    assert [row for row, _, _ in errors] == [4, 5, 6]
    assert records["a@x.io"] == {
        "email": "a@x.io",
        "name": "Ann",
        "age": 30,
        "active": True,
        "signedUp": "2024-05-01",
        "balance": 12.5,
    }
    for kind in ("xls", "xlsb", "ods"):
        assert outcomes[kind] == outcomes["xlsx"], kind


@pytest.mark.parametrize("kind", ["xls", "xlsb", "ods"])
def test_a_workbook_is_read_by_its_content_whatever_its_name(importer, kind):
    # Given a workbook named as another kind of workbook, with no format given
    content = workbook_bytes(kind, PEOPLE)
    # When it is imported
    status = importer.run(content, file_name="people.xlsx", dataset=f"people_{kind}")
    # Then its content decides how it is read
    assert status["status"] == "COMPLETED", status
    assert (status["result"]["written"], status["result"]["failed"]) == (1, 3)
    assert set(importer.records(dataset=f"people_{kind}")) == {"a@x.io"}


@pytest.mark.parametrize("kind", ["xls", "xlsb", "ods"])
def test_a_workbook_sent_to_a_text_job_fails_naming_the_format_to_use(importer, kind):
    status = importer.run(
        workbook_bytes(kind, PEOPLE), file_name="people.csv", format="csv", dataset=f"people_{kind}"
    )
    assert status["status"] == "FAILED"
    assert status["errorMessage"] == (
        f"the file is a workbook (.{kind}), but the job expects csv; import it with format {kind}"
    )
    assert importer.records(dataset=f"people_{kind}") == {}


@pytest.mark.parametrize(
    ("kind", "far"), [("xls", (65535, 255)), ("xlsb", (1_048_575, 16_383)), ("ods", (200_000, 300))]
)
def test_a_sparse_workbook_of_any_format_fails_its_job_and_writes_nothing(importer, kind, far):
    # Given a tiny workbook with a header, one row, and one stray cell far away
    content = workbook_bytes(kind, {**grid([["E-mail", "age"], ["a@x.io", 1]]), far: "x"})
    assert len(content) < 20_000
    # When it is imported
    status = importer.run(content, file_name=f"sparse.{kind}", dataset=f"people_{kind}")
    # Then the job fails saying what to do, nothing is written, and the worker's memory held
    assert status["status"] == "FAILED"
    assert "more than the importer can give" in status["errorMessage"]
    assert "delete the stray cells far from the data" in status["errorMessage"]
    assert importer.records(dataset=f"people_{kind}") == {}
