"""Importing Ultralytics with everything that could reach the network switched off.

Ultralytics otherwise pings its hub (events sync), checks fonts and AMP weights
online, and may pip-install missing packages. Its AMP check runs a downloaded
yolo11n.pt in both precisions; offline it is replaced by a device check (AMP on
CUDA, never on the CPU), and a NaN loss still stops the run. Call `load_ultralytics()` inside a
handler, never at import time, so `cdat --help` stays free of torch.
"""

from __future__ import annotations

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


def load_ultralytics(threads: int | None = None) -> Any:
    """The `ultralytics` module, offline. `threads` caps PyTorch's intra-op threads."""
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
    if threads:
        torch.set_num_threads(threads)
    return ultralytics


def _offline_amp_check(model: Any) -> bool:
    return bool(next(model.parameters()).device.type == "cuda")
