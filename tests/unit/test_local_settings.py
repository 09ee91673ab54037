"""An unusable IMPEX_LOCAL_* setting ends `impex local` at once with a message naming it."""

from __future__ import annotations

import argparse

import pytest

from impex.local import cli


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("IMPEX_LOCAL_WORKERS", "process", "IMPEX_LOCAL_WORKERS is 'process': use threads or processes"),
        ("IMPEX_LOCAL_CONCURRENCY", "four", "IMPEX_LOCAL_CONCURRENCY is 'four': use a whole number"),
        ("IMPEX_LOCAL_PORT", "3000.5", "IMPEX_LOCAL_PORT is '3000.5': use a whole number"),
        ("IMPEX_LOCAL_SWEEP_SECONDS", "soon", "IMPEX_LOCAL_SWEEP_SECONDS is 'soon': use a number"),
    ],
)
def test_an_unusable_local_setting_stops_serve_with_a_message(monkeypatch, capsys, variable, value, expected):
    # Given a mistyped setting
    monkeypatch.setenv(variable, value)
    # When the local stack is asked to start
    code = cli.run(argparse.Namespace(local_command="serve", port=None, tenant="local"))
    # Then it stops before starting anything, saying which variable and what it takes
    assert code == 2
    assert capsys.readouterr().err.strip() == f"impex local: {expected}"
