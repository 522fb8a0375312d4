"""A second damage detector, taken as one more look where the first look finds damage.

Every continuation of the served damage model found more of some sources' damage and less of
others' (docs/model-experiments.md): each detector proposes regions the other misses. An
entry naming `detector_where_found` runs that second detector on the whole photo, only on
photos its own first look, as served, finds damage on, and joins those of its detections
that overlap none of the other looks' (`postprocess.joined_apart`) before the verifiers
judge them. A photo the first look leaves intact is never shown to it, so what is reported
on intact photos stays as it was; and it never replaces what the served detector proposes
(pooled by NMS, its higher-scoring boxes took the place of the served one's, and lost a
region they had found: docs/model-experiments.md).
"""

from __future__ import annotations

import numpy as np

from inference.postprocess import RawDetections
from inference.second_look import SecondLookRuntime


class DetectorLookRuntime(SecondLookRuntime):
    """The second detector's look: the same photo, its detections already on the photo."""

    look = "second detector"

    def view(self, image: np.ndarray) -> np.ndarray:
        return image

    def back(self, raw: RawDetections, image: np.ndarray) -> RawDetections:
        return raw
