"""Typed domain errors map to HTTP statuses by class; the body has one shape."""

import json

import pytest

from impex.api.errors import error_response, http_status_for
from impex.errors import (
    BadRequest,
    Conflict,
    DatasetConflict,
    DatasetNotFound,
    FileNotReady,
    IllegalTransition,
    ImpexError,
    InvalidInput,
    JobNotFound,
    Unauthenticated,
)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (BadRequest("x"), 400),
        (InvalidInput("x"), 422),
        (Unauthenticated("x"), 401),
        (JobNotFound("x"), 404),
        (DatasetNotFound("x"), 404),
        (FileNotReady("x"), 404),
        (Conflict("x"), 409),
        (IllegalTransition("x"), 409),
        (DatasetConflict("x"), 409),
        (ImpexError("x"), 500),
    ],
)
def test_each_error_class_has_its_status(error, status):
    assert http_status_for(error) == status


def test_the_message_does_not_decide_the_status():
    # A message that mentions "not found" does not make a Conflict a 404
    assert http_status_for(Conflict("job not found in state X")) == 409


def test_the_error_body_shape():
    response = error_response(http_status_for(JobNotFound("gone")), "job_not_found", "gone", {"id": 1})
    assert response.status_code == 404
    assert json.loads(response.body) == {
        "error": {"code": "job_not_found", "message": "gone", "details": {"id": 1}}
    }
