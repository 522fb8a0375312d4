"""The seam between the claim service and the vision models.

The service only knows `PhotoAnalyzer`; `inference` provides the real one and
tests provide fakes. An analyzer is built once per process and reused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cdat.findings import PhotoAnalysis


@dataclass(frozen=True)
class PhotoInput:
    photo_id: str
    data: bytes


class PhotoAnalyzer(Protocol):
    @property
    def model_versions(self) -> dict[str, str]:
        """Name -> version of every model behind this analyzer, for the audit trail."""
        ...

    def analyze(self, photos: Sequence[PhotoInput]) -> list[PhotoAnalysis]:
        """Analyze a claim's photos; one result per input, in order."""
        ...
