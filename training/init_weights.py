"""Where a training run starts: COCO-pretrained weights, a promoted model, or nothing.

The shared COCO YOLO11n-seg (`../shared/pretrained/`, see its README) is the default
wherever it is present; `--init none` trains from scratch, the only start free of the
Ultralytics weights' AGPL-3.0. A run records what it started from so that the registry
entry and the model card can name the init weights, their origin and their licence.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from training.dataconfig import REPO_ROOT
from training.errors import TrainingError

SHARED_PRETRAINED = REPO_ROOT.parent / "shared" / "pretrained" / "yolo11n-seg-coco.pt"
COCO_ORIGIN = (
    "Ultralytics YOLO11n-seg trained on COCO, rebuilt from the public INT8 TFLite export "
    "in AllanKamimura/yolo11 (Ultralytics 8.3.69) by ../shared/pretrained/convert.py"
)
COCO_LICENCE = (
    "AGPL-3.0 (Ultralytics' COCO weights): a model fine-tuned from them is a derivative "
    "of them, so serving it to users over a network carries AGPL-3.0's obligations "
    "(offer the model and the code that runs it under AGPL-3.0) unless an Ultralytics "
    "Enterprise licence applies; train with --init none for weights free of it"
)
SCRATCH = "none"


@dataclass(frozen=True)
class InitWeights:
    path: str
    """The checkpoint, or 'none' for a from-scratch run."""
    sha256: str
    origin: str
    licence: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_init() -> str:
    return str(SHARED_PRETRAINED) if SHARED_PRETRAINED.is_file() else SCRATCH


def resolve_init(value: str | None) -> InitWeights:
    """The weights named on the command line (None: the default), checked and described."""
    value = default_init() if value is None else value
    if value == SCRATCH:
        return InitWeights(SCRATCH, "", "random initialisation (from scratch)", "none")
    path = Path(value)
    if not path.is_file():
        raise TrainingError(f"--init {value}: no such checkpoint (or pass --init none)")
    if path.suffix != ".pt":
        raise TrainingError(f"--init {value}: expected an Ultralytics .pt checkpoint")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if path.name == SHARED_PRETRAINED.name:
        return InitWeights(str(path), digest, COCO_ORIGIN, COCO_LICENCE)
    return InitWeights(
        str(path),
        digest,
        f"warm start from {path.name} (itself started as its model card says)",
        "as the init weights of the model it continues (see its card)",
    )
