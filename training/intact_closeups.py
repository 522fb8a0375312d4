"""Close-ups of intact cars: does a photo of an undamaged panel, taken from close by, get
damage?

`intact_photos_with_damage` asks it of whole-car photos only, and the whole-car rule
(`cdat/whole_car.py`) demands more of a damage there. A policyholder photographs close up, so
an intact panel shot from 30 cm (the other side of the car, a panel the adjuster asked for)
meets the close-up threshold. No set here holds close-ups of intact cars; windows of the
held-out `car-parts` photos (all intact, checked by eye: its card) stand in for them, cut as
the part model's training crops are (`training.closeup_crops.crop_window`: a third to two
thirds of the short side), kept only where the labelled parts fill most of the window (a
window of sky or road is no close-up of a car) and the window is not tiny. They are softer
than a phone's close-up (a 512 px photo's window, enlarged), so the share they give is a
measure to compare serving rules and models by, not a rate promised for real close-ups.
"""

from __future__ import annotations

import random
from argparse import ArgumentTypeError
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.closeup_crops import crop_window
from training.errors import TrainingError

WINDOWS_PER_PHOTO = 2
MIN_CAR_SHARE = 0.6
"""Share of a window the photo's labelled parts must fill for it to be a close-up of the car."""
MIN_SIDE = 128
"""Shortest side of a window in pixels: smaller ones are a thumbnail, not a close-up."""
TRIES = 20


def windows_per_photo_arg(text: str) -> int:
    """A count of close-up windows per intact car: a whole number from 1 to 32."""
    try:
        count = int(text)
    except ValueError:
        raise ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= count <= 32:
        raise ArgumentTypeError(f"{count} windows per car: give 1 to 32")
    return count


@dataclass(frozen=True)
class IntactCloseup:
    name: str
    """`<photo stem>-<n>.jpg`: the photo it was cut from, and which window."""
    jpeg: bytes


def closeup_windows(
    car: np.ndarray, seed_name: str, count: int = WINDOWS_PER_PHOTO
) -> list[tuple[int, int, int, int]]:
    """Up to `count` windows (x0, y0, x1, y1) of a photo whose car pixels are `car`; the same
    photo name always gives the same windows."""
    height, width = car.shape
    rng = random.Random(seed_name)
    windows = []
    for _ in range(count):
        for _ in range(TRIES):
            x0, y0, x1, y1 = crop_window(width, height, rng)
            if min(x1 - x0, y1 - y0) < MIN_SIDE:
                continue
            if car[y0:y1, x0:x1].mean() >= MIN_CAR_SHARE:
                windows.append((x0, y0, x1, y1))
                break
    return windows


def intact_closeups(
    photos: Iterable[tuple[Path, Sequence[tuple[str, list[float]]]]],
    windows_per_photo: int = WINDOWS_PER_PHOTO,
) -> list[IntactCloseup]:
    """Close-up windows of intact-car photos, each with its labelled part polygons
    (normalised, as `typed_photos` gives them). A photo that cannot be read is an error, not
    a photo left out: the figure would shrink without saying so. More windows per photo keep
    the first ones as they were (one seeded draw per photo), so a finer figure is a superset."""
    import cv2

    from training.closeup import _polygon_mask

    out = []
    for image, instances in photos:
        pixels = cv2.imread(str(image))
        if pixels is None:
            raise TrainingError(f"{image}: not a readable image (an intact-car photo)")
        height, width = pixels.shape[:2]
        car = np.zeros((height, width), bool)
        for _, polygon in instances:
            car |= _polygon_mask(polygon, (height, width), scale=True)
        for n, (x0, y0, x1, y1) in enumerate(closeup_windows(car, image.name, windows_per_photo)):
            ok, encoded = cv2.imencode(".jpg", pixels[y0:y1, x0:x1], [cv2.IMWRITE_JPEG_QUALITY, 92])
            if not ok:
                raise TrainingError(f"{image}: its close-up window {n} could not be encoded")
            out.append(IntactCloseup(f"{image.stem}-{n}.jpg", encoded.tobytes()))
    return out
