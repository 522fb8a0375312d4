"""A second look at a photo from further away, for the damage model.

A close-up of heavy damage fills the frame: the crumpled panel is larger than most damage
the model was taught (whole cars, and mosaics of four photos at a time). The photo is
shrunk into a grey canvas `ZOOM_OUT` times its size, so the damage appears at the scale the
model knows, and the canvas's detections are brought back onto the photo and pooled with
the first look's (`postprocess.pooled`).

The analyzer takes it only on photos the vehicle gate reads as no whole-car view (the
registry entry's `zoom_look_view_below`): a whole car is already small in its frame.
Measured on 2026-12-06 (docs/model-experiments.md, "A zoomed-out second look on photos of
no whole car"): taken on every such photo, it found more damage on every test source
(car-parts-damage 0.786 to 0.855) but flagged more intact close-ups (0.179 to 0.231). Since
damage entry -12 it is served only where the first look, as served, finds damage
(`zoom_look_where_found`: `SegmentationModel.again_looks`), where it finds the same and
intact photos stay as they were (`cdat evaluate --zoom-look-view-below` measures a model
with it on every photo under the bar).
"""

from __future__ import annotations

import cv2
import numpy as np

from inference.postprocess import RawDetections, grid_shape
from inference.second_look import SecondLookRuntime

ZOOM_OUT = 1.5
"""Each side of the canvas, as a multiple of the photo's."""
CANVAS_GREY = 114
"""The letterbox grey the model was trained with around its photos."""


def canvas_of(width: int, height: int, scale: float = ZOOM_OUT) -> tuple[int, int, int, int]:
    """(canvas width, canvas height, x0, y0): the canvas, and where the photo sits in it
    (centred)."""
    canvas_w, canvas_h = round(width * scale), round(height * scale)
    return canvas_w, canvas_h, (canvas_w - width) // 2, (canvas_h - height) // 2


def zoomed_out(image: np.ndarray, scale: float = ZOOM_OUT) -> np.ndarray:
    """The photo in the middle of a grey canvas `scale` times its size."""
    height, width = int(image.shape[0]), int(image.shape[1])
    canvas_w, canvas_h, x0, y0 = canvas_of(width, height, scale)
    canvas = np.full((canvas_h, canvas_w, *image.shape[2:]), CANVAS_GREY, image.dtype)
    canvas[y0 : y0 + height, x0 : x0 + width] = image
    return canvas


def brought_back(
    raw: RawDetections, width: int, height: int, scale: float = ZOOM_OUT
) -> RawDetections:
    """Detections on the canvas of a width x height photo, as seen on the photo: boxes
    shifted and cut to it, masks cut to the photo's place on the canvas's grid and resampled
    onto the photo's. A detection on the grey alone is dropped."""
    canvas_w, canvas_h, x0, y0 = canvas_of(width, height, scale)
    boxes = raw.boxes - np.array([x0, y0, x0, y0], np.float32)
    boxes = np.clip(boxes, 0, [width, height, width, height]).astype(np.float32)
    on_photo = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    canvas_rows, canvas_cols = grid_shape(canvas_w, canvas_h)
    rows, cols = grid_shape(width, height)
    c0, c1 = round(x0 * canvas_cols / canvas_w), round((x0 + width) * canvas_cols / canvas_w)
    r0, r1 = round(y0 * canvas_rows / canvas_h), round((y0 + height) * canvas_rows / canvas_h)
    masks = np.zeros((len(raw), rows, cols), bool)
    for k, mask in enumerate(raw.masks):
        cut = mask[r0:r1, c0:c1].astype(np.uint8)
        masks[k] = cv2.resize(cut, (cols, rows), interpolation=cv2.INTER_NEAREST).astype(bool)
    return RawDetections(
        boxes[on_photo],
        raw.scores[on_photo],
        raw.class_ids[on_photo],
        masks[on_photo],
        raw.best_score,
    )


class ZoomedOutRuntime(SecondLookRuntime):
    """A runtime whose every photo is also looked at from further away, the looks pooled."""

    look = "zoomed out"

    def view(self, image: np.ndarray) -> np.ndarray:
        return zoomed_out(image)

    def back(self, raw: RawDetections, image: np.ndarray) -> RawDetections:
        return brought_back(raw, int(image.shape[1]), int(image.shape[0]))
