"""Photos the capture tests make themselves: a drawn car (sharp or blurred) and a photo
with no vehicle, as JPEGs with an EXIF capture time, like a phone camera's.

The vehicle gate takes a soft-edged drawing of a car with fine grain on top for a car
(the grain makes it sharp to the blur check); the same drawing without the grain is
blurred, and a pattern of stripes shows no vehicle. Each `car(n)` is framed differently,
so no two are the same photo to the perceptual hash.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

WIDTH, HEIGHT = 1024, 768
DATE_TIME_ORIGINAL = 0x9003
EXIF_IFD = 0x8769
TAKEN = "2026:11:21 10:00:00"
"""A day after the loss date of `tests.conftest.claim_body`."""
SHARP = (0, 2, 3, 4, 5, 6, 7)
"""Framings the vehicle gate takes for a car with a margin (1 is close to its threshold).
The gate reads each as a close-up: right for a damage close-up, not for an overview shot."""
FARTHER = (5, 12, 25, 30, 50, 80)
"""Framings of `farther_car` the gate takes for a car with a margin (0.83 or more against
its 0.66) and whose view it reads between the capture page's framing bars (0.48 to 0.76,
bars 0.1 and 0.8): no framing advice in an overview shot or a close-up."""


def _drawing(n: int) -> np.ndarray:
    palette = [(30, 30, 160), (160, 60, 30), (40, 120, 40), (120, 120, 120), (20, 90, 170)]
    image = np.full((HEIGHT, WIDTH, 3), (200, 190, 180), np.uint8)
    image[int(HEIGHT * (0.62 + 0.03 * (n % 3))) :] = (90, 90, 90)
    shift, lift, size = (n * 97) % 260 - 130, (n * 53) % 120 - 60, 0.75 + 0.1 * (n % 4)
    colour = palette[n % len(palette)]

    def at(x: float, y: float) -> tuple[int, int]:
        return int(512 + (x - 512) * size + shift), int(420 + (y - 420) * size + lift)

    cv2.rectangle(image, at(150, 330), at(870, 560), colour, -1)
    cv2.rectangle(image, at(300, 220), at(700, 340), colour, -1)
    cv2.rectangle(image, at(320, 235), at(490, 330), (200, 170, 120), -1)
    cv2.rectangle(image, at(510, 235), at(680, 330), (200, 170, 120), -1)
    for x in (300, 720):
        cv2.circle(image, at(x, 560), int(75 * size), (20, 20, 20), -1)
        cv2.circle(image, at(x, 560), int(35 * size), (160, 160, 160), -1)
    return cv2.GaussianBlur(image, (0, 0), 8)


def _jpeg(bgr: np.ndarray, taken: str | None, quality: int = 92) -> bytes:
    image = Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    exif = Image.Exif()
    if taken is not None:
        exif.get_ifd(EXIF_IFD)[DATE_TIME_ORIGINAL] = taken
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, exif=exif.tobytes() if taken else b"")
    return buffer.getvalue()


def car(n: int, taken: str | None = TAKEN) -> bytes:
    """A sharp photo of a car, framed the `n`th way."""
    grain = np.random.default_rng(n).integers(-14, 15, (HEIGHT, WIDTH, 3))
    return _jpeg(np.clip(_drawing(n).astype(int) + grain, 0, 255).astype(np.uint8), taken)


def compressed_car(quality: int, taken: str | None = TAKEN) -> bytes:
    """`car(0)` saved again at a JPEG `quality`, as a chat app may pass a photo on."""
    grain = np.random.default_rng(0).integers(-14, 15, (HEIGHT, WIDTH, 3))
    return _jpeg(np.clip(_drawing(0).astype(int) + grain, 0, 255).astype(np.uint8), taken, quality)


def farther_car(n: int, taken: str | None = TAKEN) -> bytes:
    """A sharp photo of a car, framed the `n`th way and drawn at three quarters of its size
    on the same background, so more of the scene is in the frame."""
    grain = np.random.default_rng(n).integers(-14, 15, (HEIGHT, WIDTH, 3))
    car = np.clip(_drawing(n).astype(int) + grain, 0, 255).astype(np.uint8)
    scene = np.full_like(car, (200, 190, 180))
    scene[int(HEIGHT * 0.62) :] = (90, 90, 90)
    small = cv2.resize(car, (WIDTH * 3 // 4, HEIGHT * 3 // 4))
    top, left = (HEIGHT - small.shape[0]) // 2 + 10, (WIDTH - small.shape[1]) // 2
    scene[top : top + small.shape[0], left : left + small.shape[1]] = small
    return _jpeg(scene, taken)


def blurred_car(taken: str | None = TAKEN) -> bytes:
    return _jpeg(_drawing(7), taken)


def no_vehicle(taken: str | None = TAKEN) -> bytes:
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    for x in range(0, WIDTH, 64):
        cv2.rectangle(image, (x, 0), (x + 32, HEIGHT), (40, 160, 40), -1)
    return _jpeg(image, taken)
