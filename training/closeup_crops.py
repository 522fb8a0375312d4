"""Close-up crops of whole-car training photos, so a part model learns what a part looks
like from 30 cm away: policyholders photograph the damage, not the car.

Each crop is a random window of a train photo (a third to two thirds of its short side),
with every labelled part clipped to the window. Crops are made of train photos only and
stay in train, so no view of a val or test photo is ever trained on.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from training.errors import DatasetError

Polygon = list[float]
MIN_PART_SHARE = 0.01
"""A clipped part smaller than this share of the crop is dropped (a sliver at the edge)."""


def crop_window(width: int, height: int, rng: random.Random) -> tuple[int, int, int, int]:
    side = rng.uniform(0.33, 0.67) * min(width, height)
    aspect = rng.uniform(0.75, 1.33)
    w = min(width, max(16, round(side * aspect)))
    h = min(height, max(16, round(side / aspect)))
    x0, y0 = rng.randint(0, width - w), rng.randint(0, height - h)
    return x0, y0, x0 + w, y0 + h


def clip_polygon(
    polygon: Polygon, size: tuple[int, int], window: tuple[int, int, int, int]
) -> list[Polygon]:
    """A normalised polygon of the photo -> normalised outlines inside the window."""
    import cv2

    width, height = size
    x0, y0, x1, y1 = window
    w, h = x1 - x0, y1 - y0
    points = np.array(polygon, np.float64).reshape(-1, 2) * [width, height] - [x0, y0]
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for contour in contours:
        if cv2.contourArea(contour) < MIN_PART_SHARE * w * h or len(contour) < 3:
            continue
        xy = contour.reshape(-1, 2).astype(np.float64) / [w, h]
        out.append([float(v) for v in xy.clip(0.0, 1.0).reshape(-1)])
    return out


def write_crops(
    image_path: Path,
    instances: list[tuple[str, Polygon]],
    count: int,
    stem: str,
    images_out: Path,
) -> list[tuple[Path, list[tuple[str, Polygon]]]]:
    """`count` crops of one photo written as `<stem>.crop<k>.jpg` under `images_out`
    (seeded by the stem, so a conversion is repeatable); their instances."""
    import cv2

    image = cv2.imread(str(image_path))
    if image is None or count <= 0:
        return []
    height, width = image.shape[:2]
    rng = random.Random(stem)
    out = []
    for k in range(count):
        window = crop_window(width, height, rng)
        clipped = [
            (name, piece)
            for name, polygon in instances
            for piece in clip_polygon(polygon, (width, height), window)
        ]
        if not clipped:
            continue
        x0, y0, x1, y1 = window
        target = images_out / f"{stem}.crop{k}.jpg"
        if not cv2.imwrite(str(target), image[y0:y1, x0:x1], [cv2.IMWRITE_JPEG_QUALITY, 92]):
            raise DatasetError(f"cannot write the close-up crop {target}")
        out.append((target, clipped))
    return out
