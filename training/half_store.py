"""Store a whole crop stage's weights at half precision; it still computes in FP32.

A stage stored whole (inference/stage_net.py) carries its own copy of a backbone's layers,
about 8.5 MiB at FP32, and the tree must leave room under a lent GPU's 64 MiB transfer for a
data shard (tests/training/test_gpu_session.py). Here each large FP32 weight is stored as
FP16 and cast back to FP32 by a node of the graph, which ONNX Runtime folds into a constant
when it loads the file: the served arithmetic is FP32 as before, only the weights are rounded
(to about 3 decimal digits). The file is checked against the original on generated crops
(and extras, for a verifier), and refused above `--tolerance`::

    python -m training.half_store --stage runs/verifier/verifier-tuned.onnx \\
        --out runs/verifier/verifier-tuned-half.onnx
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from training.errors import TrainingError, run_script

MIN_ELEMENTS = 1024
"""Smaller weights (biases, batch-norm folds) stay FP32: they are a rounding of the file."""


def half_model(model: Any) -> int:
    """Rewrites `model` (an onnx ModelProto) in place; returns how many weights it halved."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    kept, halved, casts = [], [], []
    for weight in graph.initializer:
        if weight.data_type != TensorProto.FLOAT or int(np.prod(weight.dims)) < MIN_ELEMENTS:
            kept.append(weight)
            continue
        values = numpy_helper.to_array(weight)
        stored = f"{weight.name}__fp16"
        halved.append(numpy_helper.from_array(values.astype(np.float16), stored))
        casts.append(helper.make_node("Cast", [stored], [weight.name], to=TensorProto.FLOAT,
                                      name=f"{weight.name}__to_fp32"))  # fmt: skip
    names = {c.output[0] for c in casts}
    inputs = [i for i in graph.input if i.name not in names]
    nodes = [*casts, *graph.node]
    graph.ClearField("initializer")
    graph.initializer.extend([*kept, *halved])
    graph.ClearField("node")
    graph.node.extend(nodes)
    graph.ClearField("input")
    graph.input.extend(inputs)
    return len(casts)


def largest_difference(original: Path, halved: Path, side: int, samples: int = 16) -> float:
    """Largest difference of the two files' first outputs on generated crops (and extras)."""
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    sessions = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
                for p in (original, halved)]  # fmt: skip
    feeds = {
        item.name: rng.random(
            (samples, 3, side, side) if item.name == "images" else (samples, int(item.shape[-1])),
            dtype=np.float32,
        )
        for item in sessions[0].get_inputs()
    }
    answers = [np.asarray(s.run(None, feeds)[0], np.float64) for s in sessions]
    return float(np.abs(answers[0] - answers[1]).max())


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument("--stage", type=Path, required=True, help="a whole stage's .onnx file")
    parser.add_argument("--out", type=Path, required=True, help="the halved .onnx to write")
    parser.add_argument("--tolerance", type=float, default=2e-3,
                        help="largest difference of outputs allowed on generated "
                        "crops")  # fmt: skip
    return parser


def main(args: argparse.Namespace) -> int:
    import onnx

    if not args.stage.is_file():
        raise TrainingError(f"--stage {args.stage}: no such file")
    if args.out.suffix != ".onnx" or args.out.resolve() == args.stage.resolve():
        raise TrainingError(f"--out {args.out}: name a new .onnx file")
    if not args.tolerance > 0:
        raise TrainingError(f"--tolerance {args.tolerance}: above 0")
    try:
        model = onnx.load(str(args.stage))
    except Exception as exc:  # onnx raises its own DecodeError and others
        raise TrainingError(f"--stage {args.stage}: not an ONNX file ({exc})") from exc
    names = [i.name for i in model.graph.input]
    if "features" in names or "images" not in names:
        raise TrainingError(f"--stage {args.stage}: not a whole stage (crop `images` in)")
    side = int(model.graph.input[names.index("images")].type.tensor_type.shape.dim[2].dim_value)
    count = half_model(model)
    if not count:
        raise TrainingError(f"--stage {args.stage}: no FP32 weight to store at half precision")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.checker.check_model(model)
    onnx.save(model, str(args.out))
    difference = largest_difference(args.stage, args.out, side)
    if difference > args.tolerance:
        args.out.unlink()
        raise TrainingError(f"{args.out}: differs from {args.stage} by {difference:.2e}")
    report = {"stage": str(args.stage), "weights_halved": count,
              "bytes": {"before": args.stage.stat().st_size, "after": args.out.stat().st_size},
              "largest_difference": difference}  # fmt: skip
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    run_script(main, get_args_parser())
