"""Damage-type labels for damaged panels: the human outline, the damage model's type.

`damaged-parts` outlines every damaged region of a photo and names the part it lies on,
but not the damage type. `Light` and `Windshield` regions are typed by their part (a
broken lamp, shattered glass); a region on a panel (`Bonnet`, `Bumper`, `Dickey`, `Door`,
`Fender`) may be a dent, a scratch or a torn part, so `datasets/damage.yaml` leaves those
photos out. This tool types them, so that the damage detector sees the ~2,900 training
photos of damaged panels it does not see today:

* the damage model runs on every photo of the *train* split of the config's re-split (the
  same groups as `training/convert.py` and `training/closeup.py`; val and test photos are
  never read), asked for detections down to `--conf`;
* a panel region takes the type of the highest-scoring detection of a panel type (dent,
  scratch, broken_part) whose mask overlaps it at IoU `--iou` or above: the labeller said
  where the damage is, the model only says which of the three kinds it is. A lamp or glass
  type is never given to a panel: the model's guess of one there is wrong by construction;
* a region the config maps to a type itself (`Light` -> lamp_broken) keeps that type;
* a photo is kept only when every region is typed, with the labeller's outlines as masks,
  so nothing the labeller marked as damage is taught as background.

It writes a YOLO data set and its dataset config, which a damage training config lists
beside the human-typed sets (`datasets/damage-panels.yaml`). The damage-claims labels were
made with a model since superseded, whose file its card restores from history
(`inference/models/damage-type-seg-n-20261127.md`)::

    python -m training.damage_pseudo --damage inference/models/damage-type-seg-n-20261127.onnx \
        --out runs/pseudo/damage-panels
    python -m training.train --config datasets/damage-panels.yaml \
        --init inference/models/damage-type-seg-n-20261127.pt --imgsz 416
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from cdat.taxonomy import DamageType
from training.closeup import DEFAULT_CONFIG, _polygon_mask, held_out_photos
from training.dataconfig import load_dataset_config
from training.errors import TrainingError, run_script
from training.label_output import fresh_label_folders, polygon_line, refuse_foreign_output

SPLIT = "train"
OUTPUT_NAMES = (SPLIT, "dataset.yaml", "summary.json")
"""What the tool writes: a folder holding anything else is not its output, and is refused."""
PANEL_TYPES = (DamageType.DENT, DamageType.SCRATCH, DamageType.BROKEN_PART)
"""What damage on a panel can be; the model chooses among these only."""


@dataclass(frozen=True)
class TypeSettings:
    conf: float = 0.01
    """Lowest damage score that may name a region's type: the region itself is known
    damage, so a faint detection is enough to say which kind."""
    iou: float = 0.3
    """Overlap (mask IoU) a detection needs with a region to type it; the damage-recall
    metric counts a damage found at the same overlap."""
    fallback: DamageType | None = None
    """Type of a panel region no detection types. None leaves its photo out; a type keeps
    the photo, so heavy damage the model misses altogether (the damage most worth
    teaching) is not left out for being missed."""


@dataclass(frozen=True)
class Detection:
    damage_type: DamageType
    score: float
    mask: np.ndarray
    """bool, photo size."""


Detector = Callable[[Path], tuple[tuple[int, int], list[Detection]]]
"""A photo -> its (height, width) and the damage model's detections on it."""


@dataclass
class TypeTally:
    photos: int = 0
    kept: int = 0
    regions: Counter[str] = field(default_factory=Counter)
    typed: Counter[str] = field(default_factory=Counter)
    labels: Counter[str] = field(default_factory=Counter)
    """(source class -> type) counts of the labels written."""

    def report(self) -> dict[str, Any]:
        return {
            "photos_with_panel_damage": self.photos,
            "photos_kept": self.kept,
            "regions_per_class": dict(sorted(self.regions.items())),
            "typed_per_class": dict(sorted(self.typed.items())),
            "labels": dict(sorted(self.labels.items())),
        }


def region_type(
    region: np.ndarray, detections: Iterable[Detection], cfg: TypeSettings
) -> DamageType | None:
    """The panel type of the strongest detection overlapping the region; None if none."""
    best: Detection | None = None
    for det in detections:
        if det.damage_type not in PANEL_TYPES or det.score < cfg.conf:
            continue
        union = float((det.mask | region).sum())
        if union == 0 or float((det.mask & region).sum()) / union < cfg.iou:
            continue
        if best is None or det.score > best.score:
            best = det
    return None if best is None else best.damage_type


def photo_types(
    instances: list[tuple[str, list[float]]],
    fixed: dict[str, DamageType],
    shape: tuple[int, int],
    detections: list[Detection],
    cfg: TypeSettings,
) -> list[DamageType] | None:
    """The type of every region, in order; None when a panel region cannot be typed."""
    types = []
    for name, polygon in instances:
        if name in fixed:
            types.append(fixed[name])
            continue
        found = region_type(_polygon_mask(polygon, shape, scale=True), detections, cfg)
        found = found or cfg.fallback
        if found is None:
            return None
        types.append(found)
    return types


def dataset_config(out: Path, source: Path, names: list[str]) -> dict[str, Any]:
    ds = load_dataset_config(source)
    return {
        "name": f"{ds.name}-types-pseudo",
        "task": "damage",
        "format": "yolo",
        "root": str(out.resolve()),
        "licence": ds.licence,
        "attribution": f"damage types named by training/damage_pseudo.py on {ds.name}'s "
        "outlines: " + ds.attribution.strip(),
        "card": f"{ds.name}-types-pseudo.md",
        "names": names,
        "splits": {"train": {"images": "train/images", "labels": "train/labels"}},
        "classes": {n: n for n in names},
    }


def type_map(config: Path) -> tuple[dict[str, DamageType], set[str]]:
    """Source classes typed by the config itself, and those a damage model must type."""
    ds = load_dataset_config(config)
    if ds.task != "damage":
        raise TrainingError(f"--config {config}: a damage data set config is needed")
    fixed = {name: DamageType(t) for name, t in ds.classes.items() if t is not None}
    untyped = {name for name, t in ds.classes.items() if t is None}
    if not untyped:
        raise TrainingError(f"--config {config}: every class already has a type")
    return fixed, untyped


def make_type_labels(
    detect: Detector, config: Path, out: Path, cfg: TypeSettings, seed: int = 0
) -> dict[str, Any]:
    fixed, untyped = type_map(config)
    names = [t.value for t in dict.fromkeys([*PANEL_TYPES, *fixed.values()])]
    class_ids = {DamageType(n): k for k, n in enumerate(names)}
    images, labels = fresh_label_folders(out, SPLIT)
    tally = TypeTally()
    for image, instances in held_out_photos(config, SPLIT, seed):
        # photos without panel damage are in the human-typed set already
        if not any(name in untyped for name, _ in instances):
            continue
        tally.photos += 1
        tally.regions.update(name for name, _ in instances)
        shape, detections = detect(image)
        types = photo_types(instances, fixed, shape, detections, cfg)
        if types is None:
            continue
        tally.kept += 1
        tally.typed.update(name for name, _ in instances)
        typed = list(zip(instances, types, strict=True))
        tally.labels.update(f"{name} -> {t.value}" for (name, _), t in typed)
        lines = [polygon_line(class_ids[t], poly) for (_, poly), t in typed]
        shutil.copyfile(image, images / image.name)
        (labels / f"{image.stem}.txt").write_text("\n".join(lines) + "\n")
    (out / "dataset.yaml").write_text(
        yaml.safe_dump(dataset_config(out, config, names), sort_keys=False)
    )
    report = tally.report()
    (out / "summary.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def onnx_detector(model: Path, conf: float) -> Detector:
    """The damage model's raw detections, typed by its class names."""
    import cv2

    from inference.postprocess import PostprocessConfig
    from inference.runtime import OnnxRuntime, damage_class

    runtime = OnnxRuntime(model, config=PostprocessConfig(conf=conf))
    names = runtime.class_names()
    if not names:
        raise TrainingError(f"--damage {model}: no class names in the model")

    def detect(image: Path) -> tuple[tuple[int, int], list[Detection]]:
        pixels = cv2.imread(str(image))
        if pixels is None:
            raise TrainingError(f"{image}: not a readable image")
        raw = runtime.infer([pixels])[0]
        found = []
        for k in range(len(raw)):
            label = damage_class(names[int(raw.class_ids[k])])
            kind = label if isinstance(label, DamageType) else label[0]
            found.append(Detection(kind, float(raw.scores[k]), raw.masks[k].astype(bool)))
        # Masks come on the runtime's grid, not at the photo's size: regions are drawn on
        # the same grid (their polygons are normalised), so the overlap compares like with like.
        grid = raw.masks.shape[-2:] if raw.masks.ndim == 3 else pixels.shape[:2]
        return (int(grid[0]), int(grid[1])), found

    return detect


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument("--damage", type=Path, required=True, help="damage model (.onnx) to ask")
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help="damage data set config to type"
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="folder to write (an earlier output is replaced)"
    )
    parser.add_argument("--seed", type=int, default=0, help="re-split seed (as converted)")
    parser.add_argument(
        "--conf",
        type=float,
        default=TypeSettings.conf,
        help="lowest damage score that may name a region's type (0 < it < 1)",
    )
    parser.add_argument(
        "--fallback",
        choices=[t.value for t in PANEL_TYPES],
        default=None,
        help="type of a panel region no detection types (default: leave its photo out)",
    )
    parser.add_argument(
        "--iou",
        type=float,
        default=TypeSettings.iou,
        help="mask IoU a detection needs with a region to type it (0 < it <= 1)",
    )
    return parser


def main(args: argparse.Namespace) -> int:
    if not args.damage.is_file() or args.damage.suffix != ".onnx":
        raise TrainingError(f"--damage {args.damage}: expected an existing .onnx damage model")
    if not 0.0 < args.conf < 1.0:
        raise TrainingError(f"--conf {args.conf}: need 0 < conf < 1")
    if not 0.0 < args.iou <= 1.0:
        raise TrainingError(f"--iou {args.iou}: need 0 < iou <= 1")
    refuse_foreign_output(args.out, OUTPUT_NAMES)
    fallback = None if args.fallback is None else DamageType(args.fallback)
    cfg = TypeSettings(args.conf, args.iou, fallback)
    detect = onnx_detector(args.damage, cfg.conf)
    report = make_type_labels(detect, args.config, args.out, cfg, args.seed)
    print(json.dumps(report, indent=1))
    print(f"wrote {args.out / 'dataset.yaml'}")
    return 0


if __name__ == "__main__":
    run_script(main, get_args_parser())
