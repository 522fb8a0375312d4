"""Background photos for the damage detector: intact cars, and scenes without a vehicle.

A photo with no label teaches Ultralytics' detector that nothing in it is damage. Two kinds:

* whole-car photos of `car-parts` (all of intact cars), from the *train* split of its re-split
  (the split `training/convert.py` makes; val and test photos are never read), less the
  photos listed in `--exclude` (default `datasets/car-parts-damaged.txt`: photos that do show
  damage, found by running the damage model and looking at what it flagged);
* `no-vehicle` photos whose split is `train` (`training/no_vehicle.py`: licences that allow
  training only);
* with `--closeups`, close-up windows of those intact train cars
  (`training/intact_closeups.py`): the detector has only ever seen intact cars whole, and
  on close-ups of intact panels it reports damage (`intact_closeups_with_damage`).

It writes a YOLO data set of empty labels and its dataset config, which a damage training
config lists beside the labelled sets (`datasets/damage-claims.yaml`)::

    python -m training.backgrounds --out runs/backgrounds
    python -m training.backgrounds --out runs/backgrounds --closeups
    python -m training.train --config datasets/damage-claims.yaml \\
        --init inference/models/damage-claims-seg-n-20261201.pt --imgsz 416 --freeze 10
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from training.convert import split_records
from training.dataconfig import REPO_ROOT, default_data_root, load_dataset_config
from training.errors import TrainingError, run_script
from training.intact_closeups import IntactCloseup, intact_closeups
from training.label_output import fresh_label_folders, refuse_foreign_output
from training.no_vehicle import no_vehicle_split

SPLIT = "train"
OUTPUT_NAMES = (SPLIT, "dataset.yaml", "summary.json")
CAR_PARTS = REPO_ROOT / "datasets" / "car-parts.yaml"
EXCLUDE = REPO_ROOT / "datasets" / "car-parts-damaged.txt"
CLOSEUPS = "car-parts-intact-closeup"


def read_exclusions(path: Path) -> set[str]:
    """File names, one a line; `#` starts a comment (say why a photo is left out)."""
    if not path.is_file():
        raise TrainingError(f"--exclude {path}: not a file")
    names = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return {name for name in names if name}


def split_photos(config: Path, split: str, seed: int, data_root: Path | None = None) -> list[Path]:
    """The photos of one split of a data set's (re-)split, as `training/convert.py` makes it."""
    return [rec.image for rec in split_records(load_dataset_config(config, data_root), split, seed)]


def background_photos(data_root: Path, exclude: set[str], seed: int) -> dict[str, list[Path]]:
    cars = split_photos(CAR_PARTS, SPLIT, seed, data_root)
    return {
        "car-parts-intact": [image for image in cars if image.name not in exclude],
        "no-vehicle": [p.path for p in no_vehicle_split(data_root, SPLIT)],
    }


def background_closeups(data_root: Path, exclude: set[str], seed: int) -> list[IntactCloseup]:
    """Close-up windows of the intact train cars (their part outlines say where the car is)."""
    config = load_dataset_config(CAR_PARTS, data_root)
    cars = split_records(config, SPLIT, seed)
    return intact_closeups((r.image, r.instances) for r in cars if r.image.name not in exclude)


def dataset_config(out: Path) -> dict[str, Any]:
    return {
        "name": "backgrounds",
        "task": "damage",
        "format": "yolo",
        "root": str(out.resolve()),
        "licence": "per source: car-parts (research, cite Pasupa et al. 2021; no explicit "
        "licence), no-vehicle train photos (CC BY / BY-SA / CC0 / GPL / LGPL / public domain, "
        "per photo in its manifest.csv)",
        "attribution": "car-parts: Pasupa, Kittiworapanya, Hongngern, Woraratpanya, Complex & "
        "Intelligent Systems 2021, doi 10.1007/s40747-021-00397-8; no-vehicle: per photo in "
        "its attribution.csv",
        "card": "backgrounds.md",
        "names": ["damage"],
        "splits": {"train": {"images": "train/images", "labels": "train/labels"}},
        "classes": {"damage": None},
    }


def write_backgrounds(
    out: Path, photos: dict[str, list[Path]], closeups: Sequence[IntactCloseup] = ()
) -> dict[str, Any]:
    images, labels = fresh_label_folders(out, SPLIT)
    for source, paths in photos.items():
        for path in paths:
            name = f"{source}__{path.name}"
            shutil.copyfile(path, images / name)
            (labels / f"{Path(name).stem}.txt").write_text("")
    for closeup in closeups:
        name = f"{CLOSEUPS}__{closeup.name}"
        (images / name).write_bytes(closeup.jpeg)
        (labels / f"{Path(name).stem}.txt").write_text("")
    (out / "dataset.yaml").write_text(yaml.safe_dump(dataset_config(out), sort_keys=False))
    report = {source: len(paths) for source, paths in photos.items()}
    if closeups:
        report[CLOSEUPS] = len(closeups)
    (out / "summary.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument(
        "--out", type=Path, required=True, help="folder to write (an earlier output is replaced)"
    )
    parser.add_argument(
        "--exclude", type=Path, default=EXCLUDE, help="car-parts photos that show damage"
    )
    parser.add_argument(
        "--closeups",
        action="store_true",
        help="also close-up windows of the intact cars (training/intact_closeups.py)",
    )
    parser.add_argument("--data-root", type=Path, default=None, help="default: $CDAT_DATA_ROOT")
    parser.add_argument("--seed", type=int, default=0, help="re-split seed (as converted)")
    return parser


def main(args: argparse.Namespace) -> int:
    refuse_foreign_output(args.out, OUTPUT_NAMES)
    data_root = args.data_root or default_data_root()
    exclude = read_exclusions(args.exclude)
    photos = background_photos(data_root, exclude, args.seed)
    closeups = background_closeups(data_root, exclude, args.seed) if args.closeups else []
    report = write_backgrounds(args.out, photos, closeups)
    print(json.dumps(report, indent=1))
    print(f"wrote {args.out / 'dataset.yaml'}")
    return 0


if __name__ == "__main__":
    run_script(main, get_args_parser())
