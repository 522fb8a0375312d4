"""Which photos of the `no-vehicle` set may teach a model, and which only measure it.

The set (`$CDAT_DATA_ROOT/no-vehicle`, its README) has no split and mixed licences: 329 of its
COCO photos are non-commercial only and some are no-derivatives. Those are used to measure,
never to train, and so are a seeded fifth of the rest; another fifth of the rest chooses
thresholds (val). The split is a pure function of the file name, so every tool that reads the
set (the vehicle gate's training, the damage detector's background photos, the evaluation)
agrees on it without a stored list.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

from training.errors import DatasetError

FOLDER = "no-vehicle"
MEASURE_ONLY_MARKS = ("-NC", "-ND")
"""Licence tags that forbid what a trained model is (a commercial use, a derivative)."""


@dataclass(frozen=True)
class NoVehiclePhoto:
    path: Path
    licence: str
    source: str

    @property
    def trainable(self) -> bool:
        return not any(mark in self.licence.upper() for mark in MEASURE_ONLY_MARKS)

    @property
    def split(self) -> str:
        """`train`, `val` or `test`: photos that may not teach are always `test`."""
        if not self.trainable:
            return "test"
        bucket = int(hashlib.sha1(self.path.name.encode()).hexdigest(), 16) % 5
        return {0: "val", 1: "test"}.get(bucket, "train")


def read_no_vehicle(data_root: Path) -> list[NoVehiclePhoto]:
    folder = data_root / FOLDER
    manifest = folder / "manifest.csv"
    if not manifest.is_file():
        raise DatasetError(f"no-vehicle photos not found: {manifest} (set CDAT_DATA_ROOT)")
    with manifest.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    photos = [
        NoVehiclePhoto(folder / "images" / row["file"], row["licence"], row["source"])
        for row in rows
    ]
    missing = [p.path for p in photos if not p.path.is_file()]
    if missing:
        raise DatasetError(f"no-vehicle: {len(missing)} listed photos missing, e.g. {missing[0]}")
    return photos


def no_vehicle_split(data_root: Path, split: str) -> list[NoVehiclePhoto]:
    return [p for p in read_no_vehicle(data_root) if p.split == split]
