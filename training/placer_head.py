"""Store a damage model fine-tuned from the served one as a placer head on its backbone.

A placer (cdat/placement.py, inference/placer.py) is a damage model trained from the served
damage model's weights with its first 10 layers frozen, so they are the served model's. This
checks that they are, keeps the graph from layer 10 on (reading the served model's layer
outputs), writes it with the served file's checksum, and checks that the served model joined
to the head gives, on a generated image and on `--photo`s, exactly the candidate's own
outputs and the served model's. The placer measured on val (docs/model-experiments.md, "The
served damage placed by the retrained model"), trained and exported first::

    python -m training.train --config datasets/damage-claims.yaml \\
        --init inference/models/damage-claims-seg-n-20261201.pt --imgsz 416 --freeze 10 \\
        --batch 16 --cache --threads 2 --time 1.1 --close-mosaic 1 --warmup-epochs 0 \\
        --optimizer AdamW --lr0 0.0003 --cos-lr --name damage-claims-closeups
    cdat export --weights runs/train/damage-claims-closeups/weights/best.pt \\
        --out runs/cand/dcc3.onnx
    python -m training.placer_head --candidate runs/cand/dcc3.onnx \\
        --damage inference/models/damage-claims-seg-n-20261201.onnx \\
        --out runs/placer/damage-placer-head.onnx
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from training.errors import TrainingError, run_script

TOLERANCE = 1e-4
"""Largest output difference the joined graph may show against the models alone (the same
operations on the same weights; only the graph optimiser's fusions may differ)."""


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument("--candidate", type=Path, required=True,
                        help="the placer's whole .onnx (cdat export of the fine-tuned "
                        "model)")  # fmt: skip
    parser.add_argument("--damage", type=Path, required=True,
                        help="the damage model's .onnx it was fine-tuned from, as "
                        "served")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True,
                        help="where to write the head (.onnx)")  # fmt: skip
    parser.add_argument("--photo", type=Path, nargs="*", default=[],
                        help="photos to check the joined graph on, besides a generated "
                        "image")  # fmt: skip
    return parser


def check_joined(candidate: Path, damage: Path, head: Path, photos: list[Path]) -> float:
    """The largest difference between the joined graph's four outputs and the two models'
    own on the same inputs; TrainingError above `TOLERANCE`."""
    import cv2
    import onnxruntime as ort

    from inference.imaging import letterbox, to_tensor
    from inference.placer import twin_model

    def session(source: str | bytes) -> ort.InferenceSession:
        return ort.InferenceSession(source, providers=["CPUExecutionProvider"])

    twin = session(twin_model(damage, head).SerializeToString())
    alone, placer = session(str(damage)), session(str(candidate))
    side = int(twin.get_inputs()[0].shape[2])
    inputs = [np.random.default_rng(0).random((1, 3, side, side), dtype=np.float32)]
    for photo in photos:
        image = cv2.imread(str(photo))
        if image is None:
            raise TrainingError(f"--photo {photo}: not an image")
        inputs.append(to_tensor([letterbox(image, side)[0]]))
    worst = 0.0
    for x in inputs:
        both = twin.run(None, {"images": x})
        own = alone.run(None, {"images": x}) + placer.run(None, {"images": x})
        worst = max(worst, *(float(np.abs(a - b).max()) for a, b in zip(both, own, strict=True)))
    if worst > TOLERANCE:
        raise TrainingError(f"the joined graph differs from the models alone by {worst:.3g}")
    return worst


def main(args: argparse.Namespace) -> int:
    import onnx

    from inference.errors import ModelUnavailable
    from inference.placer import placer_head

    for option, path in (("--candidate", args.candidate), ("--damage", args.damage)):
        if not path.is_file():
            raise TrainingError(f"{option} {path}: no such file")
    try:
        head = placer_head(args.candidate, args.damage)
    except ValueError as exc:
        raise TrainingError(f"--candidate {args.candidate}: {exc}") from None
    except Exception as exc:  # onnx raises its own errors for a file that is not a model
        raise TrainingError(f"cannot read --candidate or --damage: {exc}") from None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(head, str(args.out))
    try:
        worst = check_joined(args.candidate, args.damage, args.out, args.photo)
    except TrainingError:
        args.out.unlink()
        raise
    except ModelUnavailable as exc:
        args.out.unlink()
        raise TrainingError(str(exc)) from None
    size = args.out.stat().st_size / 1e6
    print(f"wrote {args.out} ({size:.1f} MB); joined to {args.damage} it matches both models "
          f"to {worst:.2g} on {1 + len(args.photo)} input(s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    run_script(main, get_args_parser())
