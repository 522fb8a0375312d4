"""Features of a part-family stage's regions for training its head: each region's crop (and
mirrored crop), and for a `--context` head its photo's features and where it lies
(training/part_family.py trains on them)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cdat.findings import Box

if TYPE_CHECKING:
    from training.part_family import Region


def pooled(net: Any, crops: list[np.ndarray]) -> np.ndarray:
    """The net's pooled layers on (3, side, side) crops."""
    import torch

    with torch.no_grad():
        return np.asarray(net.features(torch.from_numpy(np.stack(crops))).numpy(), np.float64)


def extract(net: Any, items: Sequence[Region], side: int, mirrored: bool) -> np.ndarray:
    """Pooled features of each region's crop (then, with `mirrored`, of each mirrored),
    a batch at a time: the crops of every detection would not fit in memory."""
    from inference.crops import damage_crop
    from training.vehicle_gate import read_photo

    plain: list[np.ndarray] = []
    flipped: list[np.ndarray] = []
    photo, path = None, None
    for start in range(0, len(items), 32):
        crops = []
        for item in items[start : start + 32]:
            if item.image != path:
                photo, path = read_photo(item.image), item.image
            assert photo is not None
            h, w = photo.shape[:2]
            b = item.box
            crops.append(damage_crop(photo, Box(b.x1 * w, b.y1 * h, b.x2 * w, b.y2 * h), side))
        plain.append(pooled(net, crops))
        if mirrored:
            flipped.append(pooled(net, [c[:, :, ::-1].copy() for c in crops]))
    out = plain + flipped
    return np.concatenate(out) if out else np.zeros((0, 0))


def photo_features(net: Any, items: Sequence[Region], side: int, mirrored: bool) -> np.ndarray:
    """The pooled layers of each region's whole photo (`inference.crops.photo_crop`, once a
    photo), in `extract`'s order: plain, then (with `mirrored`) of the mirrored photo."""
    from inference.crops import photo_crop
    from training.vehicle_gate import read_photo

    paths = sorted({r.image for r in items})
    plain: dict[Path, np.ndarray] = {}
    flipped: dict[Path, np.ndarray] = {}
    for start in range(0, len(paths), 32):
        batch = paths[start : start + 32]
        crops = [photo_crop(read_photo(path), side) for path in batch]
        plain.update(zip(batch, pooled(net, crops), strict=True))
        if mirrored:
            mirror = [c[:, :, ::-1].copy() for c in crops]
            flipped.update(zip(batch, pooled(net, mirror), strict=True))
    rows = [np.stack([plain[r.image] for r in items])]
    if mirrored:
        rows.append(np.stack([flipped[r.image] for r in items]))
    return np.concatenate(rows)


def positions(items: Sequence[Region], mirrored: bool) -> np.ndarray:
    """Where each region lies in its photo (`inference.crops.box_position`), in `extract`'s
    order: a mirrored region's centre is mirrored too."""
    from inference.crops import box_position

    where = np.array([box_position(r.box, 1.0, 1.0) for r in items], np.float64).reshape(-1, 4)
    if not mirrored:
        return where
    mirror = where.copy()
    mirror[:, 0] = 1.0 - mirror[:, 0]
    return np.concatenate([where, mirror])


def context_extras(net: Any, items: Sequence[Region], side: int, mirrored: bool) -> np.ndarray:
    """A `--context` head's `extras` for each region: its photo's features, its position."""
    return np.hstack([photo_features(net, items, side, mirrored), positions(items, mirrored)])
