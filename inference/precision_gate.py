"""The parity gate on the command line: may a model be served in bf16 or int8?

Runs the registry entry in FP32 on ONNX Runtime (the reference) and in the candidate
backend and precision on the same photos (the val split: never the test photos), judges
the difference (`inference.parity.Tolerance`) and records the verdict in the entry's
`precisions`, which serving reads (`inference.runtime_choice`)::

    python -m inference.precision_gate --task damage --precision bf16 \\
        --images ../shared/datasets/damage-severity/images/val
    python -m inference.quantize --model inference/models/D.onnx \\
        --out inference/models/D.int8.onnx --images ../shared/datasets/damage-severity/images/train
    python -m inference.precision_gate --task damage --precision int8 \\
        --file D.int8.onnx --images ../shared/datasets/damage-severity/images/val

Exit status 0 when it passed, 1 when refused, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cdat.errors import CdatError
from inference.backends import BACKENDS, BackendName, Precision, open_session
from inference.imaging import decode_photo
from inference.parity import Tolerance, Verdict, compare, judge
from inference.postprocess import PostprocessConfig
from inference.registry import ModelEntry, Registry, sha256_of
from inference.runtime import DetectorRuntime, OnnxRuntime

PHOTO_EXTS = {".jpg", ".jpeg", ".png"}


def gate(
    reference: DetectorRuntime,
    candidate: DetectorRuntime,
    images: Sequence[np.ndarray],
    tolerance: Tolerance | None = None,
) -> Verdict:
    """The candidate's detections against the reference's on `images`, judged."""
    return judge(compare(reference.infer(images), candidate.infer(images)), tolerance)


def check_entry(
    registry: Registry,
    entry: ModelEntry,
    backend: BackendName,
    precision: Precision,
    images: Sequence[np.ndarray],
    *,
    file: str | None = None,
    threads: int = 2,
    tolerance: Tolerance | None = None,
) -> dict[str, Any]:
    """The gate's record for one entry in one backend and precision (not yet saved)."""
    config = PostprocessConfig(conf=entry.served_conf)
    reference = OnnxRuntime(registry.path_of(entry), threads=threads, config=config)
    target = registry.model_dir / (file or entry.file)
    session = open_session(target, backend, precision, threads=threads)
    verdict = gate(reference, DetectorRuntime(session, config=config), images, tolerance)
    record: dict[str, Any] = {
        **verdict.as_dict(),
        "runtime": backend,
        "conf": entry.served_conf,
        "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if file:
        record.update(file=file, sha256=sha256_of(target))
    return record


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_dir = Path(__file__).resolve().parent / "models"
    parser.add_argument("--model-dir", type=Path, default=default_dir)
    parser.add_argument("--task", choices=("damage", "parts"), required=True)
    parser.add_argument("--entry", help="registry entry id (default: the promoted one)")
    parser.add_argument("--precision", choices=("bf16", "int8"), required=True)
    parser.add_argument("--runtime", choices=BACKENDS, default="openvino")
    parser.add_argument("--file", help="int8: the quantised file, relative to the model dir")
    parser.add_argument("--images", type=Path, required=True, help="folder of val photos")
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dry-run", action="store_true", help="judge without recording")
    return parser


def _photos(folder: Path, limit: int) -> list[np.ndarray]:
    if not folder.is_dir():
        raise CdatError(f"no such folder of photos: {folder}")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_EXTS)[:limit]
    if not paths:
        raise CdatError(f"no photos in {folder}")
    return [decode_photo(p.read_bytes()) for p in paths]


def main(args: argparse.Namespace) -> int:
    try:
        if args.precision == "int8" and not args.file:
            raise CdatError("--precision int8 needs --file, the quantised model")
        if args.precision == "bf16" and args.runtime != "openvino":
            raise CdatError("bf16 runs on openvino only")
        registry = Registry.load(args.model_dir)
        entry = registry.get(args.entry) if args.entry else registry.promoted_entry(args.task)
        if args.file and not (registry.model_dir / args.file).is_file():
            raise CdatError(f"no such model file in {registry.model_dir}: {args.file}")
        images = _photos(args.images, args.limit)
        record = check_entry(
            registry,
            entry,
            args.runtime,
            args.precision,
            images,
            file=args.file,
            threads=args.threads,
        )
    except CdatError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    record["photos_dir"] = str(args.images)
    print(json.dumps({"entry": entry.id, "precision": args.precision, **record}, indent=2))
    if not args.dry_run:
        registry.record_precision(entry.id, args.precision, record)
        registry.save()
        print(f"recorded in {registry.model_dir / 'registry.json'}")
    return 0 if record["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main(get_args_parser().parse_args()))
