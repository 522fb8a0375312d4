"""A second look at each photo, mirrored left to right, for the damage model.

The damage model misses much of what a claim shows (issue 29), and most of what it misses
it scores just under the threshold. A mirrored photo is the same damage seen by a model that
was trained on mirrored photos too (`fliplr` 0.5): where one view scores a damage under the
threshold the other often scores it over. The two views' detections are merged as one
photo's: mirrored back, pooled, and reduced by the same non-maximum suppression as a single
view, so a damage both views find is reported once, at the higher score.

It costs one more pass of the damage model per photo (`Settings.damage_flip_tta`), bought
with the time the served runtime saves (issue 30). Measured on val on 2026-12-02: held to
the same bound on intact cars it found no more (`docs/model-experiments.md`); off.
"""

from __future__ import annotations

import numpy as np

from inference.postprocess import PostprocessConfig, RawDetections, pooled
from inference.second_look import SecondLookRuntime


def mirrored(raw: RawDetections, width: int) -> RawDetections:
    """Detections on a left-right mirrored photo, as seen on the photo itself."""
    boxes = raw.boxes.copy()
    boxes[:, 0], boxes[:, 2] = width - raw.boxes[:, 2], width - raw.boxes[:, 0]
    masks = np.ascontiguousarray(raw.masks[:, :, ::-1])
    return RawDetections(boxes, raw.scores, raw.class_ids, masks, raw.best_score)


def merge_views(
    upright: RawDetections, flipped: RawDetections, width: int, config: PostprocessConfig
) -> RawDetections:
    """One photo's detections from its two views (`flipped` as the model saw it)."""
    return pooled(upright, mirrored(flipped, width), config)


class FlipMergedRuntime(SecondLookRuntime):
    """A runtime whose every photo is looked at upright and mirrored, the views merged."""

    look = "mirrored view"

    def view(self, image: np.ndarray) -> np.ndarray:
        return image[:, ::-1]

    def back(self, raw: RawDetections, image: np.ndarray) -> RawDetections:
        return mirrored(raw, int(image.shape[1]))
