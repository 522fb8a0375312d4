"""Importing Ultralytics with everything that could reach the network switched off.

Ultralytics otherwise pings its hub (events sync), checks fonts and AMP weights
online, and may pip-install missing packages. Its AMP check runs a downloaded
yolo11n.pt in both precisions; offline it is replaced by a device check (AMP on
CUDA, never on the CPU), and a NaN loss still stops the run. Its trainer refuses bf16 autocast
anywhere but CUDA; here a run asking for `amp="bf16"` on the CPU gets PyTorch's CPU autocast,
which multiplies in bf16 where the CPU does so natively (training.train `--cpu-bf16`). Call
`load_ultralytics()` inside a handler, never at import time, so `cdat --help` stays free of
torch.
"""

from __future__ import annotations

import csv
import importlib.util
import os
from typing import Any

_OFF = {
    "sync": False,
    "clearml": False,
    "comet": False,
    "dvc": False,
    "mlflow": False,
    "raytune": False,
    "tensorboard": False,
    "wandb": False,
    "vscode_msg": False,
}


def load_ultralytics(threads: int | None = None, photo_conditions: float = 0.0) -> Any:
    """The `ultralytics` module, offline. `threads` caps PyTorch's intra-op threads;
    `photo_conditions` is the share of training images shown under a random phone
    condition (`training.photo_conditions.PhotoConditionAugment`; 0: none)."""
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("YOLO_VERBOSE", "True")
    import torch
    import ultralytics
    from ultralytics.utils import SETTINGS

    changed = {k: v for k, v in _OFF.items() if SETTINGS.get(k) != v}
    if changed:
        SETTINGS.update(changed)
    import ultralytics.engine.trainer as trainer

    trainer.check_amp = _offline_amp_check
    if not getattr(trainer.autocast, "cdat_cpu_bf16", False):
        trainer.autocast = _cpu_bf16_autocast(trainer.autocast)
    if importlib.util.find_spec("polars") is None:
        # A lent GPU image has no polars (a 54 MB wheel); Ultralytics uses it only to copy
        # results.csv into each checkpoint, which the csv module does as well.
        setattr(trainer.BaseTrainer, "read_results_csv", _read_results_csv)  # noqa: B010
    _install_photo_conditions(photo_conditions)
    if threads:
        torch.set_num_threads(threads)
    return ultralytics


def _install_photo_conditions(share: float) -> None:
    """Every training pipeline Ultralytics builds from here on (close-mosaic rebuilds it)
    gets the phone-condition step right after its Albumentations step (a colour-free
    point, before the HSV jitter; that step does nothing without its package); `share` 0
    builds the pipelines as Ultralytics does."""
    import ultralytics.data.dataset as dataset
    from ultralytics.data.augment import Albumentations

    from training.photo_conditions import PhotoConditionAugment

    original = getattr(dataset.v8_transforms, "cdat_original", dataset.v8_transforms)
    if share == 0.0:
        dataset.v8_transforms = original
        return

    def v8_transforms(data: Any, imgsz: int, hyp: Any) -> Any:
        pipeline = original(data, imgsz, hyp)
        slot = next(
            i for i, step in enumerate(pipeline.transforms) if isinstance(step, Albumentations)
        )
        pipeline.insert(slot + 1, PhotoConditionAugment(share))
        return pipeline

    v8_transforms.cdat_original = original  # type: ignore[attr-defined]
    setattr(dataset, "v8_transforms", v8_transforms)  # noqa: B010


def _read_results_csv(self: Any) -> dict[str, list[Any]]:
    try:
        with self.csv.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError:
        return {}
    return {key: [_number(row[key]) for row in rows] for key in (rows[0] if rows else {})}


def _number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def _cpu_bf16_autocast(ultralytics_autocast: Any) -> Any:
    """Ultralytics' autocast, with bf16 allowed on the CPU."""
    import torch

    def autocast(enabled: Any, device: str = "cuda") -> Any:
        if device == "cpu" and enabled is torch.bfloat16:
            return torch.amp.autocast("cpu", dtype=torch.bfloat16)
        return ultralytics_autocast(enabled, device)

    autocast.cdat_cpu_bf16 = True  # type: ignore[attr-defined]
    autocast.ultralytics_autocast = ultralytics_autocast  # type: ignore[attr-defined]
    return autocast


def _offline_amp_check(model: Any) -> bool:
    return bool(next(model.parameters()).device.type == "cuda")
