"""Close-up part test: does the served pipeline put close-up damage on the right kind of part?

`damaged-parts` photos are close-ups whose polygons outline damage and name the part it is
on (`Door`, `Bumper`, ...) but not which one (no side, front or back). Its config maps each
name to a part family (`part_families`); `Fender` maps to `fender`, a panel the
part model does not segment, where "no listed part" (an adjuster's) is right too.

For every labelled region of the held-out split (the config's re-split, same seed as the
conversion), the served pipeline runs on the photo; the region's part is chosen by the
same rule as for a detected damage (`inference.assign.region_part`); it counts as right
when that part's family is the named one. Photos refused as showing no vehicle are counted.

    python -m training.closeup --parts inference/models/parts-seg-n-20261127b.onnx
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from cdat.part_family import family_of, family_right
from cdat.taxonomy import CarPart, PartFamily, Severity
from training.dataconfig import REPO_ROOT, load_dataset_config
from training.errors import DatasetConfigError, TrainingError, run_script
from training.eval_report import check_json_out, write_json

DEFAULT_CONFIG = REPO_ROOT / "datasets" / "damaged-parts.yaml"


Labelled = list[tuple[str, list[float]]]


@dataclass(frozen=True)
class Region:
    family: PartFamily
    mask: np.ndarray
    """bool, photo size."""


@dataclass
class CloseupTally:
    regions: Counter[str] = field(default_factory=Counter)
    correct: Counter[str] = field(default_factory=Counter)
    found: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(named family, family found) -> regions: where the misses go."""
    photos: int = 0
    no_vehicle: int = 0

    def add(self, expected: PartFamily, got: CarPart | None) -> None:
        self.regions[expected.value] += 1
        self.correct[expected.value] += int(family_right(expected, got))
        self.found[expected.value, family_of(got).value] += 1

    def report(self) -> dict[str, Any]:
        total = sum(self.regions.values())
        return {
            "closeup_part_accuracy": sum(self.correct.values()) / total if total else None,
            "closeup_regions": total,
            "closeup_photos": self.photos,
            "closeup_no_vehicle_refusals": self.no_vehicle,
            "closeup_per_family": {
                family: {
                    "regions": n,
                    "correct": self.correct[family],
                    "accuracy": self.correct[family] / n,
                    "found": {
                        got: count
                        for (named, got), count in sorted(self.found.items())
                        if named == family
                    },
                }
                for family, n in sorted(self.regions.items())
            },
        }


PHOTO_GRADES = {"minor": Severity.MINOR, "moderate": Severity.MODERATE, "major": Severity.SEVERE}
"""`damaged-parts` names each photo by a grade (`minor_`, `moderate_`, `major_`; `damage_`
has none); the publisher does not document them, but they behave like a severity grade
(bench/bench_severity_grades.py's docstring says how)."""


def photo_grade(image: Path) -> Severity | None:
    """The grade a photo's file name gives, or None."""
    found = re.match(r"(minor|moderate|major)_", image.name)
    return PHOTO_GRADES[found.group(1)] if found else None


def photo_grader(config: Path) -> Callable[[Path], Severity | None]:
    """How `config`'s photos are graded: by the grades file its `photo_grades` names
    (`split,file,grade` rows, a path beside the config: car-parts-damage's, graded by eye),
    else by file name (`photo_grade`). A photo the file does not name has no grade."""
    raw = yaml.safe_load(config.read_text()) or {}
    name = raw.get("photo_grades")
    if name is None:
        return photo_grade
    path = config.parent / str(name)
    try:
        with path.open(newline="") as rows:
            grades = {row["file"]: Severity(row["grade"]) for row in csv.DictReader(rows)}
    except (OSError, KeyError, ValueError) as exc:
        raise DatasetConfigError(config, "photo_grades", f"{path}: {exc}") from None
    return lambda image: grades.get(image.name)


def part_families(config: Path) -> dict[str, PartFamily]:
    raw = yaml.safe_load(config.read_text()) or {}
    mapping = raw.get("part_families")
    if not isinstance(mapping, dict) or not mapping:
        raise DatasetConfigError(config, "part_families", "needed: source class -> part family")
    try:
        return {str(k): PartFamily(str(v)) for k, v in mapping.items()}
    except ValueError as exc:
        allowed = ", ".join(f.value for f in PartFamily)
        raise DatasetConfigError(config, "part_families", f"{exc} (allowed: {allowed})") from None


def region_owner(region: Region, parts: list[Any], masks: list[np.ndarray]) -> int | None:
    """Index of the part the served rule puts the region on; None for no listed part."""
    from inference.assign import region_part

    if not parts:
        return None
    overlap = np.array([(m & region.mask).sum() for m in masks], dtype=np.float64)
    areas = np.array([m.sum() for m in masks], dtype=np.float64)
    return region_part(overlap, float(region.mask.sum()), tuple(p.part for p in parts), areas)


def part_found(region: Region, parts: list[Any], masks: list[np.ndarray]) -> CarPart | None:
    """The part the region lies on by the served assignment rule; None for no listed part."""
    k = region_owner(region, parts, masks)
    return None if k is None else parts[k].part


def photo_regions(
    instances: Labelled, families: dict[str, PartFamily], shape: tuple[int, int], config: Path
) -> list[Region]:
    """The labelled regions of one photo, by family; empty outlines left out."""
    regions = []
    for name, polygon in instances:
        if name not in families:
            raise DatasetConfigError(config, "part_families", f"no family for {name!r}")
        region = Region(families[name], _polygon_mask(polygon, shape, scale=True))
        if region.mask.any():
            regions.append(region)
    return regions


def _polygon_mask(points: list[float] | tuple, shape: tuple[int, int], scale: bool) -> np.ndarray:
    import cv2

    height, width = shape
    xy = np.asarray(points, np.float64).reshape(-1, 2)
    if scale:
        xy = xy * [width, height]
    mask = np.zeros(shape, np.uint8)
    if len(xy) >= 3:
        cv2.fillPoly(mask, [np.round(xy).astype(np.int32)], 1)
    return mask.astype(bool)


def held_out_photos(
    config: Path, split: str, seed: int, data_root: Path | None = None
) -> list[tuple[Path, Labelled]]:
    from training.convert import assign_splits

    ds = load_dataset_config(config, data_root)
    records = read_dataset_raw(ds)
    split_of = assign_splits(records, ds.resplit, seed)
    return [(r.image, r.instances) for r in records if split_of[r.group] == split]


def read_dataset_raw(ds: Any) -> list[Any]:
    """Records with the *source* class names kept (families map from them, not classes)."""
    from dataclasses import replace

    from training.convert import read_dataset

    raw = replace(ds, classes={name: name for name in ds.yolo_names}, skip_images_with=frozenset())
    return read_dataset(raw)


def evaluate_closeups(
    analyzer: Any, config: Path, split: str = "test", seed: int = 0
) -> dict[str, Any]:
    return sweep_closeups(analyzer, config, split, seed, (0.0,))[0.0]


def sweep_closeups(
    analyzer: Any, config: Path, split: str, seed: int, part_confs: tuple[float, ...]
) -> dict[float, dict[str, Any]]:
    """One report per part-confidence threshold, from one pass over the photos: each
    photo is analysed once (at the analyzer's own, lowest, threshold) and its parts are
    filtered per threshold, which matches serving at that threshold up to NMS ties."""
    from cdat.analysis import PhotoInput

    families = part_families(config)
    tallies = {conf: CloseupTally() for conf in part_confs}
    for image, instances in held_out_photos(config, split, seed):
        analysis = analyzer.analyze([PhotoInput(image.name, image.read_bytes())])[0]
        shape = (analysis.height, analysis.width)
        regions = photo_regions(instances, families, shape, config)
        refused = analysis.refused_no_vehicle
        all_masks = [_polygon_mask(p.polygon, shape, scale=False) for p in analysis.parts]
        for conf, tally in tallies.items():
            kept = [k for k, p in enumerate(analysis.parts) if p.confidence >= conf]
            parts = [analysis.parts[k] for k in kept]
            masks = [all_masks[k] for k in kept]
            tally.photos += 1
            # the refusal does not move with the threshold: a part score under it still
            # counts as vehicle evidence (inference.quality.check_vehicle)
            tally.no_vehicle += refused
            for region in regions:
                tally.add(region.family, part_found(region, parts, masks))
    return {conf: tally.report() for conf, tally in tallies.items()}


def build_closeup_analyzer(
    parts_model: Path, model_dir: Path | None, parts_conf: float | None = None
) -> Any:
    """The served pipeline with a candidate part model; the promoted damage model. Photos
    of any size are analysed: these close-ups are at most 256 px, and the test is of parts."""
    from cdat.settings import Settings
    from inference import quality
    from inference.loading import load_model
    from inference.pipeline import Analyzer
    from inference.postprocess import PostprocessConfig
    from inference.registry import DEFAULT_SERVED_CONF, ModelEntry, sha256_of
    from inference.runtime import OnnxRuntime, SegmentationModel

    settings = Settings() if model_dir is None else Settings(model_dir=model_dir)
    # A candidate has no registry entry yet: the operator's threshold, else the served default.
    conf = parts_conf or settings.parts_conf or DEFAULT_SERVED_CONF["parts"]
    runtime = OnnxRuntime(parts_model, config=PostprocessConfig(conf=conf))
    entry = ModelEntry(
        id=parts_model.stem,
        task="parts",
        file=parts_model.name,
        sha256=sha256_of(parts_model),
        classes=runtime.class_names(),
        imgsz=runtime.imgsz,
    )
    return Analyzer(
        load_model(settings, "damage"),
        SegmentationModel(entry, runtime),
        quality_config=quality.QualityConfig(min_side=16),
    )


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument("--parts", type=Path, required=True, help="part model (.onnx) to test")
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help="close-up data set config"
    )
    parser.add_argument(
        "--split", default="test", choices=["val", "test"], help="held-out split to test on"
    )
    parser.add_argument("--seed", type=int, default=0, help="re-split seed (as converted)")
    parser.add_argument(
        "--model-dir", type=Path, default=None, help="registry of the damage model to serve with"
    )
    parser.add_argument(
        "--parts-conf",
        type=float,
        nargs="+",
        default=None,
        help="part-confidence thresholds to compare, from one pass over the photos "
        "(default: the served one); choose on val, never on test",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    return parser


def main(args: argparse.Namespace) -> int:
    if not args.parts.is_file() or args.parts.suffix != ".onnx":
        raise TrainingError(f"--parts {args.parts}: expected an existing .onnx part model")
    check_json_out(args.out)
    confs = tuple(args.parts_conf or ())
    if any(not 0.0 < c < 1.0 for c in confs):
        raise TrainingError(f"--parts-conf {confs}: each threshold must lie in (0, 1)")
    # checked before the pass over the photos, which takes minutes, not after it
    if args.out is not None and args.out.is_dir():
        raise TrainingError(f"--out {args.out}: is a folder; give a JSON file's path")
    analyzer = build_closeup_analyzer(args.parts, args.model_dir, min(confs, default=None))
    if confs:
        reports = sweep_closeups(analyzer, args.config, args.split, args.seed, confs)
        report: dict[str, Any] = {"parts_conf": {str(c): r for c, r in reports.items()}}
        for conf, r in reports.items():
            print(
                f"parts_conf {conf:.2f}: closeup_part_accuracy "
                f"{r['closeup_part_accuracy']:.3f}, refusals {r['closeup_no_vehicle_refusals']}"
            )
    else:
        report = evaluate_closeups(analyzer, args.config, args.split, args.seed)
    print(json.dumps(report, indent=1))
    if args.out:
        write_json(args.out, report)
    return 0


if __name__ == "__main__":
    run_script(main, get_args_parser())
