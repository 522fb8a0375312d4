"""Where the label tools write: each replaces only its own earlier output, and never leaves a
config that trains on half a data set."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from training.errors import TrainingError


def fresh_label_folders(out: Path, split: str) -> tuple[Path, Path]:
    """Empty `images` and `labels` folders of `split` under an earlier output (already
    checked by `refuse_foreign_output`); its dataset.yaml goes first, so an interrupted run
    never leaves a config that trains on half a data set."""
    (out / "dataset.yaml").unlink(missing_ok=True)
    if (out / split).exists():
        shutil.rmtree(out / split)
    images, labels = out / split / "images", out / split / "labels"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    return images, labels


def refuse_foreign_output(out: Path, names: tuple[str, ...]) -> None:
    """A label tool replaces its own earlier output only: a file, or a folder holding
    anything but `names`, is refused before anything is read or written."""
    if out.exists() and not out.is_dir():
        raise TrainingError(f"--out {out}: is a file; give a folder")
    if out.is_dir() and {p.name for p in out.iterdir()} - set(names):
        raise TrainingError(f"--out {out}: not empty and not an earlier output; give a new folder")


def polygon_line(class_id: int, polygon: list[float]) -> str:
    """One YOLO segmentation label line: the class, then the normalised polygon, clipped to
    the photo."""
    xy = np.clip(np.asarray(polygon, np.float64), 0.0, 1.0)
    return f"{class_id} " + " ".join(f"{v:.4f}" for v in xy)
