"""Pack converted training data small enough to travel to a lent GPU with the working tree.

A lent GPU machine gets the working tree and the carried paths in one transfer of at most
64 MiB, and reaches nothing else. The converted data sets (runs/data/<name>) link to the
full-size photos; this writes copies re-encoded at the training size (WebP by default: about
40% smaller than JPEG at the same quality), labels with their polygons simplified to half a
pixel at that size and written to 4 decimals, the severity sidecars, and a data.yaml with a
relative path, and refuses to exceed a budget. Only the splits training reads travel (train
and val): the test split is evaluated here, on the full-size photos.

    python -m training.pack --config datasets/damage.yaml --imgsz 416 --out runs/pack/damage
    python -m training.pack --config datasets/parts.yaml --imgsz 384 --out runs/pack/parts
    # measured: see training/gpu_session.sh, which says how the packs travel
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from training.errors import TrainingError, run_script

FORMATS = ("webp", "jpg")
SIMPLIFY_PX = 0.5
"""Polygon vertices closer than this to the simplified outline (in packed pixels) go: the
converted labels keep every vertex of the source's pixel staircase, which training at the
packed size cannot see."""


def shrink(source: Path, target: Path, imgsz: int, quality: int) -> tuple[int, int]:
    """Re-encode one photo at most `imgsz` on its long side; returns its (width, height)."""
    import cv2

    image = cv2.imread(str(source))
    if image is None:
        raise TrainingError(f"cannot read {source}")
    scale = imgsz / max(image.shape[:2])
    if scale < 1.0:
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    flag = cv2.IMWRITE_WEBP_QUALITY if target.suffix == ".webp" else cv2.IMWRITE_JPEG_QUALITY
    if not cv2.imwrite(str(target), image, [flag, quality]):
        raise TrainingError(f"cannot write {target}")
    return image.shape[1], image.shape[0]


def compact_label_line(line: str, width: int, height: int) -> str:
    """One YOLO label line with its polygon simplified at the packed size, 4 decimals."""
    import cv2
    import numpy as np

    fields = line.split()
    if len(fields) < 7 or len(fields) % 2 == 0:  # a box (or nothing to simplify)
        return " ".join([fields[0], *(f"{float(v):.4f}" for v in fields[1:])])
    points = np.array(fields[1:], dtype=np.float64).reshape(-1, 2) * (width, height)
    outline = cv2.approxPolyDP(points.astype(np.float32), SIMPLIFY_PX, closed=True)
    kept = outline.reshape(-1, 2) if len(outline) >= 3 else points
    normalised = np.clip(kept / (width, height), 0.0, 1.0)
    return " ".join([fields[0], *(f"{v:.4f}" for v in normalised.ravel())])


@dataclass(frozen=True)
class PackSpec:
    imgsz: int
    quality: int
    image_format: str = "webp"
    splits: tuple[str, ...] = ("train", "val")
    shards: int = 1
    """The train photos are dealt round-robin into this many folders, each small enough to
    travel in one call: `out` (with val and data.yaml, which lists every shard's train
    folder) and `out-2` ... `out-N`."""


def shard_dirs(out: Path, shards: int) -> list[Path]:
    return [out, *(out.parent / f"{out.name}-{k}" for k in range(2, shards + 1))]


def pack(data_yaml: Path, out: Path, spec: PackSpec) -> list[int]:
    """Copy the given splits of a converted data set into `out` (and its shards); returns
    each shard's size in bytes."""
    data = yaml.safe_load(data_yaml.read_text())
    root = Path(data["path"])
    folders = shard_dirs(out, spec.shards)
    for folder in folders:
        if folder.exists():
            shutil.rmtree(folder)
    for split in spec.splits:
        images = root / str(data.get(split, f"images/{split}"))
        if not images.is_dir():
            continue
        for sub in ("images", "labels", "severity"):
            (out / sub / split).mkdir(parents=True, exist_ok=True)
        for k, image in enumerate(sorted(images.iterdir())):
            folder = folders[k % len(folders)] if split == "train" else out
            _pack_one(root, image, split, folder, spec)
    travelling = {k: v for k, v in data.items() if k not in ("train", "val", "test")}
    travelling.update({s: data.get(s, f"images/{s}") for s in spec.splits if s in data})
    if "train" in travelling and len(folders) > 1:
        train = str(travelling["train"])
        travelling["train"] = [train, *(f"../{f.name}/{train}" for f in folders[1:])]
    # Ultralytics resolves a relative `path` against the working directory: the repo root.
    body = {**travelling, "path": str(out)}
    (out / "data.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    return [sum(p.stat().st_size for p in f.rglob("*") if p.is_file()) for f in folders]


def _pack_one(root: Path, image: Path, split: str, out: Path, spec: PackSpec) -> None:
    for sub in ("images", "labels", "severity"):
        (out / sub / split).mkdir(parents=True, exist_ok=True)
    target = out / "images" / split / f"{image.stem}.{spec.image_format}"
    width, height = shrink(image, target, spec.imgsz, spec.quality)
    labels = root / "labels" / split / f"{image.stem}.txt"
    if labels.exists():
        lines = [ln for ln in labels.read_text().splitlines() if ln.strip()]
        try:
            compact = [compact_label_line(ln, width, height) for ln in lines]
        except ValueError as exc:
            raise TrainingError(f"{labels}: not a YOLO label line ({exc})") from exc
        (out / "labels" / split / labels.name).write_text("".join(f"{c}\n" for c in compact))
    severity = root / "severity" / split / f"{image.stem}.txt"
    if severity.exists():
        shutil.copyfile(severity, out / "severity" / split / severity.name)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument("--config", type=Path, required=True, help="training config (datasets/)")
    parser.add_argument("--out", type=Path, required=True, help="pack folder (relative to repo)")
    parser.add_argument("--imgsz", type=int, default=416, help="long side of the packed photos")
    parser.add_argument("--quality", type=int, default=75, help="image quality, 1-100")
    parser.add_argument(
        "--format", choices=FORMATS, default="webp", help="image format of the packed photos"
    )
    parser.add_argument(
        "--splits",
        nargs="+",
        choices=("train", "val", "test"),
        default=["train", "val"],
        help="splits that travel (training reads train and val)",
    )
    parser.add_argument(
        "--budget-mib", type=float, default=24.0, help="refuse a shard larger than this (MiB)"
    )
    parser.add_argument(
        "--shards", type=int, default=1, help="train-photo folders, each travelling in a call"
    )
    parser.add_argument("--data-dir", type=Path, default=Path("runs/data"), help="conversions")
    parser.add_argument("--data-root", type=Path, default=None, help="default: $CDAT_DATA_ROOT")
    return parser


def main(args: argparse.Namespace) -> int:
    from training.convert import ensure_dataset
    from training.dataconfig import load_training_config

    if not 1 <= args.quality <= 100 or args.imgsz < 32 or args.shards < 1:
        raise TrainingError("--quality must be 1-100, --imgsz at least 32, --shards at least 1")
    if args.out.is_absolute():
        raise TrainingError("--out must be relative to the repository root (it travels)")
    cfg = load_training_config(args.config, args.data_root)
    data_yaml = ensure_dataset(cfg, args.data_dir / cfg.name)
    spec = PackSpec(args.imgsz, args.quality, args.format, tuple(args.splits), args.shards)
    sizes = pack(data_yaml, args.out, spec)
    folders = shard_dirs(args.out, spec.shards)
    # The lent machine records the run's config from here (training/gpu_session.sh).
    record = {"config": str(args.config), "imgsz": spec.imgsz, "quality": spec.quality,
              "format": spec.image_format, "splits": list(spec.splits),
              "shards": [str(f) for f in folders]}  # fmt: skip
    (args.out / "pack.json").write_text(json.dumps(record, indent=1) + "\n")
    for folder, size in zip(folders, sizes, strict=True):
        print(f"packed {cfg.name} into {folder}: {size / 2**20:.1f} MiB")
    over = [f"{f} ({n / 2**20:.1f} MiB)" for f, n in zip(folders, sizes, strict=True)
            if n / 2**20 > args.budget_mib]  # fmt: skip
    if over:
        raise TrainingError(
            f"over the {args.budget_mib} MiB budget: {', '.join(over)}; raise --shards or lower "
            "--imgsz or --quality (the tree and a call's carried paths travel together, 64 MiB "
            "at most)"
        )
    return 0


if __name__ == "__main__":
    run_script(main, get_args_parser())
