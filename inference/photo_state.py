"""One photo's working state through the analyzer (`inference.pipeline`), and the small
helpers its stages share."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from cdat.findings import DamageInstance, PhotoAnalysis, QualityIssue
from inference import quality
from inference.crop_memo import CropMemo
from inference.placer import Taps
from inference.postprocess import PhotoLayers, RawDetections
from inference.runtime import SegmentationModel
from inference.severity import SeverityView, severity_view

Damages = tuple[RawDetections, tuple[DamageInstance, ...]]
"""A photo's damage model output, in photo coordinates, and its unassigned damages."""


@dataclass
class PhotoState:
    """Working state of one photo through the pipeline."""

    photo_id: str
    image: np.ndarray | None = None
    """Upright BGR, possibly decoded at reduced size (`scale` maps it to the photo)."""
    scale: tuple[float, float] = (1.0, 1.0)
    width: int = 0
    height: int = 0
    jpeg_quality: int | None = None
    """The encoder's estimated quality setting, where the photo is a JPEG."""
    issues: list[QualityIssue] = field(default_factory=list)
    phash: str | None = None
    vehicle_probability: float | None = None
    whole_car_view_probability: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    result: PhotoAnalysis | None = None
    placer_taps: Taps | None = None
    """The damage model's layers the placer head reads, until damage is placed
    (inference/placer.py)."""

    damage_layers: PhotoLayers | None = None
    """The damage model's tapped layers on the photo, where it is served tapped (a head
    reads them under each close-up damage: inference/layer_severity.py)."""
    severity_read_close_up: bool = False
    """The close-up severity stage re-read the photo's damages."""
    severity_planes: SeverityView | None = None
    """What the severity stages measure the photo's damages on, made once when first asked."""
    crop_memo: CropMemo = field(default_factory=dict)
    """What the crop stages said of its damages, for a second analysis of the photo."""

    @property
    def blocked(self) -> bool:
        return any(i.blocking for i in self.issues)

    def severity_view(self) -> SeverityView:
        """The photo's severity view, made on first use and shared by both severity stages."""
        assert self.image is not None  # only photos with an image have damages
        if self.severity_planes is None:
            self.severity_planes = severity_view(self.image)
        return self.severity_planes


def timed(model: SegmentationModel, images: list[np.ndarray]) -> tuple[list[RawDetections], float]:
    started = time.perf_counter()
    return model.infer(images), ms(started)


def ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def analysis_failed(exc: Exception) -> QualityIssue:
    return quality.issue(
        quality.ANALYSIS_FAILED,
        f"The photo could not be analysed ({type(exc).__name__}).",
        "Take the photo again; if it keeps failing, send it to your adjuster.",
        blocking=True,
    )
