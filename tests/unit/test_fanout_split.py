"""The splitting pass's two exact promises, as property tests: a chunk file gives back exactly the
rows the reader handed over (row numbers, cells and their JSON types, unreadable lines), and the
router reads a row's key exactly as the converter would, so every occurrence of a key goes to one
chunk and the first occurrence in the file wins there as it does for one worker."""

from __future__ import annotations

import gzip
import io
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from impex.datasets.mapping import RowConverter, map_columns
from impex.datasets.model import Dataset
from impex.datasets.records import RecordLayout
from impex.formats.chunks import ChunkEncoder, chunk_rows, encode_row
from impex.formats.columns import SourceRow
from impex.formats.errors import FileProblem
from impex.formats.jsonlines import bad_line, bad_line_reason
from impex.pipelines.fanout import row_router

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types (NaN equal to NaN; 1 and 1.0 and True told apart)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def round_trip(rows: list[SourceRow], segment_bytes: int = 1024) -> list[SourceRow]:
    encoder = ChunkEncoder(segment_bytes)
    segments = [segment for row in rows if (segment := encoder.add(row)) is not None]
    if (last := encoder.finish()) is not None:
        segments.append(last)
    return list(chunk_rows(io.BytesIO(segment) for segment in segments))


@PROPERTY
@given(
    st.lists(
        st.one_of(
            st.lists(json_values, max_size=6),  # JSON Lines cells
            st.lists(st.text(), max_size=6),  # CSV cells
            st.text(min_size=1).map(lambda reason: [bad_line(reason)]),
        ),
        max_size=40,
    )
)
def test_a_chunk_gives_back_exactly_the_rows_it_was_given(cell_lists):
    # Given rows as a reader hands them over (numbers with gaps, as blank lines leave them)
    rows = [SourceRow(3 + 2 * i, cells, None) for i, cells in enumerate(cell_lists)]
    # When they are written to a chunk, in small segments, and read back
    back = round_trip(rows)
    # Then every row number, cell value and type, and unreadable line is the same
    assert [row.number for row in back] == [row.number for row in rows]
    for original, read in zip(rows, back, strict=True):
        reason = bad_line_reason(original.cells)
        if reason is not None:
            assert bad_line_reason(read.cells) == reason
        else:
            assert same(read.cells, original.cells), (original.cells, read.cells)


def test_values_orjson_cannot_keep_go_through_the_standard_library():
    # Given cells orjson would change: a 90-bit integer (it reads it back as a float), NaN and
    # infinities (it writes null), a lone surrogate
    rows = [SourceRow(2, [2**90, float("nan"), float("-inf"), "\udc80", {"deep": [2**70]}], None)]
    # When they round-trip through a chunk
    (back,) = round_trip(rows)
    # Then they come back as they were
    assert back.cells[0] == 2**90 and isinstance(back.cells[0], int)
    assert math.isnan(back.cells[1]) and back.cells[2] == float("-inf")
    assert back.cells[3] == "\udc80" and back.cells[4] == {"deep": [2**70]}
    assert encode_row(rows[0]).startswith(b"~")


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # cut short
        lambda data: data[:20] + bytes(b ^ 0xFF for b in data[20:40]) + data[40:],  # corrupt
        lambda data: gzip.compress(b'[1, "a"]\n{"no": "row"}\n'),  # not a chunk line
    ],
)
def test_a_damaged_chunk_is_a_file_problem_not_a_crash(damage):
    # Given a chunk segment that was damaged
    encoder = ChunkEncoder()
    for number in range(2, 500):
        encoder.add(SourceRow(number, [f"cell {number}", "x" * (number % 50)], None))
    data = encoder.finish()
    assert data is not None
    # When it is read, then the job is told what went wrong
    with pytest.raises(FileProblem, match="chunk"):
        list(chunk_rows([io.BytesIO(damage(data))]))


def people(keys: list[str]) -> Dataset:
    return Dataset.model_validate(
        {
            "tenant": "acme",
            "name": "people",
            "createdAt": "x",
            "updatedAt": "x",
            "fields": [
                {"name": "email", "type": "string", "required": True},
                {"name": "age", "type": "integer", "required": "age" in keys},
                {"name": "joined", "type": "date", "default": "2024-01-01", "required": "joined" in keys},
                {"name": "score", "type": "decimal", "required": "score" in keys},
            ],
            "keys": keys,
        }
    )


HEADER = ["email", "age", "joined", "score"]
cells = st.one_of(
    st.sampled_from(["", " ", "a@x.io", "A@x.io", "7", "07", "7.0", "1e3", "-0", "2024-01-01", "1/2/2024"]),
    st.text(max_size=6),
)


@PROPERTY
@given(
    st.sampled_from([["email"], ["email", "age"], ["age", "joined"], ["score"]]),
    st.lists(st.lists(cells, min_size=3, max_size=5), min_size=1, max_size=30),
)
def test_the_router_reads_keys_exactly_as_the_converter_does(keys, raw_rows):
    # Given a dataset keyed on some fields, and rows of awkward cells (some ragged)
    dataset = people(keys)
    mapping = map_columns(HEADER, dataset)
    converter = RowConverter(dataset, HEADER, mapping)
    layout = RecordLayout.for_dataset(dataset, records_table="records", external_tables={})
    read_keys = converter.key_reader(keys)
    route = row_router(layout, converter, 5)
    chunk_of_identity: dict[str, int] = {}
    for number, row_cells in enumerate(raw_rows, start=2):
        # When the router reads a row's key and the converter converts the row
        record, issues = converter.convert(row_cells)
        key_values = read_keys(row_cells)
        row = SourceRow(number, row_cells, None)
        if not issues:
            # Then a row the converter accepts has exactly the key values the router read
            assert key_values == {name: record[name] for name in keys}
            identity = layout.identity(record, "job", number)
            # And every occurrence of a key goes to the same chunk
            assert chunk_of_identity.setdefault(identity, route(row)) == route(row)
        elif key_values is None:
            assert 0 <= route(row) < 5  # a row error, whichever chunk has it


def test_a_split_carries_on_with_the_chunk_count_it_began_with():
    # Given a split that handed over with four chunks, and FanOutWorkers changed to 8 since
    from impex.jobs.model import Job
    from impex.pipelines.fanout import FanOutImports, FanOutLimits

    fanout = FanOutImports(jobs=None, files=None, queues=None, limits=FanOutLimits(1, workers=8))  # type: ignore[arg-type]
    job = Job.model_validate(
        {
            "id": "J",
            "type": "import",
            "tenant": "t",
            "dataset": "d",
            "format": "csv",
            "createdAt": "x",
            "updatedAt": "x",
            "checkpoint": {"lastRow": 9, "split": {"segments": [1, 1, 0, 1], "rows": [3, 2, 0, 4]}},
        }
    )
    # Then its continuation routes rows over the same four chunks (and a new job over eight)
    assert fanout.chunk_count(job) == 4
    assert fanout.chunk_count(job.model_copy(update={"checkpoint": None})) == 8
