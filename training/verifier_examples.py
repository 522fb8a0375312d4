"""The fine-tuned verifier's examples (the train pass's labelled detections, cropped as the
served verifier crops them) and how a net's answers on them are scored
(`training.verifier_tune`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cdat.findings import Box
from training.damage_verifier import labels
from training.errors import TrainingError
from training.train_pass import TrainPhoto

if TYPE_CHECKING:
    from training.verifier_tune import VerifierTuneHyperparameters


@dataclass
class Examples:
    crops: np.ndarray
    """(N, 3, side, side) uint8 RGB crops."""
    extras: np.ndarray
    """(N, extras) float32 `verifier_extras`."""
    labels: np.ndarray
    """(N,) 1 real damage, 0 not damage."""
    sources: np.ndarray
    """(N,) the source of each example's photo."""

    def take(self, keep: np.ndarray) -> Examples:
        return Examples(self.crops[keep], self.extras[keep], self.labels[keep], self.sources[keep])


def examples_of(
    photos: Sequence[TrainPhoto], analyses: dict[str, Any], classes: Sequence[str],
    hp: VerifierTuneHyperparameters,
) -> tuple[Examples, np.ndarray]:  # fmt: skip
    """Every labelled detection's crop (as the served verifier crops it, as bytes) and
    extras, and the index of its photo in `photos`."""
    from inference.crops import damage_crop
    from inference.damage_verifier import verifier_extras
    from training.vehicle_gate import read_photo_scaled

    crops, extras, ys, sources, owners = [], [], [], [], []
    for k, photo in enumerate(photos):
        analysis = analyses[str(photo.path)]
        if not analysis.damages:
            continue
        y = labels(photo, analysis, hp.pass_hp())
        image, (sx, sy) = read_photo_scaled(photo.path)
        size = (analysis.width, analysis.height)
        for damage, label in zip(analysis.damages, y, strict=True):
            if label < 0:
                continue
            b = damage.box
            crop = damage_crop(image, Box(b.x1 / sx, b.y1 / sy, b.x2 / sx, b.y2 / sy), hp.side)
            crops.append(np.rint(crop * 255.0).astype(np.uint8))
            extras.append(verifier_extras(damage, analysis.parts, *size, classes))
            ys.append(int(label))
            sources.append(photo.source)
            owners.append(k)
    if len(set(ys)) < 2:
        raise TrainingError("the train pass found no real and no false damage to learn from")
    found = Examples(np.stack(crops), np.array(extras, np.float32), np.array(ys, np.int64),
                     np.array(sources))  # fmt: skip
    return found, np.array(owners)


def held_out_photos(count: int, share: float, seed: int) -> np.ndarray:
    """A seeded mask of the photos held out (at least one where there are two or more)."""
    rng = np.random.default_rng(seed + 1)
    held = rng.random(count) < share
    if count >= 2 and not held.any():
        held[rng.integers(count)] = True
    return held


def frozen_features(body: Any, crops: np.ndarray, batch: int = 64) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for start in range(0, len(crops), batch):
            x = torch.from_numpy(crops[start : start + batch].astype(np.float32) / 255.0)
            out.append(body.features(x).numpy())
    return np.concatenate(out)


def probabilities(net: Any, found: Examples, batch: int = 64) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for start in range(0, len(found.labels), batch):
            x = torch.from_numpy(found.crops[start : start + batch].astype(np.float32) / 255.0)
            out.append(net(x, torch.from_numpy(found.extras[start : start + batch])).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def scores(p: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Log loss and ROC AUC (the chance a real example outranks a false one, ties half)."""
    p = np.clip(p.astype(np.float64), 1e-6, 1 - 1e-6)
    loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    real, false = p[y == 1], p[y == 0]
    if not len(real) or not len(false):
        return {"log_loss": round(loss, 4), "roc_auc": float("nan")}
    # ranks of both together, ties sharing their mean rank
    _, inverse, counts = np.unique(np.concatenate([real, false]), return_inverse=True,
                                   return_counts=True)  # fmt: skip
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse]
    auc = (ranks[: len(real)].sum() - len(real) * (len(real) + 1) / 2) / (len(real) * len(false))
    return {"log_loss": round(loss, 4), "roc_auc": round(float(auc), 4)}
