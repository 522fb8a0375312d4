"""Photo quality checks and the perceptual hash.

Each check returns `QualityIssue`s with a stable `code` (below) and a hint the
policyholder can act on. Blocking issues make a photo unusable for the estimate.

Checks run on the photo scaled to `QualityConfig.analysis_side` on its longest side,
so thresholds mean the same for a 12 MP phone photo and a 640 px upload.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from cdat.findings import NO_VEHICLE, QualityIssue

UNREADABLE = "unreadable"
TOO_SMALL = "too_small"
BLURRY = "blurry"
UNDEREXPOSED = "underexposed"
OVEREXPOSED = "overexposed"
NO_PART_VISIBLE = "no_part_visible"
DUPLICATE = "duplicate_photo"
COMPRESSED = "compressed"
ANALYSIS_FAILED = "analysis_failed"


@dataclass(frozen=True)
class QualityConfig:
    min_side: int = 64
    analysis_side: int = 512
    blur_threshold: float = 30.0
    """Variance of the Laplacian below which a photo counts as blurry."""
    dark_mean: float = 45.0
    bright_mean: float = 215.0
    clipped_share: float = 0.6
    """Share of crushed-black / blown-white pixels that flags exposure on its own."""
    nothing_visible_std: float = 4.0
    """A photo this flat (all black, all white, one colour) shows nothing: blocking."""
    vehicle_evidence_score: float = 0.05
    """A car-part score this high, under the reporting threshold, still shows a vehicle."""
    duplicate_max_bits: int = 6
    """Hamming distance (of 64) at or below which two photos count as the same photo."""
    min_jpeg_quality: int = 75
    """A JPEG saved at a lower quality setting is reported as compressed (not blocking): every
    photo the models learnt from and were measured on is saved at 75 or more, and re-saved at
    70 or 50 the val figures move by more than 0.02 (docs/model-experiments.md, "A photo saved
    heavily compressed, reported")."""


def issue(code: str, message: str, hint: str, blocking: bool = False) -> QualityIssue:
    return QualityIssue(code=code, message=message, retake_hint=hint, blocking=blocking)


def unreadable(reason: str) -> QualityIssue:
    return issue(
        UNREADABLE,
        f"The photo could not be read: {reason}.",
        "Upload the photo again as a JPEG or PNG straight from the camera.",
        blocking=True,
    )


def analysis_gray(image: np.ndarray, side: int) -> np.ndarray:
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    scale = side / max(gray.shape)
    if scale < 1.0:
        size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return gray


def check_size(width: int, height: int, cfg: QualityConfig) -> list[QualityIssue]:
    if min(width, height) >= cfg.min_side:
        return []
    return [
        issue(
            TOO_SMALL,
            f"The photo is {width}x{height} pixels; "
            f"at least {cfg.min_side} on each side is needed.",
            "Send the original photo, not a thumbnail or a crop.",
            blocking=True,
        )
    ]


def blur_score(gray: np.ndarray) -> float:
    """Variance of the Laplacian: low means few sharp edges."""
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def check_blur(gray: np.ndarray, cfg: QualityConfig) -> list[QualityIssue]:
    score = blur_score(gray)
    if score >= cfg.blur_threshold or float(gray.std()) < cfg.nothing_visible_std:
        return []  # a flat photo is reported by the exposure check instead
    return [
        issue(
            BLURRY,
            f"The photo is blurred (sharpness {score:.0f}, needs {cfg.blur_threshold:.0f}).",
            "Hold the phone still, tap the damage to focus, and take the photo again.",
        )
    ]


def check_compression(jpeg_quality: int | None, cfg: QualityConfig) -> list[QualityIssue]:
    """A JPEG saved at a low quality: its blocks and smeared edges hide small damage and can
    pass for scratches, so the original photo is asked for (not blocking)."""
    if jpeg_quality is None or jpeg_quality >= cfg.min_jpeg_quality:
        return []
    return [
        issue(
            COMPRESSED,
            f"The photo was saved heavily compressed (JPEG quality about {jpeg_quality}), "
            "which hides small damage and can look like scratches.",
            "Send the original photo from the camera, not a copy passed on by a messaging "
            "app or a website.",
        )
    ]


def check_exposure(gray: np.ndarray, cfg: QualityConfig) -> list[QualityIssue]:
    mean, std = float(gray.mean()), float(gray.std())
    dark = float((gray < 16).mean())
    bright = float((gray > 240).mean())
    flat = std < cfg.nothing_visible_std
    if mean < cfg.dark_mean or dark > cfg.clipped_share:
        return [
            issue(
                UNDEREXPOSED,
                "The photo is too dark" + (" to show anything." if flat else "."),
                "Take the photo in daylight or a well-lit place; avoid deep shade.",
                blocking=flat,
            )
        ]
    if mean > cfg.bright_mean or bright > cfg.clipped_share:
        return [
            issue(
                OVEREXPOSED,
                "The photo is too bright" + (" to show anything." if flat else "."),
                "Avoid direct sunlight and flash reflections on the paint; change your angle.",
                blocking=flat,
            )
        ]
    if flat:
        return [
            issue(
                UNDEREXPOSED,
                "The photo shows a single flat colour.",
                "Point the camera at the vehicle and take the photo again.",
                blocking=True,
            )
        ]
    return []


def check_vehicle(
    num_parts: int,
    num_damages: int,
    part_evidence: float = 0.0,
    config: QualityConfig | None = None,
) -> list[QualityIssue]:
    """No car part found: blocking only when nothing says a vehicle is there. Damage is
    such evidence, and so is a part the model half-recognises (`part_evidence`, its best
    score under the reporting threshold): a close-up of a panel is a photo of a vehicle."""
    if num_parts:
        return []
    evidence = (config or QualityConfig()).vehicle_evidence_score
    if num_damages or part_evidence >= evidence:
        seen = "Damage is visible" if num_damages else "A vehicle is visible"
        return [
            issue(
                NO_PART_VISIBLE,
                f"{seen} but not which part of the vehicle it is on.",
                "Step back so the whole panel around the damage is in the photo.",
            )
        ]
    return [no_vehicle()]


def no_vehicle() -> QualityIssue:
    """Blocking: the photo shows no vehicle (no part nor damage found, or the vehicle gate)."""
    return issue(
        NO_VEHICLE,
        "No vehicle could be seen in the photo.",
        "Photograph the damaged side of the vehicle from 1-3 metres away.",
        blocking=True,
    )


def perceptual_hash(image: np.ndarray) -> str:
    """64-bit DCT perceptual hash of a BGR or gray image, as 16 lowercase hex characters.

    The image is reduced to 32x32 gray, DCT-transformed, and the 8x8 lowest
    frequencies (including the DC term) are compared with their median: bit i
    (most significant first, row-major over the 8x8 block) is 1 when that
    coefficient is above the median. Re-encoding, resizing and mild colour changes
    move few bits; compare hashes with `hamming` (0 = same, <= 6 = near-duplicate).
    The fraud checks index these across claims, so the definition is stable.
    """
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].flatten()
    bits = low > np.median(low)
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return f"{value:016x}"


def hamming(hash_a: str, hash_b: str) -> int:
    """Number of differing bits between two `perceptual_hash` values."""
    return (int(hash_a, 16) ^ int(hash_b, 16)).bit_count()


def duplicate_issues(
    photo_ids: Sequence[str], hashes: Sequence[str | None], cfg: QualityConfig
) -> dict[int, QualityIssue]:
    """Index -> issue for each photo that repeats an earlier photo of the same claim."""
    found: dict[int, QualityIssue] = {}
    for later, hash_b in enumerate(hashes):
        for earlier in range(later):
            hash_a = hashes[earlier]
            if hash_a is None or hash_b is None or earlier in found:
                continue
            if hamming(hash_a, hash_b) <= cfg.duplicate_max_bits:
                found[later] = issue(
                    DUPLICATE,
                    f"This photo repeats photo {photo_ids[earlier]}.",
                    "Take a different photo: another angle or a closer view of the damage.",
                    blocking=True,
                )
                break
    return found
