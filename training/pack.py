"""Pack converted training data small enough to travel to a lent GPU with the working tree.

A lent GPU machine gets the working tree and the carried paths in one transfer of at most
64 MiB, and reaches nothing else. The converted data sets (runs/data/<name>) link to the
full-size photos; this writes copies re-encoded at the training size, with their labels and
severity sidecars, and a data.yaml with a relative path, and refuses to exceed a budget.

    python -m training.pack --config datasets/damage.yaml --imgsz 416 --quality 75 \
        --budget-mib 40 --out runs/pack/damage
    python -m training.pack --config datasets/parts.yaml --imgsz 384 --quality 75 \
        --budget-mib 40 --out runs/pack/parts
    # measured: damage 39.4 MiB, parts 31.4 MiB (crops included); with the working tree
    # (about 50 MiB) neither fits one 64 MiB transfer beside it: see training/gpu_session.sh
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import yaml

from training.errors import TrainingError


def shrink(source: Path, target: Path, imgsz: int, quality: int) -> None:
    import cv2

    image = cv2.imread(str(source))
    if image is None:
        raise TrainingError(f"cannot read {source}")
    scale = imgsz / max(image.shape[:2])
    if scale < 1.0:
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    if not cv2.imwrite(str(target), image, [cv2.IMWRITE_JPEG_QUALITY, quality]):
        raise TrainingError(f"cannot write {target}")


def pack(data_yaml: Path, out: Path, imgsz: int, quality: int) -> int:
    """Copy every split of a converted data set into `out`; returns its size in bytes."""
    data = yaml.safe_load(data_yaml.read_text())
    root = Path(data["path"])
    if out.exists():
        shutil.rmtree(out)
    for split in ("train", "val", "test"):
        images = root / str(data.get(split, f"images/{split}"))
        if not images.is_dir():
            continue
        for sub in ("images", "labels", "severity"):
            (out / sub / split).mkdir(parents=True, exist_ok=True)
        for image in sorted(images.iterdir()):
            shrink(image, out / "images" / split / f"{image.stem}.jpg", imgsz, quality)
            for sub in ("labels", "severity"):
                text = root / sub / split / f"{image.stem}.txt"
                if text.exists():
                    shutil.copyfile(text, out / sub / split / text.name)
    # Ultralytics resolves a relative `path` against the working directory: the repo root.
    (out / "data.yaml").write_text(yaml.safe_dump({**data, "path": str(out)}, sort_keys=False))
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument("--config", type=Path, required=True, help="training config (datasets/)")
    parser.add_argument("--out", type=Path, required=True, help="pack folder (relative to repo)")
    parser.add_argument("--imgsz", type=int, default=416, help="long side of the packed photos")
    parser.add_argument("--quality", type=int, default=80, help="JPEG quality, 1-100")
    parser.add_argument(
        "--budget-mib", type=float, default=24.0, help="refuse a pack larger than this (MiB)"
    )
    parser.add_argument("--data-dir", type=Path, default=Path("runs/data"), help="conversions")
    parser.add_argument("--data-root", type=Path, default=None, help="default: $CDAT_DATA_ROOT")
    return parser


def main(args: argparse.Namespace) -> int:
    from training.convert import ensure_dataset
    from training.dataconfig import load_training_config

    if not 1 <= args.quality <= 100 or args.imgsz < 32:
        raise TrainingError("--quality must be 1-100 and --imgsz at least 32")
    if args.out.is_absolute():
        raise TrainingError("--out must be relative to the repository root (it travels)")
    cfg = load_training_config(args.config, args.data_root)
    data_yaml = ensure_dataset(cfg, args.data_dir / cfg.name)
    size = pack(data_yaml, args.out, args.imgsz, args.quality)
    mib = size / 2**20
    print(f"packed {cfg.name} into {args.out}: {mib:.1f} MiB")
    if mib > args.budget_mib:
        raise TrainingError(
            f"pack is {mib:.1f} MiB, over the {args.budget_mib} MiB budget: lower --imgsz or "
            "--quality (the tree and the packs travel together, 64 MiB at most)"
        )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(get_args_parser().parse_args()))
    except TrainingError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        sys.exit(2)
