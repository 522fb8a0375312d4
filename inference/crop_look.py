"""Closer looks at parts of each photo, for the damage model: its middle, and its corners.

At 416 px a photo's small damage is a few pixels wide. The middle of the frame, where a
policyholder puts the damage they photograph, is looked at again at the model's full input
size (a `CROP_SHARE` of each side, so magnified by 1 / `CROP_SHARE`), and its detections
are pooled with the whole photo's by the same NMS as one look (`postprocess.pooled`).

It costs one more pass of the damage model per photo (`Settings.damage_crop_look`), bought
with the time the served runtime saves (issue 30). On every photo it was refused (val found
more, but intact cars and close-ups got damage too: `docs/model-experiments.md`); a model
whose entry says `crop_look` is served so. Since damage entry -13 it is served only where
the first look, as served, finds damage (`middle_look_where_found`:
`SegmentationModel.again_looks`), where intact photos stay as they were. A damage
photographed off-centre lies outside the middle: an entry that says
`corner_looks_where_found` also looks at the four corners, each crop the middle's size,
there (`CornerLooks`: four more passes, in one call of the runtime, one photo at a time
as it is served), leaving out what a corner's inner edges cut (`uncut`).
"""

from __future__ import annotations

import cv2
import numpy as np

from inference.postprocess import PostprocessConfig, RawDetections, grid_shape, kept, pooled
from inference.runtime import Runtime
from inference.second_look import SecondLookRuntime

CROP_SHARE = 2 / 3
"""Each side of the middle crop, as a share of the photo's."""


def middle_crop(width: int, height: int, share: float = CROP_SHARE) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the centred crop in photo pixels."""
    cw, ch = max(1, round(width * share)), max(1, round(height * share))
    x0, y0 = (width - cw) // 2, (height - ch) // 2
    return x0, y0, x0 + cw, y0 + ch


def corner_crops(
    width: int, height: int, share: float = CROP_SHARE
) -> list[tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) of the four crops, each `share` of each side, at the photo's
    corners: top left, top right, bottom left, bottom right."""
    cw, ch = max(1, round(width * share)), max(1, round(height * share))
    x1, y1 = width - cw, height - ch
    return [(0, 0, cw, ch), (x1, 0, width, ch), (0, y1, cw, height), (x1, y1, width, height)]


def placed(
    raw: RawDetections, crop: tuple[int, int, int, int], width: int, height: int
) -> RawDetections:
    """Detections on a crop, as seen on the whole photo: boxes shifted, masks resampled
    into the crop's place on the photo's grid."""
    x0, y0, x1, y1 = crop
    boxes = raw.boxes + np.array([x0, y0, x0, y0], np.float32)
    gh, gw = grid_shape(width, height)
    c0, c1 = round(x0 * gw / width), round(x1 * gw / width)
    r0, r1 = round(y0 * gh / height), round(y1 * gh / height)
    masks = np.zeros((len(raw), gh, gw), bool)
    for k, mask in enumerate(raw.masks):
        size = (c1 - c0, r1 - r0)
        small = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
        masks[k, r0:r1, c0:c1] = small.astype(bool)
    return RawDetections(boxes, raw.scores, raw.class_ids, masks, raw.best_score)


class CropMergedRuntime(SecondLookRuntime):
    """A runtime whose every photo is also looked at in its middle, the looks pooled."""

    look = "middle crop"

    def view(self, image: np.ndarray) -> np.ndarray:
        x0, y0, x1, y1 = middle_crop(int(image.shape[1]), int(image.shape[0]))
        return image[y0:y1, x0:x1]

    def back(self, raw: RawDetections, image: np.ndarray) -> RawDetections:
        width, height = int(image.shape[1]), int(image.shape[0])
        return placed(raw, middle_crop(width, height), width, height)


CUT_MARGIN = 0.01
"""A corner crop's detection this near (a share of the crop's side) an edge the crop has
inside the photo is cut by it, and left out: the whole photo's look sees it whole."""


def uncut(
    raw: RawDetections, crop: tuple[int, int, int, int], width: int, height: int
) -> RawDetections:
    """A crop's detections (boxes in the crop's pixels) less those its inner edges cut."""
    x0, y0, x1, y1 = crop
    mx, my = CUT_MARGIN * (x1 - x0), CUT_MARGIN * (y1 - y0)
    boxes = raw.boxes
    cut = np.zeros(len(raw), bool)
    if x0 > 0:
        cut |= boxes[:, 0] < mx
    if y0 > 0:
        cut |= boxes[:, 1] < my
    if x1 < width:
        cut |= boxes[:, 2] > (x1 - x0) - mx
    if y1 < height:
        cut |= boxes[:, 3] > (y1 - y0) - my
    return kept(raw, ~cut)


class CornerLooks:
    """The four corners of a photo looked at closer (`corner_crops`), their detections
    brought back onto the photo and pooled as one look. Taken only where the first look
    finds damage (`SegmentationModel.looked_again` calls `second` and keeps what the first
    look agrees with), never on every photo."""

    look = "corners"

    def __init__(self, inner: Runtime, config: PostprocessConfig) -> None:
        self.inner = inner
        self.config = config
        self.imgsz = inner.imgsz
        self.num_classes = inner.num_classes

    def second(self, image: np.ndarray) -> RawDetections:
        width, height = int(image.shape[1]), int(image.shape[0])
        crops = corner_crops(width, height)
        views = [np.ascontiguousarray(image[y0:y1, x0:x1]) for x0, y0, x1, y1 in crops]
        found = self.inner.infer(views)
        looks = [
            placed(uncut(raw, crop, width, height), crop, width, height)
            for raw, crop in zip(found, crops, strict=True)
        ]
        joined = looks[0]
        for other in looks[1:]:
            joined = pooled(joined, other, self.config)
        return joined

    def infer(self, images: list[np.ndarray]) -> list[RawDetections]:
        """Only the corners of each photo (the first look is the caller's)."""
        return [self.second(image) for image in images]
