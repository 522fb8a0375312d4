"""The model registry: a JSON file beside the model files, readable without PyTorch.

Layout of `<model_dir>/registry.json`::

    {"promoted": {"damage": "<entry id>", "parts": "<entry id>"},
     "entries": [{...ModelEntry fields...}, ...]}

Serving reads it; `training` writes it (register, promote).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from inference.errors import ModelUnavailable, RegistryError

Task = Literal["damage", "parts"]
REGISTRY_FILE = "registry.json"


@dataclass(frozen=True)
class ModelEntry:
    id: str
    """Unique, e.g. 'damage-seg-n-20261125-1'."""
    task: Task
    file: str
    """Model file path relative to the model directory."""
    sha256: str
    classes: list[str]
    imgsz: int
    architecture: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    data: list[str] = field(default_factory=list)
    licence: str = ""
    command: str = ""
    created_at: str = ""
    card: str = ""
    """Model card path relative to the model directory."""


@dataclass
class Registry:
    model_dir: Path
    entries: list[ModelEntry]
    promoted: dict[str, str]

    @classmethod
    def load(cls, model_dir: Path) -> Registry:
        path = model_dir / REGISTRY_FILE
        if not path.exists():
            return cls(model_dir, [], {})
        try:
            raw = json.loads(path.read_text())
            entries = [ModelEntry(**item) for item in raw.get("entries", [])]
        except (ValueError, TypeError) as exc:
            raise RegistryError(f"{path}: not a valid registry: {exc}") from exc
        return cls(model_dir, entries, dict(raw.get("promoted", {})))

    def save(self) -> None:
        self.model_dir.mkdir(parents=True, exist_ok=True)
        body = {"promoted": self.promoted, "entries": [asdict(e) for e in self.entries]}
        tmp = self.model_dir / (REGISTRY_FILE + ".tmp")
        tmp.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.model_dir / REGISTRY_FILE)

    def get(self, entry_id: str) -> ModelEntry:
        for entry in self.entries:
            if entry.id == entry_id:
                return entry
        raise RegistryError(f"no model '{entry_id}' in {self.model_dir / REGISTRY_FILE}")

    def promoted_entry(self, task: Task) -> ModelEntry:
        """The promoted model for a task, checked to exist on disk; else ModelUnavailable."""
        entry_id = self.promoted.get(task)
        if entry_id is None:
            raise ModelUnavailable(
                f"no {task} model is promoted in {self.model_dir}: train one "
                f"(cdat train) and promote it (cdat models promote)"
            )
        entry = self.get(entry_id)
        if not (self.model_dir / entry.file).is_file():
            raise ModelUnavailable(f"{task} model file missing: {self.model_dir / entry.file}")
        return entry

    def path_of(self, entry: ModelEntry) -> Path:
        return self.model_dir / entry.file


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
