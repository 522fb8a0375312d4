"""Conditions a policyholder's phone photo brings, each a function of the photo's bytes:
sent on through a messaging app, taken at dusk or under a street light, noisy, at a phone's
size, stored sideways with the EXIF tag that turns it back. Each keeps the photo's geometry
(or only scales it), so labels still lie where they did (bench/bench_photo_conditions.py)."""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

PHONE_SIDE = 4032
"""The long side of a 12-megapixel phone photo (4032 x 3024)."""
SIDEWAYS_ORIENTATION = 6
"""EXIF orientation 'rotate 90 degrees clockwise to view': how phones store portrait shots."""


def _decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("not a decodable photo")
    return image


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("could not encode the photo as JPEG")
    return encoded.tobytes()


def stored(data: bytes) -> bytes:
    """The photo as the data set holds it."""
    return data


def messaging_app(data: bytes) -> bytes:
    """Compressed hard, as a messaging app or a web form may pass a photo on: JPEG
    re-encoded at quality 30 (every photo in the data sets here is saved at 75 or more)."""
    return _jpeg(_decode(data), 30)


def dusk(data: bytes) -> bytes:
    """Under-exposed by about 1.3 stops: the light scaled by 0.4 in linear light."""
    srgb = _decode(data).astype(np.float32) / 255.0
    linear = np.power(srgb, 2.2) * 0.4
    return _jpeg(np.clip(np.power(linear, 1 / 2.2) * 255.0 + 0.5, 0, 255).astype(np.uint8), 92)


def _noisy(data: bytes, sigma: float) -> bytes:
    image = _decode(data)
    seed = int.from_bytes(data[-8:].ljust(8, b"\0"), "little") % (2**32)
    noise = np.random.default_rng(seed).normal(0.0, sigma, image.shape)
    return _jpeg(np.clip(image + noise, 0, 255).astype(np.uint8), 92)


def sensor_noise(data: bytes) -> bytes:
    """High-ISO sensor noise: Gaussian, sigma 10 of 255, the same noise for a given photo."""
    return _noisy(data, 10.0)


def noisier(sigma: float) -> Callable[[bytes], bytes]:
    """Sensor noise of `sigma` (of 255): where between a clean photo and sigma 10 the
    damage model starts to suffer."""

    def condition(data: bytes) -> bytes:
        return _noisy(data, sigma)

    condition.__doc__ = f"Gaussian sensor noise, sigma {sigma:g} of 255."
    return condition


def street_light(data: bytes) -> bytes:
    """A warm cast, as under sodium or tungsten light: red up a fifth, blue down 30%."""
    gains = np.array([0.7, 1.0, 1.2], np.float32)  # OpenCV's channel order is B, G, R
    image = _decode(data).astype(np.float32) * gains
    return _jpeg(np.clip(image, 0, 255).astype(np.uint8), 92)


def phone_size(data: bytes) -> bytes:
    """The same picture at a phone's 4032 px long side (bicubic), JPEG quality 92: the
    service reads large photos by a reduced decode, then resizes."""
    image = _decode(data)
    height, width = image.shape[:2]
    scale = PHONE_SIDE / max(height, width)
    size = (round(width * scale), round(height * scale))
    return _jpeg(cv2.resize(image, size, interpolation=cv2.INTER_CUBIC), 92)


def sideways(data: bytes) -> bytes:
    """Stored as a phone stores a portrait shot: the pixels turned a quarter to the left
    and EXIF orientation 6, which turns them back for viewing."""
    from PIL import Image

    image = _decode(data)
    turned = cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    pil = Image.fromarray(cv2.cvtColor(turned, cv2.COLOR_BGR2RGB))
    exif = Image.Exif()
    exif[0x0112] = SIDEWAYS_ORIENTATION
    out = io.BytesIO()
    pil.save(out, "JPEG", quality=92, exif=exif.tobytes())
    return out.getvalue()


def recompressed(quality: int) -> Callable[[bytes], bytes]:
    """The photo JPEG re-encoded at `quality`: where between a camera's photo and a hard
    squeeze the models start to suffer (the compression check's bar, inference/quality.py)."""

    def condition(data: bytes) -> bytes:
        return _jpeg(_decode(data), quality)

    condition.__doc__ = f"JPEG re-encoded at quality {quality}."
    return condition


CONDITIONS: dict[str, Callable[[bytes], bytes]] = {
    "stored": stored,
    "messaging-app": messaging_app,
    "dusk": dusk,
    "sensor-noise": sensor_noise,
    "street-light": street_light,
    "phone-size": phone_size,
    "sideways": sideways,
    "jpeg-50": recompressed(50),
    "jpeg-70": recompressed(70),
    "noise-3": noisier(3.0),
    "noise-6": noisier(6.0),
}


def random_condition(data: bytes, rng: np.random.Generator) -> bytes:
    """One phone condition drawn at random at a random strength, for teaching a model what
    the bench measures without teaching it the bench's fixed conditions: a JPEG re-encode
    at quality 20-80, an exposure of 0.25-0.8 in linear light, sensor noise of sigma 3-15,
    or a colour cast (each channel's gain 0.7-1.25)."""
    return _jpeg(*_conditioned(_decode(data), rng))


def random_condition_image(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`random_condition` on a decoded BGR image: the image as it decodes afterwards, its
    size kept, so a training pipeline's labels still lie where they did."""
    decoded = cv2.imdecode(np.frombuffer(_jpeg(*_conditioned(image, rng)), np.uint8), 1)
    return np.ascontiguousarray(decoded)


def _conditioned(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    pixels: np.ndarray = image.astype(np.float32)
    kind = int(rng.integers(0, 4))
    quality = 92
    if kind == 0:
        quality = int(rng.integers(20, 81))
    elif kind == 1:
        linear = np.power(pixels / 255.0, 2.2) * float(rng.uniform(0.25, 0.8))
        pixels = np.power(linear, 1 / 2.2) * 255.0
    elif kind == 2:
        pixels = pixels + rng.normal(0.0, float(rng.uniform(3.0, 15.0)), pixels.shape)
    else:
        pixels = pixels * rng.uniform(0.7, 1.25, 3).astype(np.float32)
    return np.clip(pixels + 0.5, 0, 255).astype(np.uint8), quality


class PhotoConditionAugment:
    """A training-pipeline step (Ultralytics' transform protocol: a labels dict in, the
    same dict out) that shows a share `p` of the training images under `random_condition`:
    the served damage model lost a quarter of car-parts-damage's regions under sensor noise
    it had never been shown (docs/model-experiments.md). Random draws come from Python's
    `random`, which Ultralytics seeds per run and per loader worker."""

    def __init__(self, p: float) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be between 0 and 1, got {p}")
        self.p = p

    def __call__(self, labels: dict[str, Any]) -> dict[str, Any]:
        if self.p == 0.0 or random.random() >= self.p:
            return labels
        rng = np.random.default_rng(random.getrandbits(63))
        labels["img"] = random_condition_image(labels["img"], rng)
        return labels
