"""The `cdat` command line: `commands` parses and dispatches; the other modules are commands."""

from mobile_api.cli.commands import main

__all__ = ["main"]
