"""Part labels for damage close-ups: the part model's own masks, kept where the photo agrees.

Close-up sets (`damaged-parts`, `car-parts-damage`) name the part family each damaged
region lies on (`Door`, `Light`, ...) but outline the damage, not the part. The part model,
trained on whole cars, finds the part on only some of such regions. This tool turns that
agreement into part labels on close-ups, so the model can learn what close-ups of parts
look like:

* the part model runs on every photo of the *train* split of the close-up config: its
  re-split when it has one (`damaged-parts`: the same groups as `training/closeup.py`),
  else its published train split (`car-parts-damage`); val and test photos are never read;
* a photo is kept only when every labelled region is confirmed: the served assignment rule
  (`inference.assign.region_part`) puts it on a part of the family the region names, or,
  for a region naming no listed part (`Fender` -> unlisted panel), on no part at all;
* its labels are the parts that confirmed a region, plus parts found at `--keep-conf` or
  above that no region contradicts. Everything else in a kept photo is background. A photo
  where a label would cover most of another label of a different class is left out;
* with `--fallback-conf`, a region the served rule misses is still labelled when a part of
  the family the region names holds it at that score or above (and no part at `--keep-conf`
  of another family does): the labeller named the family, the model picks which of its
  parts. These are the close-ups the model gets wrong today, so they teach the most;
* with `--cut-contradicted`, a region lying on a part of another family (a fender's on any
  part) no longer leaves its photo out: the region is cut out of that part's label, which
  tells the model where the part it called is not.

It writes a YOLO data set named `<source>-pseudo` (card `datasets/<source>-pseudo.md`) and
its dataset config (`dataset.yaml`), which a parts training config lists beside
`car-parts.yaml` (`datasets/parts-closeups-cpd.yaml`)::

    python -m training.closeup_pseudo --parts inference/models/parts-seg-n-20261206b.onnx \
        --out runs/pseudo/damaged-parts [--fallback-conf 0.02] [--cut-contradicted]
    python -m training.closeup_pseudo --parts inference/models/parts-seg-n-20261206b.onnx \
        --config datasets/car-parts-damage.yaml --out runs/pseudo/car-parts-damage \
        [--fallback-conf 0.02]
    python -m training.train --config datasets/parts-closeups-cpd.yaml \
        --init inference/models/parts-seg-n-20261206b.pt --imgsz 384
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from cdat.findings import PartInstance
from cdat.taxonomy import SEGMENTED_PARTS, CarPart
from training.closeup import (
    DEFAULT_CONFIG,
    Labelled,
    Region,
    _polygon_mask,
    part_families,
    photo_regions,
    read_dataset_raw,
    region_owner,
)
from training.dataconfig import load_dataset_config
from training.errors import TrainingError, run_script
from training.label_output import fresh_label_folders, polygon_line, refuse_foreign_output

SPLIT = "train"
MIN_PIECE_PIXELS = 16.0
"""A cut part's piece smaller than this (photo pixels) is a sliver, not a label."""
OUTPUT_NAMES = (SPLIT, "dataset.yaml", "summary.json")
"""What the tool writes: a folder holding anything else is not its output, and is refused."""


def pseudo_name(source_name: str) -> str:
    """The labelled set's name, and its card's (`datasets/<name>.md`): one per source, so
    a training config listing the labels of two close-up sets keeps them apart (converted
    files are named after their data set)."""
    return f"{source_name}-pseudo"


@dataclass(frozen=True)
class PseudoSettings:
    conf: float = 0.1
    """Lowest part score considered: a part that confirms a region may be faint."""
    keep_conf: float = 0.5
    """A part no region touches is kept as a label from this score up."""
    fallback_conf: float | None = None
    """When set, a region the served rule does not confirm may still be labelled with the
    faint part (from this score up) of the family the region names that holds it; the
    person who drew the region named the family, the model only picks which of its parts.
    None: only confirmed regions count."""
    cut_contradicted: bool = False
    """Keep a photo whose region lies on a part of another family (a fender's on any part):
    the region is cut out of that part's label, and a listed region still needs a part of
    its own family. Those are the close-ups the model gets wrong; dropped, it never learns
    where the part it called is not."""

    @property
    def floor(self) -> float:
        """Lowest part score any rule looks at: what the part model is asked for."""
        return self.conf if self.fallback_conf is None else min(self.conf, self.fallback_conf)


@dataclass
class PseudoTally:
    photos: int = 0
    kept: int = 0
    regions: Counter[str] = field(default_factory=Counter)
    confirmed: Counter[str] = field(default_factory=Counter)
    labels: Counter[str] = field(default_factory=Counter)
    cut: Counter[str] = field(default_factory=Counter)

    def report(self) -> dict[str, Any]:
        return {
            "photos": self.photos,
            "photos_kept": self.kept,
            "regions_per_family": dict(sorted(self.regions.items())),
            "confirmed_per_family": dict(sorted(self.confirmed.items())),
            "labels_per_part": dict(sorted(self.labels.items())),
            "parts_cut": dict(sorted(self.cut.items())),
        }


def photo_labels(
    regions: list[Region], parts: list[PartInstance], masks: list[np.ndarray], cfg: PseudoSettings
) -> list[int] | None:
    """Indices of the parts to keep as labels, or None when a region is not confirmed.
    `parts` may hold parts below `cfg.conf`: only the family fallback looks at them.
    With `cfg.cut_contradicted` a part is judged by its mask less the regions of other
    families (`cut_masks`), which its label leaves out."""
    strong = [k for k, p in enumerate(parts) if p.confidence >= cfg.conf]
    confirmed: set[int] = set()
    touched: set[int] = set()
    for region in regions:
        owner = _owner(region, parts, masks, strong)
        if not region.family.segmented:
            if not cfg.cut_contradicted:
                if owner is not None:
                    return None
                touched |= {k for k in strong if (masks[k] & region.mask).any()}
            continue
        if owner is None or parts[owner].part.family is not region.family:
            owner = _family_fallback(region, parts, masks, owner, cfg)
        if owner is None:
            return None
        confirmed.add(owner)
    confident = {k for k in strong if parts[k].confidence >= cfg.keep_conf and k not in touched}
    judged = masks
    if cfg.cut_contradicted:
        cut = cut_masks(regions, parts, masks, sorted(confirmed | confident))
        judged = [cut.get(k, m) for k, m in enumerate(masks)]
    if any(_clash(judged[k], judged[c]) for k in confirmed for c in confident - confirmed):
        return None
    return sorted(k for k in confirmed | confident if judged[k].any())


def cut_masks(
    regions: list[Region], parts: list[PartInstance], masks: list[np.ndarray], keep: list[int]
) -> dict[int, np.ndarray]:
    """The kept parts whose masks cover a region of another family, each less those regions:
    a labelled region belongs to the family its label names."""
    out = {}
    for k in keep:
        others = [r.mask for r in regions if r.family is not parts[k].part.family]
        covered = [m for m in others if (masks[k] & m).any()]
        if covered:
            out[k] = masks[k] & ~np.logical_or.reduce(covered)
    return out


def _owner(
    region: Region, parts: list[PartInstance], masks: list[np.ndarray], among: list[int]
) -> int | None:
    k = region_owner(region, [parts[i] for i in among], [masks[i] for i in among])
    return None if k is None else among[k]


def _family_fallback(
    region: Region,
    parts: list[PartInstance],
    masks: list[np.ndarray],
    owner: int | None,
    cfg: PseudoSettings,
) -> int | None:
    """The part of the region's family the region lies on, however faint; None when the
    fallback is off or a confident part of another family holds the region (unless
    contradictions are cut: then that part gives the region up)."""
    if cfg.fallback_conf is None:
        return None
    if owner is not None and parts[owner].confidence >= cfg.keep_conf and not cfg.cut_contradicted:
        return None
    family = [
        k
        for k, p in enumerate(parts)
        if p.part.family is region.family and p.confidence >= cfg.fallback_conf
    ]
    return _owner(region, parts, masks, family)


def _clash(a: np.ndarray, b: np.ndarray) -> bool:
    """Two label masks over mostly the same pixels: one of them is wrong."""
    inter = float((a & b).sum())
    return inter > 0.5 * max(min(float(a.sum()), float(b.sum())), 1.0)


def label_line(part: PartInstance, class_id: int, width: int, height: int) -> str | None:
    xy = np.asarray(part.polygon, np.float64).reshape(-1, 2)
    if len(xy) < 3:
        return None
    xy = np.clip(xy / [width, height], 0.0, 1.0)
    return polygon_line(class_id, [float(v) for v in xy.ravel()])


def mask_polygons(mask: np.ndarray) -> list[list[float]]:
    """A cut mask as normalised YOLO polygons, one per piece. A region cut from inside a
    part leaves a hole, which one polygon cannot hold, so each hole is joined to its
    piece's outline by a seam of no width: drawn back, the hole stays empty."""
    import cv2

    height, width = mask.shape
    contours, hierarchy = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE
    )
    if hierarchy is None:
        return []
    out = []
    for k, contour in enumerate(contours):
        if hierarchy[0][k][3] != -1 or cv2.contourArea(contour) < MIN_PIECE_PIXELS:
            continue
        outline = contour.reshape(-1, 2)
        holes = [c.reshape(-1, 2) for j, c in enumerate(contours) if hierarchy[0][j][3] == k]
        for hole in holes:
            outline = _joined(outline, hole)
        xy = (outline.astype(np.float64) + 0.5) / [width, height]
        out.append([float(v) for v in xy.clip(0.0, 1.0).reshape(-1)])
    return out


def _joined(outline: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """`outline` walked to its point nearest `hole`, around the hole and back."""
    gaps = ((outline[:, None, :] - hole[None, :, :]) ** 2).sum(-1)
    i, j = np.unravel_index(int(np.argmin(gaps)), gaps.shape)
    around = np.concatenate([hole[j:], hole[: j + 1]])
    return np.concatenate([outline[: i + 1], around, outline[i:]])


def dataset_config(out: Path, source: Path) -> dict[str, Any]:
    ds = load_dataset_config(source)
    names = [p.value for p in SEGMENTED_PARTS]
    return {
        "name": pseudo_name(ds.name),
        "task": "parts",
        "format": "yolo",
        "root": str(out.resolve()),
        "licence": ds.licence,
        "attribution": f"part labels made by training/closeup_pseudo.py on {ds.name}: "
        + ds.attribution.strip(),
        "card": f"{pseudo_name(ds.name)}.md",
        "names": names,
        "splits": {"train": {"images": "train/images", "labels": "train/labels"}},
        "classes": {n: n for n in names},
    }


def make_pseudo_labels(
    analyzer: Any, config: Path, out: Path, cfg: PseudoSettings, seed: int = 0
) -> dict[str, Any]:
    from cdat.analysis import PhotoInput

    families = part_families(config)
    class_ids = {p: k for k, p in enumerate(CarPart)}
    images, labels = fresh_label_folders(out, SPLIT)
    tally = PseudoTally()
    for image, instances in train_photos(config, seed):
        analysis = analyzer.analyze([PhotoInput(image.name, image.read_bytes())])[0]
        tally.photos += 1
        shape = (analysis.height, analysis.width)
        regions = photo_regions(instances, families, shape, config)
        if not regions:
            continue
        tally.regions.update(r.family.value for r in regions)
        parts = [p for p in analysis.parts if p.confidence >= cfg.floor]
        masks = [_polygon_mask(p.polygon, shape, scale=False) for p in parts]
        keep = photo_labels(regions, parts, masks, cfg)
        if not keep:
            continue
        cut = cut_masks(regions, parts, masks, keep) if cfg.cut_contradicted else {}
        lines = []
        for k in keep:
            class_id = class_ids[parts[k].part]
            if k in cut:
                written = [polygon_line(class_id, polygon) for polygon in mask_polygons(cut[k])]
                tally.cut[parts[k].part.value] += bool(written)
            else:
                line = label_line(parts[k], class_id, analysis.width, analysis.height)
                written = [] if line is None else [line]
            lines += written
            tally.labels[parts[k].part.value] += bool(written)
        if not lines:
            continue
        tally.kept += 1
        tally.confirmed.update(r.family.value for r in regions)
        shutil.copyfile(image, images / image.name)
        (labels / f"{image.stem}.txt").write_text("\n".join(lines) + "\n")
    (out / "dataset.yaml").write_text(yaml.safe_dump(dataset_config(out, config), sort_keys=False))
    report = tally.report()
    (out / "summary.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def train_photos(config: Path, seed: int) -> list[tuple[Path, Labelled]]:
    """The photos labels may be made from: the train split as the converter assigns it
    (`training.convert.assign_splits`, as `training.closeup` reads its held-out photos).
    A set kept in its published splits sends a photo group found in several to train; the
    copies published in val or test are left out even then, so no label is ever made from
    a photo its publisher held out."""
    from training.convert import assign_splits

    ds = load_dataset_config(config)
    records = read_dataset_raw(ds)
    split_of = assign_splits(records, ds.resplit, seed)
    return [
        (r.image, r.instances)
        for r in records
        if split_of[r.group] == SPLIT and (ds.resplit is not None or r.source_split == SPLIT)
    ]


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument("--parts", type=Path, required=True, help="part model (.onnx) to ask")
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help="close-up data set config with part_families (damaged-parts, car-parts-damage); "
        "only its train split is read",
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="folder to write (an earlier output there is replaced)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="re-split seed (as converted; unused by a set kept in its published splits)",
    )
    parser.add_argument(
        "--conf", type=float, default=PseudoSettings.conf, help="lowest part score considered"
    )
    parser.add_argument(
        "--fallback-conf",
        type=float,
        default=None,
        help="also label a region the served rule misses with the part of the family its "
        "label names that holds it, scored this or above (default: off; at most --conf)",
    )
    parser.add_argument(
        "--keep-conf",
        type=float,
        default=PseudoSettings.keep_conf,
        help="a part touching no region is kept as a label from this score up",
    )
    parser.add_argument(
        "--cut-contradicted",
        action="store_true",
        help="keep a photo whose region lies on a part of another family: cut the region out "
        "of that part's label (a listed region still needs a part of its own family)",
    )
    return parser


def main(args: argparse.Namespace) -> int:
    from training.closeup import build_closeup_analyzer

    if not args.parts.is_file() or args.parts.suffix != ".onnx":
        raise TrainingError(f"--parts {args.parts}: expected an existing .onnx part model")
    if not 0.0 < args.conf <= args.keep_conf < 1.0:
        raise TrainingError(
            f"--conf {args.conf} / --keep-conf {args.keep_conf}: need 0 < conf <= keep-conf < 1"
        )
    if args.fallback_conf is not None and not 0.0 < args.fallback_conf <= args.conf:
        raise TrainingError(f"--fallback-conf {args.fallback_conf}: need 0 < it <= --conf")
    refuse_foreign_output(args.out, OUTPUT_NAMES)
    cfg = PseudoSettings(args.conf, args.keep_conf, args.fallback_conf, args.cut_contradicted)
    analyzer = build_closeup_analyzer(args.parts, None, cfg.floor)
    report = make_pseudo_labels(analyzer, args.config, args.out, cfg, args.seed)
    print(json.dumps(report, indent=1))
    print(f"wrote {args.out / 'dataset.yaml'}")
    return 0


if __name__ == "__main__":
    run_script(main, get_args_parser())
