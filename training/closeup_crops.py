"""Close-up crops of whole-car training photos, so a part model learns what a part looks
like from 30 cm away: policyholders photograph the damage, not the car.

Each crop is a random window of a train photo (a third to two thirds of its short side),
with every labelled part clipped to the window. Crops are made of train photos only and
stay in train, so no view of a val or test photo is ever trained on.

Damage data can be cropped too (`keep_whole`, e.g. `datasets/damage-crops.yaml`), so a
detector sees small scratches larger than a whole photo shows them; there a small damage
mostly inside the window stays labelled.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from training.errors import DatasetError

Polygon = list[float]
MIN_PART_SHARE = 0.01
"""A clipped part smaller than this share of the crop is dropped (a sliver at the edge)."""
MIN_KEPT_OF_INSTANCE = 0.5
"""With `keep_whole`, an instance that keeps at least this share of its pixels in the crop
stays labelled however small: damage is small by nature (most scratches are under 0.2% of
a photo), and a whole scratch left unlabelled in a crop would teach that it is background."""


def crop_window(width: int, height: int, rng: random.Random) -> tuple[int, int, int, int]:
    side = rng.uniform(0.33, 0.67) * min(width, height)
    aspect = rng.uniform(0.75, 1.33)
    w = min(width, max(16, round(side * aspect)))
    h = min(height, max(16, round(side / aspect)))
    x0, y0 = rng.randint(0, width - w), rng.randint(0, height - h)
    return x0, y0, x0 + w, y0 + h


def clip_polygon(
    polygon: Polygon,
    size: tuple[int, int],
    window: tuple[int, int, int, int],
    keep_whole: bool = False,
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
    mostly_inside = keep_whole and _kept_share(points, mask) >= MIN_KEPT_OF_INSTANCE
    out = []
    for contour in contours:
        sliver = cv2.contourArea(contour) < MIN_PART_SHARE * w * h and not mostly_inside
        if sliver or len(contour) < 3:
            continue
        xy = contour.reshape(-1, 2).astype(np.float64) / [w, h]
        out.append([float(v) for v in xy.clip(0.0, 1.0).reshape(-1)])
    return out


def _kept_share(points: np.ndarray, clipped: np.ndarray) -> float:
    """Pixels of the instance inside the window over its pixels in the whole photo; `points`
    are already shifted into window coordinates."""
    import cv2

    lo = np.floor(points.min(0)).astype(int)
    span = np.ceil(points.max(0)).astype(int) - lo + 2
    whole = np.zeros((span[1], span[0]), np.uint8)
    cv2.fillPoly(whole, [np.round(points - lo).astype(np.int32)], 1)
    total = int(whole.sum())
    return float(clipped.sum()) / total if total else 0.0


def write_crops(
    image_path: Path,
    instances: list[tuple[str, Polygon]],
    count: int,
    stem: str,
    images_out: Path,
    keep_whole: bool = False,
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
            for piece in clip_polygon(polygon, (width, height), window, keep_whole)
        ]
        if not clipped:
            continue
        x0, y0, x1, y1 = window
        target = images_out / f"{stem}.crop{k}.jpg"
        if not cv2.imwrite(str(target), image[y0:y1, x0:x1], [cv2.IMWRITE_JPEG_QUALITY, 92]):
            raise DatasetError(f"cannot write the close-up crop {target}")
        out.append((target, clipped))
    return out
