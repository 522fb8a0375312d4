"""Exceptions of the training package; each carries a stable `code`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn

from cdat.errors import CdatError


class TrainingError(CdatError):
    code = "training_error"


class DatasetConfigError(TrainingError):
    """A dataset config file is malformed; the message names the file and the field."""

    code = "invalid_dataset_config"

    def __init__(self, file: object, field: str, problem: str) -> None:
        super().__init__(f"{file}: field '{field}': {problem}")
        self.field = field


class DatasetError(TrainingError):
    """The data a config points at is missing or does not match the config."""

    code = "invalid_dataset"


class PromotionRefused(TrainingError):
    code = "promotion_refused"


def run_script(
    main: Callable[[argparse.Namespace], int], parser: argparse.ArgumentParser
) -> NoReturn:
    """`python -m training.X`: exit with `main`'s status; a TrainingError, or any project
    error (a model file that cannot be served, a registry fault), is one error line and
    status 2, as `cdat` gives it, never a traceback."""
    try:
        sys.exit(main(parser.parse_args()))
    except CdatError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        sys.exit(2)
