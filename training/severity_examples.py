"""Severity examples: each labelled damage as the severity stage's features and its grade.

`collect` reads a converted damage data set (a severity sidecar beside each label file);
`collect_graded` reads a set that grades whole photos (`training.closeup.photo_grade`), each
outline taking its photo's grade. Both give `Examples` that `training.severity` fits on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from cdat.taxonomy import DamageType, Severity
from inference.severity import SEVERITIES, severity_features
from training.dataconfig import DAMAGE_TYPE_NAMES
from training.errors import TrainingError


@dataclass(frozen=True)
class Examples:
    features: np.ndarray
    labels: np.ndarray
    """Index into SEVERITIES."""
    weights: np.ndarray | None = None
    """Each example's weight beside its severity's class weight (None: 1 each)."""

    def __len__(self) -> int:
        return len(self.labels)

    def weighted(self, total: float) -> Examples:
        """The same examples, weighing `total` together."""
        return Examples(self.features, self.labels, np.full(len(self), total / max(len(self), 1)))

    @property
    def example_weights(self) -> np.ndarray:
        return np.ones(len(self)) if self.weights is None else self.weights


LabelledDamage = tuple[np.ndarray, np.ndarray, str, str]
PANEL_TYPES = (DamageType.DENT, DamageType.SCRATCH, DamageType.BROKEN_PART)
"""What the detector may call a damage on a panel: one example each for an untyped outline."""


def labelled_damages(data_yaml: Path, split: str) -> Iterator[LabelledDamage]:
    """(photo BGR, mask, damage type, severity) of every labelled damage with a severity."""
    import cv2

    if not data_yaml.is_file():
        raise TrainingError(f"--data {data_yaml}: no such data.yaml (cdat convert writes one)")
    data = yaml.safe_load(data_yaml.read_text())
    names = [str(n) for n in data["names"].values()]
    images = Path(data["path"]) / data[split]
    if not images.is_dir():
        raise TrainingError(f"{data_yaml}: split '{split}' has no images folder {images}")
    for image_path in sorted(images.iterdir()):
        label = images.parent.parent / "labels" / split / f"{image_path.stem}.txt"
        sidecar = images.parent.parent / "severity" / split / f"{image_path.stem}.txt"
        if not (label.exists() and sidecar.exists()):
            continue
        rows, severities = label.read_text().splitlines(), sidecar.read_text().splitlines()
        if not any(s in Severity._value2member_map_ for s in severities):
            continue
        image = cv2.imread(str(image_path))
        if image is None:
            raise TrainingError(f"cannot read {image_path}")
        height, width = image.shape[:2]
        for row, severity in zip(rows, severities, strict=True):
            if severity not in Severity._value2member_map_:
                continue
            values = row.split()
            points = np.array(values[1:], np.float64).reshape(-1, 2) * [width, height]
            mask = np.zeros((height, width), np.uint8)
            cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
            yield image, mask.astype(bool), names[int(values[0])].rpartition("-")[2], severity


CLOSEUP_SHARES = (0.3, 0.9)
"""A close-up view's damage takes this share of its side (drawn uniformly between)."""


def collect(data_yaml: Path, split: str, closeup_views: bool = False) -> Examples:
    """Every labelled damage of the split; with `closeup_views`, each also as a close-up
    (`closeup_view`) where it is not one already."""
    rows, labels = [], []
    rng = np.random.default_rng(0)
    for image, mask, type_name, severity in labelled_damages(data_yaml, split):
        if type_name not in DAMAGE_TYPE_NAMES:
            raise TrainingError(f"{data_yaml}: unknown damage type {type_name!r}")
        views = [(image, mask)]
        if closeup_views and (view := closeup_view(image, mask, rng)) is not None:
            views.append(view)
        for seen, region in views:
            rows.append(severity_features(seen, region, DamageType(type_name)))
            labels.append(SEVERITIES.index(Severity(severity)))
    if not rows:
        raise TrainingError(f"{data_yaml}: no labelled severities in split '{split}'")
    return Examples(np.vstack(rows), np.asarray(labels))


def closeup_view(
    image: np.ndarray, mask: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray] | None:
    """The damage as a close-up shows it: a square crop centred on its box, the box's longer
    side a random share (`CLOSEUP_SHARES`) of the crop's; None where the damage already
    fills that much of the photo. A close-up fills the frame with a damage whatever its
    grade, so the stage learns severity there from what the damage looks like."""
    ys, xs = np.nonzero(mask)
    if not len(ys):
        return None
    height, width = mask.shape
    longer = max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    low, high = CLOSEUP_SHARES
    if longer > high * min(height, width):
        return None
    side = min(round(longer / rng.uniform(low, high)), height, width)
    left = int(np.clip(round((xs.min() + xs.max() + 1 - side) / 2), 0, width - side))
    top = int(np.clip(round((ys.min() + ys.max() + 1 - side) / 2), 0, height - side))
    crop = (slice(top, top + side), slice(left, left + side))
    return image[crop], mask[crop]


def graded_damages(config: Path, split: str, seed: int = 0) -> Iterator[LabelledDamage]:
    """(photo BGR, mask, damage type, grade) of every outline on a graded photo of `config`'s
    split (its re-split, seed 0 as converted); an untyped outline once per panel type."""
    import cv2

    from training.closeup import held_out_photos, photo_grader
    from training.dataconfig import load_dataset_config

    classes = load_dataset_config(config).classes
    grade_of = photo_grader(config)
    for image_path, instances in held_out_photos(config, split, seed):
        grade = grade_of(image_path)
        if grade is None or not instances:
            continue
        image = cv2.imread(str(image_path))
        if image is None:
            raise TrainingError(f"cannot read {image_path}")
        height, width = image.shape[:2]
        for name, polygon in instances:
            points = np.asarray(polygon, np.float64).reshape(-1, 2) * [width, height]
            mask = np.zeros((height, width), np.uint8)
            cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
            if not mask.any():
                continue
            named = classes.get(name)
            for kind in [DamageType(named)] if named else PANEL_TYPES:
                yield image, mask.astype(bool), kind.value, grade.value


def collect_graded(config: Path, split: str) -> Examples:
    rows, labels = [], []
    for image, mask, type_name, severity in graded_damages(config, split):
        rows.append(severity_features(image, mask, DamageType(type_name)))
        labels.append(SEVERITIES.index(Severity(severity)))
    if not rows:
        raise TrainingError(f"--graded {config}: no graded outlines in split '{split}'")
    return Examples(np.vstack(rows), np.asarray(labels))


def joined(sets: list[Examples]) -> Examples:
    return Examples(
        np.vstack([e.features for e in sets]),
        np.hstack([e.labels for e in sets]),
        np.hstack([e.example_weights for e in sets]),
    )
