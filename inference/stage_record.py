"""A stage served beside a model, as the model's registry entry stores it: its file, the
file's checksum, and the rule it is served with (the part-family stage of a part model,
inference/part_family.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar


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
