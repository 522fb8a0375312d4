"""The Ultralytics/PyTorch runtime: parity checks against ONNX, and GPU serving.

The only module of `inference` that touches torch or ultralytics, and only when a
runtime is constructed. Ultralytics' letterboxed masks are
resampled onto the same analysis grid the ONNX runtime uses.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from inference.errors import ModelUnavailable
from inference.postprocess import PostprocessConfig, RawDetections, grid_shape


class UltralyticsRuntime:
    def __init__(
        self,
        path: Path,
        *,
        imgsz: int,
        config: PostprocessConfig | None = None,
        device: str | None = None,
        batch_size: int = 1,
    ) -> None:
        if not path.is_file():
            raise ModelUnavailable(f"PyTorch weights not found for the Ultralytics runtime: {path}")
        os.environ.setdefault("YOLO_OFFLINE", "1")  # never reach for hub assets or fonts
        from ultralytics import YOLO

        self.model = YOLO(str(path), task="segment")
        self.imgsz = imgsz
        self.num_classes = len(self.model.names)
        self.config = config or PostprocessConfig()
        self.device = device
        self.batch_size = batch_size

    def infer(self, images: Sequence[np.ndarray]) -> list[RawDetections]:
        results: list[RawDetections] = []
        for start in range(0, len(images), self.batch_size):
            chunk = list(images[start : start + self.batch_size])
            predictions = self.model.predict(
                chunk,
                imgsz=self.imgsz,
                conf=self.config.conf,
                iou=self.config.iou,
                max_det=self.config.max_det,
                agnostic_nms=self.config.agnostic,
                device=self.device,
                verbose=False,
            )
            results += [_convert(p, image) for p, image in zip(predictions, chunk, strict=True)]
        return results


def _convert(prediction, image: np.ndarray) -> RawDetections:
    height, width = image.shape[:2]
    grid = grid_shape(width, height)
    boxes = prediction.boxes
    if boxes is None or len(boxes) == 0:
        return RawDetections.empty(grid)
    if prediction.masks is None:
        masks = np.zeros((len(boxes), *grid), bool)
    else:
        from ultralytics.utils.ops import scale_masks

        # masks.data is on the letterboxed input; the grid has the photo's aspect ratio
        data = prediction.masks.data[None].float()
        masks = (scale_masks(data, grid)[0] > 0.5).cpu().numpy()
    scores = boxes.conf.cpu().numpy().astype(np.float32)
    # Ultralytics drops what is under its threshold: the best kept score is a lower bound.
    return RawDetections(
        boxes.xyxy.cpu().numpy().astype(np.float32),
        scores,
        boxes.cls.cpu().numpy().astype(np.int64),
        masks,
        float(scores.max()),
    )
