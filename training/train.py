"""Train a YOLO instance-segmentation model (damage or car parts) from a dataset config.

Converts the config's data sets (cached under runs/data/<name>), trains from the weights
`--init` names (default: the shared COCO-pretrained YOLO11n-seg; `--init none` for random
weights; a promoted model's .pt for a warm start), then renders offline plots.

The shipped models were fine-tuned on a 2-core CPU (their cards give the exact commands).
A warm continuation of the shipped damage model, as its experiments ran
(docs/model-experiments.md)::

    python -m training.train --config datasets/damage-claims.yaml \
        --init inference/models/damage-claims-seg-n-20261201.pt --imgsz 416 --freeze 10 \
        --batch 16 --cache --threads 2 --time 1.3 --close-mosaic 1 --warmup-epochs 0 \
        --optimizer AdamW --lr0 0.0003 --cos-lr

At the photos' own resolution with YOLO11's backbone frozen (half the seconds per epoch;
tried as a warm continuation of the model before, not shipped: docs/model-experiments.md)::

    python -m training.train --config datasets/damage-claims.yaml \
        --init inference/models/damage-claims-seg-n-20261201.pt --imgsz 640 --freeze 10 \
        --batch 16 --cache --threads 2 --time 1.9 --close-mosaic 2 --warmup-epochs 0 \
        --optimizer AdamW --lr0 0.0005 --cos-lr

On a lent GPU, from packed data: training/gpu_session.sh (its header says how)::

    python -m training.train --config datasets/damage.yaml --prepared-data \
        runs/pack/damage/data.yaml --imgsz 416 --batch 32 --workers 7 --cache --device 0 \
        --time 0.15

On a CPU that multiplies bf16 natively (AMX or AVX512-BF16), add `--cpu-bf16`: a step in
about half the FP32 time, an epoch with its val in about 0.6 (docs/performance.md).

`--photo-conditions 0.5` shows half the training images as a phone may deliver them
(compressed, dark, noisy or colour-cast: training/photo_conditions.py), which Ultralytics
does not without albumentations; the photo-conditions bench measures what it buys.

Resume an interrupted run::

    python -m training.train --config datasets/damage.yaml --resume
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from inference.cpu_features import read_cpu_features
from training.convert import ensure_dataset
from training.cpu_bf16 import CPU_BF16_HINT, check_cpu_bf16
from training.dataconfig import Task, load_training_config
from training.errors import TrainingError, run_script
from training.init_weights import SCRATCH, resolve_init


@dataclass
class Hyperparameters:
    model: str = "yolo11n-seg.yaml"
    """Architecture yaml (from scratch) or a .pt checkpoint to fine-tune."""
    imgsz: int = 640
    epochs: int = 100
    time: float | None = None
    """Hours; when set, bounds the run and overrides `epochs`."""
    batch: int = 16
    workers: int = 0
    device: str = "cpu"
    seed: int = 0
    patience: int = 50
    optimizer: str = "auto"
    lr0: float = 0.01
    cos_lr: bool = False
    close_mosaic: int = 10
    mosaic: float = 1.0
    """Probability of mosaic augmentation, four photos tiled into one frame (Ultralytics'
    default 1.0). Mosaic trains a 640 px close-up at a quarter of its scale: continuations of
    the served damage model lost close-ups with it and kept them without
    (docs/model-experiments.md). 0 turns it off for the whole run, whatever its length,
    where `close_mosaic` counts epochs a time-bounded run does not know in advance."""
    warmup_epochs: float = 3.0
    fliplr: float | None = None
    """None: 0.5 for damage; 0 for parts, where a mirror image swaps left and right."""
    scale: float = 0.5
    """Random zoom gain range 1 +/- scale (Ultralytics' default 0.5). Lower keeps small
    damage from shrinking below what the detector can see: half of damage-severity's
    labelled damages cover under 0.05% of the photo."""
    copy_paste: float = 0.0
    """Share of each training photo's labelled instances pasted again, mirrored, where
    the copy overlaps no other (Ultralytics' segment copy-paste, flip mode): more small
    damages per photo for a detector that proposes too few."""
    photo_conditions: float = 0.0
    """Share of training images shown under a phone condition drawn at random: JPEG
    quality 20-80, under-exposure, sensor noise or a colour cast
    (training/photo_conditions.py). The served damage model, trained without, lost a
    quarter of car-parts-damage val's regions under sigma-10 noise (bench/
    bench_photo_conditions.py); Ultralytics adds none of these without albumentations."""
    freeze: int = 0
    """Leading network layers kept as they start (0: train all; 10: YOLO11's backbone).
    A frozen backbone trains faster per epoch, so a CPU run sees more epochs at the
    photos' own resolution, where small damage is visible."""
    cls_pw: float | None = None
    """Class-weight power (inverse frequency ** cls_pw). None: 0.5 for damage, whose
    minor-scratch is 72% of instances; 0 (off) for parts."""
    cache: bool = False
    amp: bool = True
    """Mixed precision on a GPU (Ultralytics trains in FP32 on the CPU; see `cpu_bf16`)."""
    cpu_bf16: bool = False
    """bf16 autocast on a CPU that multiplies bf16 natively (AMX or AVX512-BF16): a step
    took 2.45 s against 4.64-5.32 s in FP32 on a 2-core Xeon with AMX (docs/performance.md).
    Refused on other CPUs, where emulated bf16 is slower than FP32, and on a GPU."""
    threads: int | None = None
    """PyTorch CPU threads; None keeps the library default."""
    init: str | None = None
    """Weights to start from: a .pt checkpoint, or 'none' for random weights. None: the
    shared COCO-pretrained YOLO11n-seg where present (training/init_weights.py)."""
    single_cls: bool = False
    """Every labelled class trained as one (Ultralytics' single_cls; its class is named
    "item"): two of the three damage sources' types are pseudo types, and a detector that
    only finds damage leaves the type to a stage (docs/model-experiments.md)."""
    save_period: int = -1
    """Keep every this many epochs' checkpoint too (-1: best and last only): best.pt is
    kept on pack mAP, which holds no car-parts-damage photo, so a run's checkpoints are
    chosen on the claim pass over val instead (docs/model-experiments.md)."""

    def ultralytics_args(self, task: Task) -> dict[str, Any]:
        args = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in ("model", "threads", "init", "cpu_bf16", "photo_conditions"):
            args.pop(key)
        if self.cpu_bf16:
            args["amp"] = "bf16"
        if args["time"] is None:
            args.pop("time")
        if args["fliplr"] is None:
            args["fliplr"] = 0.0 if task == "parts" else 0.5
        if args["cls_pw"] is None:
            args["cls_pw"] = 0.0 if task == "parts" else 0.5
        return args


HELP = {
    "model": "architecture yaml (trains from scratch) or a .pt checkpoint to fine-tune",
    "imgsz": "training image size in pixels (longest side)",
    "epochs": "passes over the training set (bounded by --time when set)",
    "time": "hours: bounds the run and overrides --epochs",
    "batch": "images per batch (-1: as many as fit the GPU)",
    "workers": "data-loader processes (0: load in the training process)",
    "device": "cpu, a CUDA index such as 0, or several such as 0,1",
    "seed": "random seed, for repeatable runs and data splits",
    "patience": "stop after this many epochs without a better validation score",
    "optimizer": "SGD, Adam, AdamW, ... or auto (Ultralytics picks by run length)",
    "lr0": "initial learning rate",
    "cos_lr": "cosine learning-rate schedule instead of linear decay",
    "close_mosaic": "last epochs trained without mosaic augmentation",
    "mosaic": "probability in [0, 1] of mosaic augmentation (0: none, for the whole run)",
    "fliplr": "left-right flip probability in [0, 1] (default: 0.5 damage, 0 parts)",
    "scale": "random zoom: images are scaled by a gain in [1 - scale, 1 + scale], scale in [0, 1]",
    "copy_paste": "share in [0, 1] of each training photo's labelled instances pasted "
    "again, mirrored, where the copy overlaps no other",
    "photo_conditions": "share in [0, 1] of training images shown under a random phone "
    "condition (JPEG quality 20-80, under-exposure, sensor noise or a colour cast)",
    "freeze": "leading network layers kept as they start (0: train all; 10: YOLO11's backbone)",
    "cls_pw": "class-weight power in [0, 1]: inverse frequency ** cls_pw "
    "(default: 0.5 damage, 0 parts)",
    "cache": "cache decoded images in RAM (faster epochs, more memory)",
    "amp": "mixed precision on a GPU",
    "cpu_bf16": "train in bf16 autocast on a CPU with native bf16 (AMX or AVX512-BF16): "
    "faster steps; refused elsewhere",
    "threads": "PyTorch CPU threads (default: the library's)",
    "init": "weights to start from: a .pt checkpoint, or 'none' for random weights "
    "(default: the shared COCO-pretrained YOLO11n-seg where present)",
    "single_cls": "train every class as one (a class-agnostic detector; the exported "
    "model's one class is 'item')",
    "save_period": "also keep every this many epochs' checkpoint (weights/epochN.pt; -1: "
    "best and last only)",
}
"""`--help` text of each `Hyperparameters` field; a test checks that none is missing."""


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def epoch_period(text: str) -> int:
    """Every this many epochs, 1 or more; or -1 for never."""
    value = _whole_number(text)
    if value < 1 and value != -1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, or -1 (never), got {value}")
    return value


def layer_count(text: str) -> int:
    """A whole number of layers, zero or more."""
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def fraction(text: str) -> float:
    """A value in [0, 1], refused at the command line rather than deep in Ultralytics."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


OPTIONAL_TYPES: dict[str, Callable[[str], Any]] = {
    "time": float,
    "fliplr": fraction,
    "mosaic": fraction,
    "scale": fraction,
    "copy_paste": fraction,
    "photo_conditions": fraction,
    "freeze": layer_count,
    "save_period": epoch_period,
    "cls_pw": fraction,
    "threads": int,
    "init": str,
}
"""Command-line types of the fields whose default is None or whose range is checked."""


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument("--config", type=Path, required=True, help="training config (datasets/)")
    parser.add_argument("--data-root", type=Path, default=None, help="default: $CDAT_DATA_ROOT")
    parser.add_argument("--project", type=Path, default=Path("runs/train"), help="runs folder")
    parser.add_argument("--name", default=None, help="run name (default: config name)")
    parser.add_argument("--resume", action="store_true", help="continue the run's last.pt")
    parser.add_argument("--data-dir", type=Path, default=Path("runs/data"), help="conversions")
    parser.add_argument(
        "--prepared-data",
        type=Path,
        default=None,
        help="data.yaml of an already converted set (training.pack), used as it is",
    )
    defaults = Hyperparameters()
    for f in fields(Hyperparameters):
        value = getattr(defaults, f.name)
        flag, described = f"--{f.name.replace('_', '-')}", _help(f.name, value)
        if isinstance(value, bool):
            action = argparse.BooleanOptionalAction
            parser.add_argument(flag, action=action, default=value, help=described)
            continue
        kind = OPTIONAL_TYPES.get(f.name, type(value))
        parser.add_argument(flag, type=kind, default=value, help=described)
    return parser


def _help(name: str, default: object) -> str:
    shown = "" if default is None or isinstance(default, bool) else f" (default: {default})"
    return HELP.get(name, "") + shown


def hyperparameters_from(args: argparse.Namespace) -> Hyperparameters:
    return Hyperparameters(**{f.name: getattr(args, f.name) for f in fields(Hyperparameters)})


def command_line() -> str:
    return "python -m training.train " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def train(args: argparse.Namespace, command: str | None = None) -> Path:
    """Run training; returns the run folder (weights/best.pt inside)."""
    from training.ultra import load_ultralytics

    hp = hyperparameters_from(args)
    if hp.cpu_bf16:
        check_cpu_bf16(hp.device, read_cpu_features())
    cfg = load_training_config(args.config, args.data_root)
    name = args.name or cfg.name
    run_dir = (args.project / name).resolve()
    last = run_dir / "weights" / "last.pt"
    if args.resume and not last.is_file():
        raise TrainingError(f"nothing to resume: {last} does not exist")
    recorded = _recorded_hyperparameters(run_dir) if args.resume else {}
    if recorded.get("cpu_bf16", False):
        # Ultralytics resumes in the precision the run started in, whatever this CPU has.
        check_cpu_bf16("cpu", read_cpu_features())
    init = resolve_init(hp.init)
    if args.prepared_data is not None:
        if not args.prepared_data.is_file():
            raise TrainingError(f"--prepared-data {args.prepared_data}: no such data.yaml")
        data_yaml = args.prepared_data
    else:
        data_yaml = ensure_dataset(cfg, args.data_dir / cfg.name, hp.seed)
    # A resumed run keeps the augmentation it started with, as Ultralytics keeps its own.
    photo_conditions = float(recorded.get("photo_conditions", hp.photo_conditions))
    ultralytics = load_ultralytics(hp.threads, photo_conditions)
    if args.resume:
        ultralytics.YOLO(str(last)).train(resume=True)
    else:
        model = _initial_model(ultralytics, hp.model, init.path, cfg.classes)
        _check_freeze(hp.freeze, len(model.model.model))
        run_dir.mkdir(parents=True, exist_ok=True)
        meta = {
            "command": command or command_line(),
            "config": str(args.config),
            "task": cfg.task,
            "classes": cfg.classes,
            "hyperparameters": asdict(hp),
            "init": init.as_dict(),
            "data": [{"name": d.name, "licence": d.licence} for d in cfg.datasets],
        }
        (run_dir / "cdat_run.json").write_text(json.dumps(meta, indent=1) + "\n")
        if hp.device == "cpu" and not hp.cpu_bf16 and read_cpu_features().bf16:
            print(CPU_BF16_HINT, file=sys.stderr)  # after every check: errors stay one line
        model.train(
            data=str(data_yaml),
            project=str(args.project.resolve()),
            name=name,
            exist_ok=True,
            plots=False,  # Ultralytics' plots fetch a font online; ours render offline
            deterministic=True,
            verbose=True,
            **hp.ultralytics_args(cfg.task),
        )
    _render_plots(run_dir)
    return run_dir


def _recorded_hyperparameters(run_dir: Path) -> dict[str, Any]:
    """The hyperparameters the run was started with, as its cdat_run.json records them
    (none for a run started before that file was written)."""
    try:
        recorded = json.loads((run_dir / "cdat_run.json").read_text())
    except (OSError, ValueError):
        return {}
    hyperparameters: dict[str, Any] = recorded.get("hyperparameters", {})
    return hyperparameters


def _check_freeze(freeze: int, layers: int) -> None:
    """Refused before the run folder is written: a fully frozen model has nothing to learn."""
    if freeze >= layers:
        raise TrainingError(
            f"--freeze {freeze}: the model has {layers} layers, so nothing would train; "
            f"freeze fewer (10: YOLO11's backbone)"
        )


def _initial_model(ultralytics: Any, architecture: str, init: str, classes: list[str]) -> Any:
    """The model training starts from. A checkpoint with the run's own classes (a warm
    start from a promoted model) is taken whole, class head included; otherwise every
    tensor whose shape matches transfers and the class convolutions are learned anew."""
    if init == SCRATCH:
        return ultralytics.YOLO(architecture, task="segment")
    warm = ultralytics.YOLO(init, task="segment")
    if [str(warm.names[k]) for k in sorted(warm.names)] == classes:
        return warm
    return ultralytics.YOLO(architecture, task="segment").load(init)


def _render_plots(run_dir: Path) -> None:
    from training.plots import plot_training_curves

    csv = run_dir / "results.csv"
    if csv.exists():
        plot_training_curves(csv, run_dir / "training_curves.png")


def main(args: argparse.Namespace) -> int:
    run_dir = train(args)
    print(f"trained: {run_dir / 'weights' / 'best.pt'}")
    return 0


if __name__ == "__main__":
    run_script(main, get_args_parser())
