"""The severity stage: minor / moderate / severe for one detected damage, apart from its type.

The detector finds damage *types*; how bad each one is depends on its size, its share of
the photo, and what the crop looks like (torn edges, dark holes, crumpled texture against
the smooth panel around it). `severity_features` turns a damage mask and its photo into
those numbers, the same way in training (from labelled polygons) and in serving (from the
detector's mask grid); `SeverityModel` is a multinomial logistic regression over them,
stored as JSON beside the detector (no framework needed to serve or train it).

    model = SeverityModel.load(path)
    severity, probability = model.predict(severity_features(image, mask, DamageType.DENT))
    view = severity_view(image)                  # once per photo, for each of its damages:
    severity, probability = model.predict(view_features(view, mask, DamageType.DENT))
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from cdat.taxonomy import DamageType, Severity
from inference.errors import ModelUnavailable

FEATURE_VERSION = 1
WORK_SIDE = 256
"""Photos are resized so their long side is this before features are measured."""
SEVERITIES = tuple(Severity)
# Lamps and glass are broken parts for severity: their own photos carry no severity label,
# so they share what broken panels taught.
_TYPE_GROUP = {DamageType.DENT: 0, DamageType.SCRATCH: 1}
TYPE_GROUPS = 3
FEATURE_NAMES = (
    *(f"type_{g}" for g in ("dent", "scratch", "broken")),
    "log_area_share",
    "sqrt_area_share",
    "box_width_share",
    "box_height_share",
    "log_aspect",
    "fill",
    "gray_mean_in",
    "gray_std_in",
    "sat_mean_in",
    "dark_in",
    "bright_in",
    "gray_mean_diff",
    "sat_mean_diff",
    "grad_in",
    "grad_ring",
    "grad_ratio",
    "edges_in",
    "edges_ring",
    "laplacian_in",
    "components",
    *(f"{t}_x_{f}" for t in ("dent", "scratch", "broken") for f in ("log_area", "edges", "dark")),
)


def _type_group(damage_type: DamageType) -> int:
    return _TYPE_GROUP.get(damage_type, 2)


def _working_size(shape: tuple[int, ...]) -> tuple[int, int]:
    height, width = shape[:2]
    scale = WORK_SIDE / max(height, width)
    return max(1, round(width * scale)), max(1, round(height * scale))


@dataclass(frozen=True)
class SeverityView:
    """The planes every damage of one photo is measured on, computed once per photo: a
    photo with five damages used to resize and filter the whole photo five times."""

    size: tuple[int, int]
    """(width, height) of the working view."""
    gray: np.ndarray
    hsv: np.ndarray
    grad: np.ndarray
    edges: np.ndarray
    laplacian: np.ndarray


def severity_view(image: np.ndarray) -> SeverityView:
    """`image` BGR uint8 -> its working view (long side `WORK_SIDE`)."""
    size = _working_size(image.shape)
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV).astype(np.float32) / 255.0
    grad = np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    edges = cv2.Canny((gray * 255).astype(np.uint8), 60, 160) > 0
    laplacian = np.abs(cv2.Laplacian(gray, cv2.CV_32F))
    return SeverityView(size, gray, hsv, grad, edges, laplacian)


def severity_features(image: np.ndarray, mask: np.ndarray, damage_type: DamageType) -> np.ndarray:
    """Scale-free features of one damage: `image` BGR uint8, `mask` bool of any size
    covering the same view (the detector's grid or the photo itself)."""
    return view_features(severity_view(image), mask, damage_type)


def view_features(view: SeverityView, mask: np.ndarray, damage_type: DamageType) -> np.ndarray:
    """`severity_features` on a photo's precomputed `severity_view`."""
    size, gray, hsv = view.size, view.gray, view.hsv
    grad, edges, laplacian = view.grad, view.edges, view.laplacian
    region = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    if not region.any():  # a sliver thinner than a working pixel: keep its location
        ys, xs = np.nonzero(mask)
        gy, gx = size[1] / mask.shape[0], size[0] / mask.shape[1]
        if len(ys):
            region[int(ys.mean() * gy), int(xs.mean() * gx)] = True
        else:
            region[size[1] // 2, size[0] // 2] = True
    ring_width = max(3, round(0.03 * WORK_SIDE))
    area = float(region.mean())
    ys, xs = np.nonzero(region)
    box_w = (xs.max() - xs.min() + 1) / size[0]
    box_h = (ys.max() - ys.min() + 1) / size[1]
    fill = region.sum() / max(1.0, box_w * size[0] * box_h * size[1])
    # Everything below reads only the damage and its ring, which lie within its box widened
    # by the ring: measured there, a photo of 40 damages costs a fraction of the whole view
    # each, with the very same figures (the same pixels, in the same order).
    window = np.s_[
        max(0, ys.min() - ring_width) : ys.max() + ring_width + 1,
        max(0, xs.min() - ring_width) : xs.max() + ring_width + 1,
    ]
    region = region[window]
    gray, hsv, grad = gray[window], hsv[window], grad[window]
    edges, laplacian = edges[window], laplacian[window]
    kernel = np.ones((2 * ring_width + 1, 2 * ring_width + 1), np.uint8)
    ring = (cv2.dilate(region.astype(np.uint8), kernel) > 0) & ~region
    if not ring.any():  # the damage fills the photo: compare with itself
        ring = region
    components = cv2.connectedComponents(region.astype(np.uint8))[0] - 1
    value_in = hsv[..., 2][region]
    grad_in, grad_ring = float(grad[region].mean()), float(grad[ring].mean())
    edges_in = float(edges[region].mean())
    dark_in = float((value_in < 0.2).mean())
    log_area = float(np.log(area + 1e-4))
    group = _type_group(damage_type)
    one_hot = np.zeros(TYPE_GROUPS)
    one_hot[group] = 1.0
    interactions = np.outer(one_hot, [log_area, edges_in, dark_in]).reshape(-1)
    base = [
        log_area,
        float(np.sqrt(area)),
        float(box_w),
        float(box_h),
        float(np.log(box_w / box_h)),
        float(fill),
        float(gray[region].mean()),
        float(gray[region].std()),
        float(hsv[..., 1][region].mean()),
        dark_in,
        float((value_in > 0.9).mean()),
        float(gray[region].mean() - gray[ring].mean()),
        float(hsv[..., 1][region].mean() - hsv[..., 1][ring].mean()),
        grad_in,
        grad_ring,
        float(np.log((grad_in + 1e-3) / (grad_ring + 1e-3))),
        edges_in,
        float(edges[ring].mean()),
        float(laplacian[region].mean()),
        float(np.log1p(components)),
    ]
    return np.concatenate([one_hot, base, interactions]).astype(np.float64)


def softmax_of_standardised(
    features: np.ndarray, mean: list[float], scale: list[float], weights: list[list[float]]
) -> np.ndarray:
    """Softmax over ((features - mean) / scale, 1) @ weights, one row per example: how a
    stored severity stage (its last weight row the bias) reads its features."""
    x = (np.atleast_2d(features) - np.asarray(mean)) / np.asarray(scale)
    logits = np.hstack([x, np.ones((len(x), 1))]) @ np.asarray(weights)
    logits -= logits.max(1, keepdims=True)
    odds = np.exp(logits)
    return np.asarray(odds / odds.sum(1, keepdims=True))


@dataclass(frozen=True)
class SeverityModel:
    """Standardised features -> softmax over minor / moderate / severe."""

    mean: list[float]
    scale: list[float]
    weights: list[list[float]]
    """(features + 1 bias) x 3."""
    feature_version: int = FEATURE_VERSION
    trained_on: str = ""

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        return softmax_of_standardised(features, self.mean, self.scale, self.weights)

    def predict(self, features: np.ndarray) -> tuple[Severity, float]:
        p = self.probabilities(features)[0]
        k = int(p.argmax())
        return SEVERITIES[k], float(p[k])

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> SeverityModel:
        try:
            model = cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise ModelUnavailable(f"cannot load severity model {path}: {exc}") from exc
        if model.feature_version != FEATURE_VERSION:
            raise ModelUnavailable(
                f"{path}: severity features v{model.feature_version}, this code measures "
                f"v{FEATURE_VERSION}; retrain it (python -m training.severity)"
            )
        width = len(FEATURE_NAMES)
        if len(model.mean) != width or np.asarray(model.weights).shape != (width + 1, 3):
            raise ModelUnavailable(f"{path}: expects a different feature set than this code")
        return model
