"""Garbage collection is tuned while jobs run and put back when the last one ends."""

from __future__ import annotations

import gc

import pytest

from impex.pipelines.common import BulkAllocations


def test_collections_are_tuned_while_a_job_runs_and_restored_after():
    # Given the interpreter's own settings
    before = gc.get_threshold()
    tuning = BulkAllocations()
    # When a job runs
    with tuning:
        # Then what existed before is frozen and the youngest generation is collected less often
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (BulkAllocations.YOUNGEST_THRESHOLD, *before[1:])
    # And afterwards everything is as it was
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_overlapping_jobs_restore_the_settings_only_when_the_last_one_ends():
    before = gc.get_threshold()
    tuning = BulkAllocations()
    # Given two jobs that overlap
    tuning.__enter__()
    tuning.__enter__()
    # When the first one ends
    tuning.__exit__(None, None, None)
    # Then the second still runs tuned
    assert gc.get_threshold()[0] == BulkAllocations.YOUNGEST_THRESHOLD
    # And when it ends too, the settings come back
    tuning.__exit__(None, None, None)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_a_failing_job_restores_the_settings():
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), BulkAllocations():
        raise RuntimeError("the job failed")
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
