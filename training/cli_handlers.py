"""How `cdat`'s training subcommands are called: bad input becomes one error line, and a
script's heavy imports wait until its command runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from training.errors import TrainingError

Handler = Callable[[argparse.Namespace], int]


def guarded(func: Handler) -> Handler:
    """Bad files and values become a CdatError, which every `cdat` front end prints as
    one line; anything else is a bug and keeps its traceback."""

    def handler(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (OSError, ValueError, KeyError) as exc:
            raise TrainingError(f"{type(exc).__name__}: {exc}") from exc

    return handler


def lazy(module: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        import importlib

        result: int = importlib.import_module(module).main(args)
        return result

    return guarded(handler)


def parents(module: str) -> list[argparse.ArgumentParser]:
    """The training scripts' own parsers (argparse only; their heavy imports are lazy)."""
    import importlib

    return [importlib.import_module(module).get_args_parser(add_help=False)]
