"""The served runtime of one registry entry: backend and precision chosen for this CPU.

    runtime = served_runtime(registry, entry, settings, config, threads)

The CPU is read once per process (`cpu_features`) and each choice is logged, so a
worker's log says what it serves and why.
"""

from __future__ import annotations

import functools
from pathlib import Path

from cdat.settings import Settings
from inference.backends import BackendName, Precision, open_session
from inference.cpu_features import CpuFeatures, read_cpu_features
from inference.errors import ModelUnavailable
from inference.postprocess import PostprocessConfig
from inference.registry import ModelEntry, Registry, sha256_of
from inference.runtime import DetectorRuntime
from inference.runtime_choice import choose_backend, log_choice, stage_precision
from inference.stage_bf16 import StagePrecision
from inference.stage_record import ModelFile, checked_file


@functools.cache
def cpu_features() -> CpuFeatures:
    """This machine's CPU, read on first use (never at import)."""
    return read_cpu_features()


def served_runtime(
    registry: Registry,
    entry: ModelEntry,
    settings: Settings,
    config: PostprocessConfig | None,
    threads: int,
) -> DetectorRuntime:
    cpu = cpu_features()
    choice = choose_backend(entry, cpu, settings.inference_runtime, settings.inference_precision)
    log_choice(entry, cpu, choice, registry.model_dir)
    path = registry.model_dir / choice.file
    if choice.file != entry.file and choice.sha256 and sha256_of(path) != choice.sha256:
        # The entry's own file is checked by the loader; a quantised copy is checked here.
        raise ModelUnavailable(f"{path} does not match the checksum its gate record holds")
    session = open_session(
        path,
        choice.backend,
        choice.precision,
        threads=threads,
        batch_size=settings.onnx_batch_size,
    )
    return DetectorRuntime(session, batch_size=settings.onnx_batch_size, config=config)


def served_beside(
    registry: Registry,
    entry: ModelEntry,
    model: ModelFile,
    settings: Settings,
    config: PostprocessConfig | None,
    threads: int,
) -> DetectorRuntime:
    """A detector served beside `entry`'s own model (its `detector_where_found`), on the
    backend and precision chosen for `entry` on this CPU: the entry's precision gate measured
    the analysis with both."""
    choice = choose_backend(entry, cpu_features(), settings.inference_runtime,
                            settings.inference_precision)  # fmt: skip
    return detector_beside(
        registry.model_dir, entry, model, (choice.backend, choice.precision), threads,
        settings.onnx_batch_size, config,
    )  # fmt: skip


def detector_beside(
    model_dir: Path,
    entry: ModelEntry,
    model: ModelFile,
    served_as: tuple[BackendName, Precision],
    threads: int,
    batch_size: int,
    config: PostprocessConfig | None,
) -> DetectorRuntime:
    """A detector beside `entry`'s own model, on the backend and precision that model is
    `served_as`. Where that is int8, a quantised copy of the entry's model, the detector beside
    it runs that backend in FP32 (a gate record names one quantised file)."""
    path = checked_file(model_dir, model, f"damage model {entry.id}'s second detector")
    backend, precision = served_as
    session = open_session(
        path, backend, "fp32" if precision == "int8" else precision, threads=threads,
        batch_size=batch_size,
    )  # fmt: skip
    return DetectorRuntime(session, batch_size=batch_size, config=config)


def served_stage_precision(entry: ModelEntry, settings: Settings) -> StagePrecision:
    """How the crop stages beside `entry`'s model serve on this CPU (`stage_precision`)."""
    choice = choose_backend(entry, cpu_features(), settings.inference_runtime,
                            settings.inference_precision)  # fmt: skip
    return stage_precision(entry, choice)
