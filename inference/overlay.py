"""Annotated photos for adjusters and policyholders.

`render_overlay(image_bytes, analysis)` draws damage masks coloured by damage type,
their severity, the car parts found, and any quality issue, and returns a JPEG. Text uses
OpenCV's built-in Hershey font so nothing is downloaded. The `policyholder` view leaves out
confidences and part outlines, which mean little to a customer. A damage that repeats a
surer one (`cdat.merge.seen_again`: outlined again, or named again as another type) is left
out, as the workspace's photo leaves it out until its fold is opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from cdat.findings import DamageInstance, PhotoAnalysis, Polygon
from cdat.label_layout import LabelSpot, place_labels
from cdat.merge import seen_again
from cdat.taxonomy import DamageType, Severity
from inference.errors import UnreadableImage
from inference.imaging import decode_photo

Audience = Literal["adjuster", "policyholder"]

# BGR, chosen to stay distinguishable for the common colour-vision deficiencies.
DAMAGE_COLOURS: dict[DamageType, tuple[int, int, int]] = {
    DamageType.DENT: (0, 114, 230),  # orange
    DamageType.SCRATCH: (233, 180, 86),  # sky blue
    DamageType.CRACK: (115, 158, 0),  # bluish green
    DamageType.GLASS_SHATTER: (66, 228, 240),  # yellow
    DamageType.LAMP_BROKEN: (178, 114, 0),  # blue
    DamageType.TIRE_FLAT: (167, 121, 204),  # reddish purple
    DamageType.BROKEN_PART: (0, 94, 213),  # vermillion
}
SEVERITY_THICKNESS = {Severity.MINOR: 1, Severity.MODERATE: 2, Severity.SEVERE: 3}
PART_COLOUR = (220, 220, 220)
FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class Label:
    text: str
    x: int
    y: int
    """Baseline start, before `place_labels` moves it clear of the others."""
    colour: tuple[int, int, int]
    scale: float


def render_overlay(
    image_bytes: bytes,
    analysis: PhotoAnalysis,
    *,
    audience: Audience = "adjuster",
    max_side: int | None = None,
    jpeg_quality: int = 85,
) -> bytes:
    """The photo with the analysis drawn on it, as JPEG bytes (same size unless `max_side`).

    Raises UnreadableImage when the photo bytes cannot be decoded.
    """
    image = decode_photo(image_bytes)
    scale = 1.0
    if max_side and max(image.shape[:2]) > max_side:
        scale = max_side / max(image.shape[:2])
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    # Geometry is in the analysed photo's pixels; rescale if the bytes differ in size.
    if analysis.width and analysis.height:
        sx = image.shape[1] / analysis.width
        sy = image.shape[0] / analysis.height
    else:
        sx = sy = scale
    unit = max(1.0, max(image.shape[:2]) / 640.0)
    labels = _draw_parts(image, analysis, sx, sy, unit) if audience == "adjuster" else []
    labels += _draw_damages(image, analysis, sx, sy, unit, audience)
    _write_labels(image, labels)
    _draw_issues(image, analysis, unit)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    if not ok:
        raise UnreadableImage("the overlay could not be encoded as JPEG")
    return encoded.tobytes()


def _points(polygon: Polygon, sx: float, sy: float) -> np.ndarray:
    return np.round(np.asarray(polygon, np.float32) * [sx, sy]).astype(np.int32)


def _draw_parts(
    image: np.ndarray, analysis: PhotoAnalysis, sx: float, sy: float, unit: float
) -> list[Label]:
    labels = []
    for part in analysis.parts:
        if len(part.polygon) >= 3:
            cv2.polylines(image, [_points(part.polygon, sx, sy)], True, PART_COLOUR, 1, cv2.LINE_AA)
        x = int(part.box.x1 * sx) + 2
        y = int(part.box.y1 * sy) + int(14 * unit)
        labels.append(Label(part.part.value.replace("_", " "), x, y, PART_COLOUR, unit * 0.45))
    return labels


def _draw_damages(
    image: np.ndarray,
    analysis: PhotoAnalysis,
    sx: float,
    sy: float,
    unit: float,
    audience: Audience,
) -> list[Label]:
    labels = []
    again = seen_again(analysis.damages)
    damages = [d for k, d in enumerate(analysis.damages) if k not in again]
    fill = image.copy()
    for damage in damages:
        colour = DAMAGE_COLOURS[damage.damage_type]
        if len(damage.polygon) >= 3:
            cv2.fillPoly(fill, [_points(damage.polygon, sx, sy)], colour, cv2.LINE_AA)
    cv2.addWeighted(fill, 0.4, image, 0.6, 0, dst=image)
    for damage in damages:
        colour = DAMAGE_COLOURS[damage.damage_type]
        thickness = max(1, round(SEVERITY_THICKNESS[damage.severity] * unit))
        p1 = (int(damage.box.x1 * sx), int(damage.box.y1 * sy))
        p2 = (int(damage.box.x2 * sx), int(damage.box.y2 * sy))
        cv2.rectangle(image, p1, p2, colour, thickness, cv2.LINE_AA)
        y = p1[1] - 4 if p1[1] > 20 * unit else p2[1] + int(16 * unit)
        labels.append(Label(damage_label(damage, audience), p1[0], y, colour, unit * 0.5))
    return labels


def damage_label(damage: DamageInstance, audience: Audience) -> str:
    """What a damage's label says: an adjuster also reads how sure it is (its chance where
    its model's curves read one, as the workspace shows it) and that it lies on no part."""
    text = f"{damage.severity.value} {damage.damage_type.value.replace('_', ' ')}"
    if audience == "adjuster":
        text += f" {damage.certainty:.0%}"
    if damage.part is not None:
        text += ", " + damage.part.value.replace("_", " ")
    elif audience == "adjuster":
        text += " (no part)"
    return text


def _write_labels(image: np.ndarray, labels: list[Label]) -> None:
    """Each label at its spot, moved down past the labels written before it."""
    sizes = [_text_size(label.text, label.scale) for label in labels]
    spots = [
        LabelSpot(label.x - 2, label.y, w + 4, h + base + 3)
        for label, (w, h, base) in zip(labels, sizes, strict=True)
    ]
    line = max((h + base + 4 for _, h, base in sizes), default=0)
    placed = place_labels(spots, line, limit=image.shape[0])
    for label, (_, y) in zip(labels, placed, strict=True):
        _label(image, label.text, (label.x, int(y)), label.colour, label.scale)


def _draw_issues(image: np.ndarray, analysis: PhotoAnalysis, unit: float) -> None:
    y = int(22 * unit)
    for issue in analysis.quality_issues:
        colour = (0, 0, 255) if issue.blocking else (0, 200, 255)
        _label(image, issue.message, (int(6 * unit), y), colour, unit * 0.5)
        y += int(22 * unit)


def _text_size(text: str, scale: float) -> tuple[int, int, int]:
    (w, h), base = cv2.getTextSize(_ascii(text), FONT, scale, max(1, round(scale * 2)))
    return w, h, base


def _ascii(text: str) -> str:
    # Hershey fonts cover ASCII only; keep labels legible rather than showing '?'.
    return text.encode("ascii", "replace").decode("ascii")


def _label(image: np.ndarray, text: str, origin: tuple[int, int], colour, scale: float) -> None:
    """Text on a dark box so it reads on any paint colour."""
    text = _ascii(text)
    thickness = max(1, round(scale * 2))
    (w, h), base = cv2.getTextSize(text, FONT, scale, thickness)
    x, y = origin
    cv2.rectangle(image, (x - 2, y - h - 3), (x + w + 2, y + base), (0, 0, 0), cv2.FILLED)
    cv2.putText(image, text, (x, y), FONT, scale, colour, thickness, cv2.LINE_AA)
