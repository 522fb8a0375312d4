"""`cdat train --help`, and every other `cdat` command, says what each option does."""

from __future__ import annotations

import argparse

import pytest

from mobile_api.cli import main
from mobile_api.cli.commands import get_args_parser as get_cdat_parser
from training.train import get_args_parser


def test_every_train_option_has_help_text() -> None:
    # given the training parser (also behind `cdat train`)
    options = [a for a in get_args_parser()._actions if a.option_strings and a.dest != "help"]
    # then each option, hyperparameters included, says what it does
    unexplained = [a.option_strings[0] for a in options if not (a.help or "").strip()]
    assert options and unexplained == []


def test_cdat_train_help_shows_the_help_and_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["train", "--help"])
    assert stop.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "mixed precision on a GPU" in text
    assert "initial learning rate (default: 0.01)" in text


def _unexplained(parser: argparse.ArgumentParser, path: str) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                missing += _unexplained(sub, f"{path} {name}")
        elif action.dest != "help" and not (action.help or "").strip():
            missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_option_of_every_cdat_command_has_help_text() -> None:
    assert _unexplained(get_cdat_parser(), "cdat") == []
