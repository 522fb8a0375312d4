"""The crop around one detected damage, as the stages that look at a damage again see it
(the part-family stage, inference/part_family.py) and as their training crops labelled
regions (training/part_family.py): the same geometry in both, so a stage is served on what it
learnt from. A stage that also reads the whole photo and where the damage lies in it sees
`photo_crop` and `box_position`, made the same way in both."""

from __future__ import annotations

import cv2
import numpy as np

from cdat.findings import Box

CROP_EXPAND = 1.6
"""The crop's side is this many times the damage box's longer side..."""
CROP_MIN_SHARE = 0.35
"""...and at least this share of the photo's shorter side: a scratch a few pixels wide is
told apart by the panel around it, not by itself."""


def damage_crop(image: np.ndarray, box: Box, side: int) -> np.ndarray:
    """(3, side, side) float32 RGB in [0, 1]: the square around `box` (image pixels),
    clipped to the photo and resized."""
    height, width = image.shape[:2]
    cx, cy = (box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2
    extent = max(box.x2 - box.x1, box.y2 - box.y1) * CROP_EXPAND
    extent = min(max(extent, CROP_MIN_SHARE * min(height, width)), max(height, width))
    left, top = int(max(0, cx - extent / 2)), int(max(0, cy - extent / 2))
    right, bottom = int(min(width, cx + extent / 2)), int(min(height, cy + extent / 2))
    crop = image[top : max(bottom, top + 1), left : max(right, left + 1)]
    if crop.ndim == 2:
        crop = cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
    small = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
    rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32) / 255.0


def photo_crop(image: np.ndarray, side: int) -> np.ndarray:
    """The whole photo as `damage_crop` gives a crop: (3, side, side), squeezed square."""
    height, width = image.shape[:2]
    return damage_crop(image, Box(0, 0, width, height), side)


def box_position(box: Box, width: float, height: float) -> tuple[float, float, float, float]:
    """Where `box` lies in a `width` x `height` photo: its centre, width and height, each a
    fraction of the photo's."""
    return (
        (box.x1 + box.x2) / 2 / width,
        (box.y1 + box.y2) / 2 / height,
        (box.x2 - box.x1) / width,
        (box.y2 - box.y1) / height,
    )
