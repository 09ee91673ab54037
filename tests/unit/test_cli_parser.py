"""The CLI's parser: every option explains itself, and global options go before or after the subcommand."""

from __future__ import annotations

import argparse

import pytest

from impex.cli import _parser, parse_filter


def every_parser(parser: argparse.ArgumentParser, path: str = "impex"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from every_parser(child, f"{path} {name}")


def test_every_option_and_argument_has_help_text():
    missing = [
        f"{path}: {action.option_strings or action.dest}"
        for path, parser in every_parser(_parser())
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction) and not action.help
    ]
    assert missing == []


@pytest.mark.parametrize(
    "argv",
    [
        ["--json", "--url", "http://x/api", "jobs", "list"],
        ["jobs", "--json", "--url", "http://x/api", "list"],
        ["jobs", "list", "--json", "--url", "http://x/api"],
    ],
)
def test_global_options_work_before_or_after_the_subcommand(argv):
    args = _parser().parse_args(argv)
    assert args.json is True and args.url == "http://x/api" and args.jobs_command == "list"


def test_global_options_keep_their_defaults_when_not_given(monkeypatch):
    monkeypatch.setenv("IMPEX_URL", "http://from-env/api")
    args = _parser().parse_args(["datasets", "list"])
    assert args.json is False and args.url == "http://from-env/api"


def test_the_cli_covers_the_api():
    commands = {path for path, _ in every_parser(_parser())}
    for command in (
        "datasets get",
        "datasets put",
        "datasets delete",
        "datasets list",
        "import",
        "export",
        "jobs list",
        "jobs status",
        "jobs watch",
        "jobs cancel",
        "jobs retry",
        "jobs commit",
        "jobs download",
    ):
        assert f"impex {command}" in commands


def test_filters_read_as_the_api_takes_them():
    assert parse_filter("orders>=10") == {"field": "orders", "op": "gte", "value": 10}
    assert parse_filter("name~Jo") == {"field": "name", "op": "begins_with", "value": "Jo"}
