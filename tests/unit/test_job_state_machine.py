"""The job state machine: which status changes are legal."""

import pytest

from impex.jobs.model import ACTIVE_STATUSES, TERMINAL_STATUSES, JobStatus, can_transition

LEGAL = {
    (JobStatus.PENDING, JobStatus.PROCESSING),
    (JobStatus.PENDING, JobStatus.CANCELLED),
    (JobStatus.PENDING, JobStatus.FAILED),
    (JobStatus.PROCESSING, JobStatus.COMPLETED),
    (JobStatus.PROCESSING, JobStatus.FAILED),
    (JobStatus.PROCESSING, JobStatus.CANCELLED),
    (JobStatus.PROCESSING, JobStatus.PENDING),  # requeue from a checkpoint
    (JobStatus.FAILED, JobStatus.PENDING),  # retry
}


def test_the_five_statuses_are_the_seeds():
    assert {s.value for s in JobStatus} == {"PENDING", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED"}


def test_every_status_is_either_active_or_terminal():
    assert set(JobStatus) == ACTIVE_STATUSES | TERMINAL_STATUSES
    assert not ACTIVE_STATUSES & TERMINAL_STATUSES


@pytest.mark.parametrize("current", list(JobStatus))
@pytest.mark.parametrize("target", list(JobStatus))
def test_only_the_listed_transitions_are_legal(current, target):
    # Given a job in `current`, When it is asked to become `target`, Then only the legal pairs pass
    assert can_transition(current, target) == ((current, target) in LEGAL)


def test_completed_and_cancelled_jobs_never_move_again():
    for target in JobStatus:
        assert not can_transition(JobStatus.COMPLETED, target)
        assert not can_transition(JobStatus.CANCELLED, target)
