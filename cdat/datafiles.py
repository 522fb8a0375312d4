"""Loading insurer-editable YAML data files with errors that point at a line.

Catalogs, repair rules and the triage policy are data an insurer edits by hand;
a typo must fail at start-up with the file, the line and the field named, not
deep inside an estimate. YAML is parsed twice: once into plain Python for the
pydantic schema, once into the node tree for the line of every key.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from cdat.errors import ConfigurationError

Loc = tuple[str, ...]
LineMap = dict[Loc, int]
M = TypeVar("M", bound=BaseModel)


class DataFileError(ConfigurationError):
    """A catalog, rule or policy file is malformed; names file, line and field."""

    code = "invalid_data_file"

    def __init__(self, file: Path, line: int | None, field: str, problem: str) -> None:
        where = f"{file}" + (f", line {line}" if line else "")
        super().__init__(f"{where}, field '{field or '<document>'}': {problem}")
        self.file = file
        self.line = line
        self.field = field
        self.problem = problem


class DataFile:
    """A parsed YAML file plus the line of every key, for error messages."""

    def __init__(self, path: Path, data: Any, lines: LineMap) -> None:
        self.path = path
        self.data = data
        self.lines = lines

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """Line of the deepest key of `loc` present in the file (1-based)."""
        key = tuple(str(part) for part in loc)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), None)

    def error(self, loc: Sequence[str | int], problem: str) -> DataFileError:
        field = ".".join(str(part) for part in loc)
        return DataFileError(self.path, self.line_of(loc), field, problem)


def read_data_file(path: Path) -> DataFile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataFileError(path, None, "", f"cannot read: {exc.strerror or exc}") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise DataFileError(path, line, "", f"not valid YAML: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise DataFileError(path, None, "", f"not valid YAML: {exc}") from exc
    lines: LineMap = {}
    if node is not None:
        _collect_lines(node, (), lines)
    return DataFile(path, data, lines)


def _collect_lines(node: yaml.Node, loc: Loc, lines: LineMap) -> None:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*loc, str(key_node.value))
            lines[child] = key_node.start_mark.line + 1
            _collect_lines(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _collect_lines(item, (*loc, str(index)), lines)


def parse_model(model: type[M], file: DataFile) -> M:
    """Validate a data file against its schema; the first error names its line."""
    if not isinstance(file.data, dict):
        raise file.error((), "expected a mapping at the top level")
    try:
        return model.model_validate(file.data)
    except ValidationError as exc:
        errors = exc.errors()
        # An error at a key the file spells out (a typo'd field) beats one about a key
        # that is missing, which can only point at the enclosing block.
        first = min(errors, key=lambda e: tuple(str(p) for p in e["loc"]) not in file.lines)
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise file.error(first["loc"], first["msg"] + more) from exc


def load_model(model: type[M], path: Path) -> tuple[M, DataFile]:
    file = read_data_file(path)
    return parse_model(model, file), file
