"""A stage served beside a model, as the model's registry entry stores it: its file, the
file's checksum, and the rule it is served with (the part-family stage of a part model,
inference/part_family.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from inference.errors import ModelUnavailable


class StageRule(Protocol):
    def to_record(self) -> dict[str, Any]: ...


Rule = TypeVar("Rule", bound=StageRule)


@dataclass(frozen=True)
class StageRecord(Generic[Rule]):
    file: str
    """The stage's .onnx, relative to the model directory."""
    sha256: str
    rule: Rule

    def to_record(self) -> dict[str, Any]:
        return {"file": self.file, "sha256": self.sha256, "rule": self.rule.to_record()}

    @classmethod
    def from_record(
        cls, record: Mapping[str, Any], read_rule: Callable[[Mapping[str, Any]], Rule]
    ) -> StageRecord[Rule]:
        """The one reader of a stored stage (`read_rule` reads its rule); an unknown or
        missing field is a ValueError."""
        unknown = sorted(set(record) - {"file", "sha256", "rule"})
        if unknown:
            raise ValueError(f"stage: unknown field(s) {', '.join(unknown)}")
        missing = [k for k in ("file", "sha256", "rule") if k not in record]
        if missing:
            raise ValueError(f"stage: {', '.join(missing)} required")
        if not isinstance(record["rule"], Mapping):
            raise ValueError("stage: rule must be a record")
        return cls(str(record["file"]), str(record["sha256"]), read_rule(record["rule"]))


@dataclass(frozen=True)
class ModelFile:
    """A model served beside another with no rule of its own (the second detector a damage
    entry looks with where damage is found): its file and the file's checksum."""

    file: str
    """The model's .onnx, relative to the model directory."""
    sha256: str

    def to_record(self) -> dict[str, Any]:
        return {"file": self.file, "sha256": self.sha256}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ModelFile:
        """The one reader of a stored model file; an unknown, missing or empty field is a
        ValueError."""
        if not isinstance(record, Mapping):
            raise ValueError("model file: must be a record of file and sha256")
        unknown = sorted(set(record) - {"file", "sha256"})
        if unknown:
            raise ValueError(f"model file: unknown field(s) {', '.join(unknown)}")
        bad = [k for k in ("file", "sha256") if not isinstance(record.get(k), str) or not record[k]]
        if bad:
            raise ValueError(f"model file: {', '.join(bad)} required, as text")
        return cls(record["file"], record["sha256"])


def checked_file(model_dir: Path, record: StageRecord[Any] | ModelFile, what: str) -> Path:
    """The stage's file, present and matching its recorded checksum; else ModelUnavailable."""
    from inference.registry import sha256_of

    path = model_dir / record.file
    if not path.is_file():
        raise ModelUnavailable(f"{what} file missing: {path}")
    # a truncated copy or a file swapped under the registry must not serve silently
    if sha256_of(path) != record.sha256:
        raise ModelUnavailable(f"{what} {path} does not match its registry checksum")
    return path
