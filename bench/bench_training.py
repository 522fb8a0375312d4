"""How long a training step takes on this CPU, in FP32 and in bf16 autocast (`--cpu-bf16`).

Ultralytics' own loop (data loading, augmentation, forward, loss, backward, optimiser step)
trains from `--init` on a config's converted data, as `training.train` would; after
`--warmup` steps, the next `--steps` are timed and the run is stopped. Precisions alternate
(`--rounds` times each), since this machine's speed drifts. The loss after the last step is
kept too, so a precision that trained differently would show. bf16 pays only on a CPU with
AVX512-BF16 or AMX; elsewhere it is measured only if `--precisions` names it.

    CDAT_DATA_ROOT=../shared/datasets .venv/bin/python bench/bench_training.py
    CDAT_DATA_ROOT=../shared/datasets .venv/bin/python bench/bench_training.py \\
        --config datasets/car-parts-damage.yaml \\
        --init inference/models/damage-claims-seg-n-20261201.pt --out /tmp/t.json

Prints each measurement and writes bench/results/training-steps.json.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inference.cpu_features import CpuFeatures, read_cpu_features  # noqa: E402
from training.convert import ensure_dataset  # noqa: E402
from training.dataconfig import Task, load_training_config  # noqa: E402
from training.errors import TrainingError  # noqa: E402
from training.train import Hyperparameters, fraction  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "training-steps.json"
PRECISIONS = ("fp32", "bf16")


class _Measured(Exception):
    """Raised from Ultralytics' batch callback once the steps are timed: the run stops."""


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument("--config", type=Path, default=ROOT / "datasets" / "parts.yaml",
                        help="training config whose train split is read")  # fmt: skip
    parser.add_argument("--data-root", type=Path, default=None, help="default: $CDAT_DATA_ROOT")
    parser.add_argument("--data-dir", type=Path, default=Path("runs/data"), help="conversions")
    parser.add_argument(
        "--init",
        default=str(ROOT / "inference" / "models" / "parts-seg-n-20261206b.pt"),
        help="checkpoint trained from (its classes should be the config's)",
    )
    parser.add_argument("--imgsz", type=int, default=416, help="training image size in pixels")
    parser.add_argument("--batch", type=int, default=16, help="images per step")
    parser.add_argument("--mosaic", type=fraction, default=0.0, help="mosaic probability in [0, 1]")
    parser.add_argument("--threads", type=int, default=2, help="PyTorch CPU threads")
    parser.add_argument("--warmup", type=int, default=5, help="steps run before timing")
    parser.add_argument("--steps", type=int, default=20, help="steps timed per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="measurements per precision")
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=None,
                        help="precisions measured, alternating (default: both where the CPU "
                        "has native bf16, else fp32)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON written")
    return parser


def measure(
    args: argparse.Namespace, data_yaml: Path, task: Task, precision: str
) -> dict[str, Any]:
    """One measurement: seconds per step over `--steps` steps after `--warmup`, with the
    task's defaults (flips, class weights) as `training.train` sets them."""
    from training.ultra import load_ultralytics

    ultralytics = load_ultralytics(args.threads)
    model = ultralytics.YOLO(args.init, task="segment")
    stamps: list[float] = []
    losses: dict[str, float] = {}

    def on_batch_end(trainer: Any) -> None:
        stamps.append(time.perf_counter())
        if len(stamps) > args.warmup + args.steps:
            losses.update({k: round(float(v), 4) for k, v in trainer.tloss.items()})
            raise _Measured

    model.add_callback("on_train_batch_end", on_batch_end)
    hp = Hyperparameters(
        imgsz=args.imgsz, batch=args.batch, epochs=1, mosaic=args.mosaic, close_mosaic=0,
        warmup_epochs=0, cpu_bf16=precision == "bf16",
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as runs, contextlib.suppress(_Measured):
        model.train(data=str(data_yaml), project=runs, name="bench", exist_ok=True,
                    plots=False, verbose=False, **hp.ultralytics_args(task))  # fmt: skip
    timed = stamps[args.warmup :]
    if len(timed) < args.steps + 1:
        raise SystemExit(
            f"error: an epoch of {data_yaml} is {len(stamps)} steps, fewer than --warmup "
            f"{args.warmup} + --steps {args.steps}; ask for fewer"
        )
    steps = [b - a for a, b in itertools.pairwise(timed)]
    return {
        "precision": precision,
        "seconds_per_step": round(statistics.mean(steps), 4),
        "median_seconds_per_step": round(statistics.median(steps), 4),
        "loss_after": losses,
    }


def default_precisions(cpu: CpuFeatures) -> list[str]:
    """Both where the CPU multiplies bf16 natively; elsewhere emulated bf16 is not worth timing."""
    return list(PRECISIONS) if cpu.bf16 else ["fp32"]


def summarise(measurements: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Mean seconds per step of each precision, and bf16's share of FP32's time."""
    means = {}
    for precision in PRECISIONS:
        seconds = [m["seconds_per_step"] for m in measurements if m["precision"] == precision]
        if seconds:
            means[precision] = round(statistics.mean(seconds), 4)
    if len(means) == len(PRECISIONS):
        means["bf16_over_fp32"] = round(means["bf16"] / means["fp32"], 3)
    return means


def main(args: argparse.Namespace) -> int:
    for name in ("warmup", "steps", "rounds", "batch", "threads", "imgsz"):
        if getattr(args, name) < 1:
            raise SystemExit(f"error: --{name} must be 1 or more")
    if not Path(args.init).is_file():
        raise SystemExit(f"error: --init {args.init}: no such checkpoint")
    try:
        cfg = load_training_config(args.config, args.data_root)
        data_yaml = ensure_dataset(cfg, args.data_dir / cfg.name, 0)
    except TrainingError as exc:
        raise SystemExit(f"error: {exc}") from None
    cpu = read_cpu_features()
    precisions = args.precisions or default_precisions(cpu)
    measurements = []
    for _ in range(args.rounds):
        for precision in precisions:
            measurement = measure(args, data_yaml, cfg.task, precision)
            print(json.dumps(measurement), flush=True)
            measurements.append(measurement)
    report = {
        "cpu": cpu.summary(),
        "native_bf16": cpu.bf16,
        "config": str(args.config),
        "init": str(args.init),
        "imgsz": args.imgsz,
        "batch": args.batch,
        "mosaic": args.mosaic,
        "threads": args.threads,
        "warmup": args.warmup,
        "steps": args.steps,
        "measurements": measurements,
        "summary": summarise(measurements),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
