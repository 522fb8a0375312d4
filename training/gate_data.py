"""The photos the vehicle gate learns from and is measured on, by source and split.

Vehicle photos come from the four car sets in the project's own splits, so that no val or
test photo of the damage and part models is ever trained on: `car-parts`, `damage-severity`
and `damaged-parts` through their dataset configs and the conversion's seeded re-split
(`training.convert.assign_splits`), `car-parts-damage` through its published,
de-duplicated folders (`train`, `valid`, `test`). Photos without a vehicle are the
`no-vehicle` set in `training.no_vehicle`'s split (non-commercial and no-derivative photos
only ever measure).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from training.convert import IMAGE_SUFFIXES, split_records
from training.dataconfig import REPO_ROOT, default_data_root, load_dataset_config
from training.errors import DatasetError
from training.no_vehicle import FOLDER as NO_VEHICLE
from training.no_vehicle import no_vehicle_split

CONFIG_SOURCES = {
    "car-parts": REPO_ROOT / "datasets" / "car-parts.yaml",
    "damage-severity": REPO_ROOT / "datasets" / "damage-severity.yaml",
    "damaged-parts": REPO_ROOT / "datasets" / "damaged-parts.yaml",
}
"""Vehicle sources read through a dataset config, split as the conversion splits them."""
FOLDER_SOURCES = {"car-parts-damage": {"train": "train", "val": "valid", "test": "test"}}
"""Vehicle sources whose published folders are the split (already grouped by photo)."""
FOLDER_LICENCES = {
    "car-parts-damage": "CC BY 4.0 (Roboflow bhone-myint-swe-c83rj/car-parts-damage-j7yeo v1)"
}
VEHICLE_SOURCES = (*CONFIG_SOURCES, *FOLDER_SOURCES)
CLOSEUP_SOURCES = ("car-parts-damage", "damaged-parts")
"""Sources of damaged close-ups: the gate must not refuse these."""
WHOLE_CAR_SOURCES = ("car-parts",)


@dataclass(frozen=True)
class GatePhoto:
    path: Path
    source: str
    split: str
    vehicle: bool


def vehicle_photos(source: str, split: str, data_root: Path, seed: int = 0) -> list[GatePhoto]:
    """One source's photos of one split (`train`, `val` or `test`)."""
    if source in CONFIG_SOURCES:
        paths = _config_split(CONFIG_SOURCES[source], split, seed, data_root)
    elif source in FOLDER_SOURCES:
        folder = data_root / source / FOLDER_SOURCES[source][split] / "images"
        if not folder.is_dir():
            raise DatasetError(f"{source}: no {split} images at {folder} (set CDAT_DATA_ROOT)")
        paths = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    else:
        raise DatasetError(f"unknown vehicle source {source!r} (known: {VEHICLE_SOURCES})")
    return [GatePhoto(path, source, split, True) for path in sorted(paths)]


def _config_split(config: Path, split: str, seed: int, data_root: Path) -> list[Path]:
    """The photos the conversion puts in `split` (every photo, labelled or not: the
    split is assigned over all of them, as `training.convert.write_dataset` does)."""
    return [r.image for r in split_records(load_dataset_config(config, data_root), split, seed)]


def non_vehicle_photos(split: str, data_root: Path) -> list[GatePhoto]:
    return [GatePhoto(p.path, NO_VEHICLE, split, False) for p in no_vehicle_split(data_root, split)]


def gate_photos(
    split: str,
    data_root: Path | None = None,
    sources: Iterable[str] = VEHICLE_SOURCES,
    seed: int = 0,
) -> list[GatePhoto]:
    """Every vehicle source's photos of `split`, then the no-vehicle photos of it."""
    root = data_root or default_data_root()
    photos = [p for source in sources for p in vehicle_photos(source, split, root, seed)]
    return photos + non_vehicle_photos(split, root)


def data_licences(data_root: Path | None = None) -> list[dict[str, str]]:
    """Name and licence of every source the gate trains on (`cdat_run.json`'s `data`); for
    the no-vehicle photos, the licences of its train split, counted."""
    from collections import Counter

    root = data_root or default_data_root()
    out = [
        {"name": name, "licence": load_dataset_config(config, root).licence.strip()}
        for name, config in CONFIG_SOURCES.items()
    ]
    out += [{"name": name, "licence": FOLDER_LICENCES[name]} for name in FOLDER_SOURCES]
    counts = Counter(p.licence for p in no_vehicle_split(root, "train"))
    listed = ", ".join(f"{licence} x{n}" for licence, n in sorted(counts.items()))
    note = "(authors and sources: no-vehicle/attribution.csv)"
    out.append({"name": NO_VEHICLE, "licence": f"per photo, train split only: {listed} {note}"})
    return out
