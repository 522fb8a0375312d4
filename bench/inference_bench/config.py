"""What one bench run measures, on which photos, and the machine it ran on."""

from __future__ import annotations

import os
import platform
import resource
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PHOTO_DIRS = ("damage-severity/images/test", "car-parts/testset/JPEGImages")
PHOTO_EXTS = {".jpg", ".jpeg", ".png"}
CALIBRATION_DIRS = ("damage-severity/images/train", "car-parts/trainingset/JPEGImages")
"""INT8 calibration photos: train photos, never the test photos that are timed and compared."""


@dataclass(frozen=True)
class Variant:
    """One way of running both models: a backend and precision, or Ultralytics predict."""

    backend: str
    """onnxruntime, openvino, ultralytics, or served: each model in what this machine
    serves it in (`inference.runtime_choice`, the registry's gate records), which may
    differ between the two models."""
    precision: str = "fp32"
    batch: int = 1
    second_look: bool = False
    """The damage model also looks at each photo's middle (inference/crop_look.py): what the
    saved time is spent on, where the promoted damage model was chosen with it."""

    @property
    def name(self) -> str:
        if self.backend == "ultralytics":
            return "ultralytics-predict"
        if self.backend == "served":
            return "served-with-second-look" if self.second_look else "served"
        suffix = f"-b{self.batch}" if self.batch > 1 else ""
        return f"{self.backend}-{self.precision}{suffix}"


REFERENCE = Variant("onnxruntime", "fp32")
SERVED = Variant("served")
DEFAULT_VARIANTS = (
    REFERENCE,
    SERVED,
    Variant("served", second_look=True),
    Variant("openvino", "fp32"),
    Variant("openvino", "bf16"),
    Variant("openvino", "bf16-fp32-head"),
    Variant("onnxruntime", "int8"),
    Variant("openvino", "int8"),
    Variant("ultralytics"),
)


@dataclass
class BenchConfig:
    model_dir: Path
    data_root: Path
    variants: tuple[Variant, ...] = DEFAULT_VARIANTS
    limit: int = 40
    warmup: int = 3
    threads: tuple[int, ...] = (1, 2)
    rounds: int = 1
    claim_size: int = 8
    claims: int = 3
    parity_photos: int = 20
    int8_dir: Path | None = None
    """Quantised models made earlier (damage.int8.onnx, parts.int8.onnx); else made here."""
    calibration_photos: int = 64
    damage_pt: Path | None = None
    parts_pt: Path | None = None
    profile: bool = False
    """cProfile the reference pipeline at the highest thread count (the top functions)."""


def find_photos(data_root: Path, limit: int, dirs: Sequence[str] = PHOTO_DIRS) -> list[Path]:
    """An even mix of damage close-ups and whole-car photos, in a stable order."""
    per_dir = []
    for sub in dirs:
        folder = data_root / sub
        per_dir.append(sorted(p for p in folder.glob("*") if p.suffix.lower() in PHOTO_EXTS))
    if not any(per_dir):
        raise SystemExit(f"error: no photos under {data_root} ({', '.join(dirs)})")
    mixed = [p for pair in zip(*per_dir, strict=False) for p in pair]
    return mixed[:limit]


def spread(paths: list[Path], count: int) -> list[Path]:
    """`count` photos spread evenly over `paths` (calibration: no one corner of a set)."""
    step = max(1, len(paths) // max(1, count))
    return paths[::step][:count]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def summarise(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    if not ordered:
        return {"median_ms": None, "p95_ms": None, "mean_ms": None}
    return {
        "median_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
    }


def cpu_description() -> dict[str, Any]:
    from inference.cpu_features import BF16_FLAGS, INT8_FLAGS, read_cpu_features

    cpu = read_cpu_features()
    return {
        "cpu": cpu.model,
        "cpu_count": cpu.cores,
        "cpu_flags_that_matter": sorted(cpu.flags & (BF16_FLAGS | INT8_FLAGS | {"avx512f"})),
    }


def environment() -> dict[str, Any]:
    import onnxruntime

    versions = {"onnxruntime": onnxruntime.__version__}
    try:
        import openvino

        versions["openvino"] = openvino.__version__
    except ImportError:
        versions["openvino"] = "not installed"
    return {
        **cpu_description(),
        "python": platform.python_version(),
        **versions,
        "platform": platform.platform(),
        # A shared machine: the load others put on it is part of the result.
        "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
    }


@dataclass
class Samples:
    """What the controller collects from one worker."""

    latencies_ms: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=dict)
    claim_s: list[float] = field(default_factory=list)
    claim_models_s: list[float] = field(default_factory=list)
    found: int = 0

    def add(self, latency: float, stages: dict[str, float], found: int) -> None:
        self.latencies_ms.append(latency)
        self.found += found
        for key, value in stages.items():
            self.stages.setdefault(key, []).append(value)
