"""Which promoted models are installed, checked without loading them.

readiness(settings).as_dict()   # {"ready": ..., "models": {task: {...}}}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdat.settings import Settings
from inference.errors import ModelUnavailable, RegistryError
from inference.registry import Registry, Task

TASKS: tuple[Task, ...] = ("damage", "parts")


@dataclass(frozen=True)
class ModelStatus:
    task: str
    present: bool
    entry_id: str | None = None
    file: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class Readiness:
    """Which promoted models are installed, checked without loading them."""

    models: tuple[ModelStatus, ...]

    @property
    def ready(self) -> bool:
        return all(m.present for m in self.models)

    @property
    def missing(self) -> list[str]:
        return [m.task for m in self.models if not m.present]

    def as_dict(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "models": {
                m.task: {"present": m.present, "id": m.entry_id, "file": m.file, "reason": m.reason}
                for m in self.models
            },
        }


def readiness(settings: Settings) -> Readiness:
    statuses = []
    try:
        registry = Registry.load(settings.model_dir)
    except RegistryError as exc:
        return Readiness(tuple(ModelStatus(t, False, reason=exc.message) for t in TASKS))
    for task in TASKS:
        try:
            entry = registry.promoted_entry(task)
        except (ModelUnavailable, RegistryError) as exc:
            statuses.append(ModelStatus(task, False, reason=exc.message))
            continue
        statuses.append(ModelStatus(task, True, entry.id, entry.file))
    return Readiness(tuple(statuses))
