"""Which backend and precision serve a model on this machine.

Chosen once per model at start-up from what the CPU offers (`inference.cpu_features`),
what is installed, and what the model passed the precision gate in (accuracy on labelled
val: its registry entry's `precisions`); the operator can pin either (`CDAT_INFERENCE_RUNTIME`,
`CDAT_INFERENCE_PRECISION`). ONNX Runtime FP32 is the fallback everywhere: a precision
the model did not pass is never served, whatever the setting says.

Preference where nothing is pinned: bf16 on OpenVINO (native bf16 roughly halves the
models' time, same weights), then bf16 with the segmentation head in FP32 (the same weights;
between bf16 and FP32 in time), then int8 (needs a quantised file that passed), then fp32 on
ONNX Runtime. OpenVINO FP32 is not preferred: on the CPUs measured it is no faster.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from inference.backends import BACKENDS, PRECISIONS, BackendName, Precision, available
from inference.cpu_features import CpuFeatures
from inference.registry import ModelEntry
from inference.stage_bf16 import StagePrecision

log = logging.getLogger(__name__)

FALLBACK: tuple[BackendName, Precision] = ("onnxruntime", "fp32")


@dataclass(frozen=True)
class Choice:
    backend: BackendName
    precision: Precision
    file: str
    """Model file relative to the model directory (int8: the quantised copy)."""
    sha256: str
    reason: str


def _candidates(cpu: CpuFeatures) -> list[tuple[BackendName, Precision]]:
    """What this CPU runs fast, best first."""
    ranked: list[tuple[BackendName, Precision]] = []
    if cpu.bf16:  # bf16 throughout first; with the segmentation head in FP32 next
        ranked += [("openvino", "bf16"), ("openvino", "bf16-fp32-head")]
    if cpu.int8:
        ranked += [("openvino", "int8"), ("onnxruntime", "int8")]
    return [*ranked, FALLBACK]


def _refusal(
    entry: ModelEntry,
    backend: BackendName,
    precision: Precision,
    installed: Callable[[BackendName], bool],
) -> str | None:
    """Why (backend, precision) cannot serve this model; None when it can."""
    if not installed(backend):
        return f"{backend} is not installed"
    if backend == "onnxruntime" and precision not in ("fp32", "int8"):
        return "onnxruntime has no bf16 CPU path"
    record = entry.passed(precision)
    if record is None:
        return f"{entry.id} has not passed the precision gate (accuracy on val) in {precision}"
    if record.get("runtime") not in ("any", backend):
        return f"{entry.id} passed {precision} on {record.get('runtime')}, not on {backend}"
    if precision == "int8" and not record.get("file"):
        return f"{entry.id}'s int8 record names no quantised file"
    return None


def choose_backend(
    entry: ModelEntry,
    cpu: CpuFeatures,
    runtime: str = "auto",
    precision: str = "auto",
    installed: Callable[[BackendName], bool] = available,
) -> Choice:
    """The backend and precision for `entry` on a CPU with `cpu`'s features.

    A pinned runtime or precision narrows the candidates (and a pinned precision is
    tried even where the CPU lacks native support: the operator knows better); what is
    left must still be installed and have passed the gate, else ONNX Runtime FP32.
    """
    pool = _candidates(cpu)
    if precision in PRECISIONS:
        pinned = cast(Precision, precision)
        order = BACKENDS if pinned == "fp32" else BACKENDS[::-1]  # fp32: the reference first
        pool = [(b, pinned) for b in order]
    if runtime in BACKENDS:
        fallback: tuple[BackendName, Precision] = (cast(BackendName, runtime), "fp32")
        pool = [c for c in pool if c[0] == runtime]
        pool += [fallback] if fallback not in pool and precision == "auto" else []
    refused: list[str] = []
    for backend, prec in pool:
        why = _refusal(entry, backend, prec, installed)
        if why is None:
            return _choice(entry, backend, prec, "; ".join(refused) or "best on this CPU")
        refused.append(f"{backend}-{prec}: {why}")
    return _choice(entry, *FALLBACK, "fallback: " + ("; ".join(refused) or "nothing pinned runs"))


def _choice(entry: ModelEntry, backend: BackendName, precision: Precision, reason: str) -> Choice:
    record: dict[str, Any] = entry.passed(precision) or {}
    if precision == "int8":
        return Choice(backend, precision, record["file"], record.get("sha256", ""), reason)
    return Choice(backend, precision, entry.file, entry.sha256, reason)


def log_choice(entry: ModelEntry, cpu: CpuFeatures, choice: Choice, model_dir: Path) -> None:
    log.info(
        "%s model %s: %s %s (%s) on %s",
        entry.task,
        entry.id,
        choice.backend,
        choice.precision,
        choice.reason,
        cpu.summary(),
    )
    if not (model_dir / choice.file).is_file():
        log.warning("%s: %s is missing", entry.id, model_dir / choice.file)


def stage_precision(entry: ModelEntry, choice: Choice) -> StagePrecision:
    """How the crop stages beside `entry`'s model serve (inference/stage_bf16.py): in bf16
    where the model serves in bf16 on OpenVINO and its bf16 record says the gate measured
    the stages so too (`stages`); in FP32 everywhere else, a record made before the gate
    measured stages included."""
    if (choice.backend, choice.precision) != ("openvino", "bf16"):
        return "fp32"
    record = entry.passed("bf16") or {}
    return "bf16" if record.get("stages") == "bf16" else "fp32"
