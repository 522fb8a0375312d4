"""Convert COCO / YOLO polygon data into one Ultralytics segmentation dataset.

Reads every dataset config of a training config, maps source classes into the
project's taxonomy, re-splits without leakage and writes::

    <out>/images/{train,val,test}/<dataset>__<file>   (symlinks to the source photos)
    <out>/labels/{train,val,test}/<dataset>__<stem>.txt
    <out>/data.yaml      (Ultralytics dataset file)
    <out>/manifest.json  (counts per split and class, source groups per split)

Leakage: Roboflow exports hold augmented copies of one photo whose names share
the stem before `.rf.`; all files of one such *group* always land in one split.

    python -m training.convert --config datasets/damage.yaml --out runs/data/damage
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from training.closeup_crops import write_crops
from training.dataconfig import (
    SPLITS,
    DatasetConfig,
    TrainingConfig,
    check_data_present,
    detector_class,
    load_training_config,
)
from training.errors import DatasetError, TrainingError

Polygon = list[float]
"""Normalised x1 y1 x2 y2 ... in [0, 1]."""
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


@dataclass
class Record:
    dataset: str
    image: Path
    source_split: str
    instances: list[tuple[str, Polygon]] = field(default_factory=list)
    untyped_damage: bool = False
    """Holds a class of the config's `skip_images_with`: left out of every split."""

    @property
    def group(self) -> str:
        return f"{self.dataset}/{source_group(self.image.name)}"


def source_group(file_name: str) -> str:
    """Roboflow augmentations of one photo share the name before `.rf.`."""
    stem = Path(file_name).stem
    return stem.split(".rf.")[0] if ".rf." in file_name else stem


def _normalise(points: list[float], width: float, height: float) -> Polygon:
    out: Polygon = []
    for i in range(0, len(points) - 1, 2):
        out.append(min(max(points[i] / width, 0.0), 1.0))
        out.append(min(max(points[i + 1] / height, 0.0), 1.0))
    return out


def merge_polygons(parts: list[list[float]]) -> list[float]:
    """One outline for a multi-part instance: parts joined by zero-area bridges back to
    the first part's start, so filling it reproduces every part."""
    if len(parts) == 1:
        return parts[0]
    merged: list[float] = []
    for part in parts:
        merged.extend(part)
        merged.extend(part[:2])
        merged.extend(parts[0][:2])
    return merged


def _coco_polygon(ann: dict, width: float, height: float) -> Polygon | None:
    seg = ann.get("segmentation")
    if isinstance(seg, list) and seg:
        parts = [p for p in seg if isinstance(p, list) and len(p) >= 6]
        if parts:
            return _normalise(merge_polygons(parts), width, height)
    box = ann.get("bbox")
    if isinstance(box, list) and len(box) == 4 and box[2] > 0 and box[3] > 0:
        x, y, w, h = box
        return _normalise([x, y, x + w, y, x + w, y + h, x, y + h], width, height)
    return None  # RLE crowd regions: no polygon to learn from


def _map_class(ds: DatasetConfig, name: str, where: str) -> str | None:
    if name not in ds.classes:
        raise DatasetError(
            f"{ds.path}: source class {name!r} (in {where}) has no entry under 'classes': "
            "map it to a project class or to null to drop it"
        )
    return ds.classes[name]


def read_coco(ds: DatasetConfig, split: str) -> list[Record]:
    src = ds.splits[split]
    assert src.annotations is not None
    try:
        coco = json.loads(src.annotations.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{src.annotations}: not a readable COCO json: {exc}") from exc
    categories = {c["id"]: c["name"] for c in coco.get("categories", [])}
    by_image: dict[int, list[dict]] = defaultdict(list)
    for ann in coco.get("annotations", []):
        by_image[ann["image_id"]].append(ann)
    records = []
    for img in coco.get("images", []):
        rec = Record(ds.name, src.images / img["file_name"], split)
        for ann in by_image.get(img["id"], []):
            name = categories.get(ann["category_id"])
            if name is None:
                raise DatasetError(f"{src.annotations}: unknown category_id {ann['category_id']}")
            target = _map_class(ds, name, str(src.annotations))
            rec.untyped_damage |= name in ds.skip_images_with
            polygon = _coco_polygon(ann, img["width"], img["height"])
            if target is not None and polygon is not None:
                rec.instances.append((target, polygon))
        records.append(rec)
    return records


def _yolo_polygon(values: list[float]) -> Polygon | None:
    if len(values) == 4:  # a box: cx cy w h
        cx, cy, w, h = values
        return [
            cx - w / 2,
            cy - h / 2,
            cx + w / 2,
            cy - h / 2,
            cx + w / 2,
            cy + h / 2,
            cx - w / 2,
            cy + h / 2,
        ]
    if len(values) >= 6 and len(values) % 2 == 0:
        return [min(max(v, 0.0), 1.0) for v in values]
    return None


def read_yolo(ds: DatasetConfig, split: str) -> list[Record]:
    src = ds.splits[split]
    assert src.labels is not None
    records = []
    for image in sorted(src.images.iterdir()):
        if image.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        rec = Record(ds.name, image, split)
        label = src.labels / (image.stem + ".txt")
        lines = label.read_text().splitlines() if label.exists() else []
        rec.untyped_damage = ds.skip_unlabelled and not any(line.strip() for line in lines)
        for n, line in enumerate(lines, 1):
            fields = line.split()
            if not fields:
                continue
            try:
                cls, values = int(fields[0]), [float(v) for v in fields[1:]]
                name = ds.yolo_names[cls]
            except (ValueError, IndexError):
                raise DatasetError(f"{label}:{n}: bad YOLO label line {line[:60]!r}") from None
            target = _map_class(ds, name, str(label))
            rec.untyped_damage |= name in ds.skip_images_with
            polygon = _yolo_polygon(values)
            if target is not None and polygon is not None:
                rec.instances.append((target, polygon))
        records.append(rec)
    return records


def read_dataset(ds: DatasetConfig) -> list[Record]:
    check_data_present(ds)
    reader = read_coco if ds.format == "coco" else read_yolo
    return [rec for split in ds.splits for rec in reader(ds, split)]


def assign_splits(
    records: list[Record], resplit: dict[str, float] | None, seed: int
) -> dict[str, str]:
    """Group -> split. Keeping source splits, a group found in several goes to the
    earliest of train, val, test, so evaluation splits never share a photo with train."""
    groups: dict[str, set[str]] = defaultdict(set)
    for rec in records:
        groups[rec.group].add(rec.source_split)
    if resplit is None:
        return {g: next(s for s in SPLITS if s in found) for g, found in groups.items()}
    names = sorted(groups)
    random.Random(seed).shuffle(names)
    out: dict[str, str] = {}
    start = 0.0
    for split in SPLITS:
        end = start + resplit.get(split, 0.0)
        for g in names[round(start * len(names)) : round(end * len(names))]:
            out[g] = split
        start = end
    return out


def split_records(ds: DatasetConfig, split: str, seed: int = 0) -> list[Record]:
    """The records of one split of a data set's (re-)split, as `write_dataset` assigns them:
    the one way every tool that reads a held-out split finds its photos."""
    records = read_dataset(ds)
    split_of = assign_splits(records, ds.resplit, seed)
    return [rec for rec in records if split_of[rec.group] == split]


def _link(src: Path, dst: Path) -> None:
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    try:
        dst.symlink_to(src.resolve())
    except OSError:  # file systems without symlinks
        dst.write_bytes(src.read_bytes())


def _label_text(rec: Record, class_ids: dict[str, int]) -> tuple[str, str]:
    """The YOLO label file and its severity sidecar (one severity or '-' a line)."""
    rows, severities = [], []
    for name, poly in rec.instances:
        model_class, severity = detector_class(name, list(class_ids))
        rows.append(" ".join([str(class_ids[model_class])] + [f"{v:.6f}" for v in poly]))
        severities.append(severity or "-")
    end = "\n" if rows else ""
    return "\n".join(rows) + end, "\n".join(severities) + end


def write_dataset(cfg: TrainingConfig, out: Path, seed: int = 0) -> dict:
    """Convert and merge every data set of `cfg` into `out`; returns the manifest."""
    class_ids = {name: i for i, name in enumerate(cfg.classes)}
    counts: dict[str, Counter[str]] = {s: Counter() for s in SPLITS}
    images: Counter[str] = Counter()
    groups: dict[str, set[str]] = {s: set() for s in SPLITS}
    skipped: Counter[str] = Counter()
    for sub in ("images", "labels", "severity"):
        # a conversion redone with other splits would otherwise keep the old files beside
        # the new, a photo in two splits
        shutil.rmtree(out / sub, ignore_errors=True)
        for split in SPLITS:
            (out / sub / split).mkdir(parents=True)
    for ds in cfg.datasets:
        records = read_dataset(ds)
        if not records:
            raise DatasetError(f"{ds.name}: no images found under {ds.root}")
        split_of = assign_splits(records, ds.resplit, seed)
        for rec in records:
            if not rec.image.is_file():
                raise DatasetError(f"{ds.name}: image listed but missing: {rec.image}")
            if rec.untyped_damage:
                skipped[ds.name] += 1
                continue
            split = split_of[rec.group]
            stem = f"{ds.name}__{rec.image.stem}"
            _link(rec.image, out / "images" / split / f"{stem}{rec.image.suffix}")
            labels, severities = _label_text(rec, class_ids)
            (out / "labels" / split / f"{stem}.txt").write_text(labels)
            (out / "severity" / split / f"{stem}.txt").write_text(severities)
            counts[split].update(detector_class(n, cfg.classes)[0] for n, _ in rec.instances)
            if split == "train":
                # a repeat is the same photo under another name, labels and severity with
                # it, so every stage trained on the conversion weighs the source alike
                for k in range(1, ds.train_repeats):
                    again = f"{stem}__again{k}"
                    _link(rec.image, out / "images" / split / f"{again}{rec.image.suffix}")
                    (out / "labels" / split / f"{again}.txt").write_text(labels)
                    (out / "severity" / split / f"{again}.txt").write_text(severities)
                    counts[split].update(
                        detector_class(n, cfg.classes)[0] for n, _ in rec.instances
                    )
                    images[split] += 1
            if split == "train" and ds.closeup_crops:
                crops = write_crops(
                    rec.image,
                    rec.instances,
                    ds.closeup_crops,
                    stem,
                    out / "images" / "train",
                    keep_whole=cfg.task == "damage",
                )
                for crop, instances in crops:
                    crop_rec = Record(ds.name, crop, "train", instances)
                    # No severity sidecar: the severity stage judges a damage against the
                    # whole photo it was taken in, and a crop is not one.
                    labels, _ = _label_text(crop_rec, class_ids)
                    (out / "labels" / "train" / f"{crop.stem}.txt").write_text(labels)
                    counts["train"].update(detector_class(n, cfg.classes)[0] for n, _ in instances)
                    images["train"] += 1
            images[split] += 1
            groups[split].add(rec.group)
    data = {
        "path": str(out.resolve()),
        **{s: f"images/{s}" for s in SPLITS},
        "names": dict(enumerate(cfg.classes)),
    }
    (out / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    manifest = {
        "config": str(cfg.path),
        "task": cfg.task,
        "classes": cfg.classes,
        "seed": seed,
        "images": dict(images),
        "instances": {s: dict(sorted(c.items())) for s, c in counts.items()},
        "skipped_untyped_images": dict(skipped),
        "groups": {s: sorted(g) for s, g in groups.items()},
        "datasets": [
            {"name": d.name, "licence": d.licence, "attribution": d.attribution}
            for d in cfg.datasets
        ],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def config_fingerprint(cfg: TrainingConfig, seed: int) -> str:
    """Changes when any config file, the seed or the files a source's splits hold change, so
    a stale conversion is redone. The files count because a folder written by a tool (pseudo
    labels, background photos) keeps the same config whatever it holds."""
    digest = hashlib.sha256(str(seed).encode())
    for path in [cfg.path, *(d.path for d in cfg.datasets)]:
        digest.update(Path(path).read_bytes())
    for d in cfg.datasets:
        digest.update(str(d.root).encode())
        for split in sorted(d.splits):
            source = d.splits[split]
            for place in (source.images, source.annotations, source.labels):
                digest.update(_listing(place))
    return digest.hexdigest()[:16]


def _listing(place: Path | None) -> bytes:
    """The names and sizes of the files at `place` (a folder or one file): what a source
    holds, read cheaply enough to check on every run."""
    if place is None or not place.exists():
        return b"-"
    if place.is_file():
        return f"{place.name}:{place.stat().st_size}".encode()
    files = (p for p in place.rglob("*") if p.is_file())
    return "\n".join(sorted(f"{p.relative_to(place)}:{p.stat().st_size}" for p in files)).encode()


def ensure_dataset(cfg: TrainingConfig, out: Path, seed: int = 0) -> Path:
    """Convert once; reuse the conversion while the configs and seed are unchanged."""
    stamp = out / ".fingerprint"
    fingerprint = config_fingerprint(cfg, seed)
    if not (stamp.exists() and stamp.read_text() == fingerprint and (out / "data.yaml").exists()):
        write_dataset(cfg, out, seed)
        stamp.write_text(fingerprint)
    return out / "data.yaml"


def summary(manifest: dict) -> str:
    lines = [f"{'split':6} {'images':>7} {'instances':>10}"]
    for s in SPLITS:
        n = sum(manifest["instances"][s].values())
        lines.append(f"{s:6} {manifest['images'].get(s, 0):>7} {n:>10}")
    return "\n".join(lines)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument("--config", type=Path, required=True, help="training or dataset config")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--data-root", type=Path, default=None, help="default: $CDAT_DATA_ROOT")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    return parser


def main(args: argparse.Namespace) -> int:
    cfg = load_training_config(args.config, args.data_root)
    manifest = write_dataset(cfg, args.out, args.seed)
    (args.out / ".fingerprint").write_text(config_fingerprint(cfg, args.seed))
    print(summary(manifest))
    print(f"wrote {args.out / 'data.yaml'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(get_args_parser().parse_args()))
    except TrainingError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
