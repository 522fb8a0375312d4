"""A damage runtime that looks at each photo twice, the second look's detections brought
back onto the photo and pooled with the first's (`postprocess.pooled`). What the second look
is (`inference/flip_tta.py`: mirrored; `inference/crop_look.py`: the middle, magnified) is
the subclass's; the batching, the pooling and what the analyzer reads of a runtime are here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from inference.postprocess import PostprocessConfig, RawDetections, pooled
from inference.runtime import Runtime


class SecondLookRuntime:
    look = "second look"
    """Named in the runtime's label (the assessment's model versions)."""

    def __init__(self, inner: Runtime, config: PostprocessConfig) -> None:
        self.inner = inner
        self.config = config
        self.imgsz = inner.imgsz
        self.num_classes = inner.num_classes

    @property
    def label(self) -> str:
        return f"{getattr(self.inner, 'label', type(self.inner).__name__)} + {self.look}"

    def class_names(self) -> list[str]:
        names = getattr(self.inner, "class_names", None)
        return list(names()) if callable(names) else []

    def view(self, image: np.ndarray) -> np.ndarray:
        """What the second look sees of a photo."""
        raise NotImplementedError

    def back(self, raw: RawDetections, image: np.ndarray) -> RawDetections:
        """The second look's detections as seen on the photo itself."""
        raise NotImplementedError

    def second(self, image: np.ndarray) -> RawDetections:
        """The second look alone at one photo, its detections brought back onto the photo."""
        return self.back(self.inner.infer([np.ascontiguousarray(self.view(image))])[0], image)

    def infer(self, images: Sequence[np.ndarray]) -> list[RawDetections]:
        views = [np.ascontiguousarray(self.view(image)) for image in images]
        found = self.inner.infer([*images, *views])
        n = len(images)
        return [
            pooled(found[k], self.back(found[n + k], image), self.config)
            for k, image in enumerate(images)
        ]
