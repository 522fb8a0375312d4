"""A second, closer look at the middle of each photo, for the damage model.

At 416 px a photo's small damage is a few pixels wide. The middle of the frame, where a
policyholder puts the damage they photograph, is looked at again at the model's full input
size (a `CROP_SHARE` of each side, so magnified by 1 / `CROP_SHARE`), and its detections
are pooled with the whole photo's by the same NMS as one look (`postprocess.pooled`).

It costs one more pass of the damage model per photo (`Settings.damage_crop_look`), bought
with the time the served runtime saves (issue 30). On every photo it was refused (val found
more, but intact cars and close-ups got damage too: `docs/model-experiments.md`); a model
whose entry says `crop_look` is served so. Since damage entry -13 it is served only where
the first look, as served, finds damage (`middle_look_where_found`:
`SegmentationModel.again_looks`), where intact photos stay as they were.
"""

from __future__ import annotations

import cv2
import numpy as np

from inference.postprocess import RawDetections, grid_shape
from inference.second_look import SecondLookRuntime

CROP_SHARE = 2 / 3
"""Each side of the middle crop, as a share of the photo's."""


def middle_crop(width: int, height: int, share: float = CROP_SHARE) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the centred crop in photo pixels."""
    cw, ch = max(1, round(width * share)), max(1, round(height * share))
    x0, y0 = (width - cw) // 2, (height - ch) // 2
    return x0, y0, x0 + cw, y0 + ch


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
