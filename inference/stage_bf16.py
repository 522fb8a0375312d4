"""A crop stage's heavy network run by OpenVINO in bf16, where its model passed so.

The crop stages (the damage verifiers, the part-family stage) pool a backbone's layers over
each crop; on ONNX Runtime in FP32 they took about a third of a served photo's time once the
looks were taken where damage is found (docs/performance.md). On a CPU with native bf16
(AVX512-BF16 or AMX), OpenVINO runs the same network about twice as fast. Whether a stage
serves so is the precision gate's word on its model's entry (`stages` in the entry's bf16
record: inference/runtime_choice.py `stage_precision`): the gate measures the claim figures
with the stages in bf16 before any photo is read so.

Only the heavy part moves: a head's backbone cut (`inference.stage_net.features_model`) or a
stage stored whole. A head's few matrix products stay on ONNX Runtime in FP32.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from inference.errors import ModelUnavailable

StagePrecision = Literal["fp32", "bf16"]
"""How a stage's heavy network serves: ONNX Runtime FP32, or OpenVINO bf16."""

BATCHES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
"""The batch sizes a bf16 stage runs at, every one planned at load: a photo's crops are
padded to the next (a shape never seen costs about 50 ms to plan), and more than the last
are run in chunks of it."""


class Bf16StageSession:
    """An ONNX model compiled by OpenVINO with the bf16 hint, for any batch of crops; it
    answers `run(names, feeds)` as an ONNX Runtime session does."""

    def __init__(self, model: bytes, threads: int, what: str, path: Path) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise ModelUnavailable(f"{what} {path}: bf16 needs openvino, not installed") from exc
        core = ov.Core()
        try:
            read = core.read_model(model, b"")
            self.inputs = [i.any_name for i in read.inputs]
            self.outputs = [o.any_name for o in read.outputs]
            config = {
                "INFERENCE_NUM_THREADS": threads,
                "NUM_STREAMS": 1,
                "PERFORMANCE_HINT": "LATENCY",
                "INFERENCE_PRECISION_HINT": "bf16",
                "ENABLE_CPU_PINNING": False,  # the detectors' sessions share these cores
            }
            self.compiled = core.compile_model(read, "CPU", config)
        except Exception as exc:  # openvino raises RuntimeError for anything it cannot read
            raise ModelUnavailable(f"cannot load {what} {path} with OpenVINO: {exc}") from exc
        # One request per calling thread: the analyzer reads a claim's photos side by side.
        self._local = threading.local()

    def warm(self, zero_feeds: Callable[[int], Mapping[str, np.ndarray]]) -> None:
        """A call at each batch size it will run (`zero_feeds(n)`: inputs for n crops), on
        the loading thread: openvino plans its kernels on a shape's first call (about 50 ms
        for a stage, on a photo's clock otherwise), and its first call of all sets up its
        numpy bindings, where two threads starting at once can deadlock
        (inference.backends.OpenVinoSession says how)."""
        for size in BATCHES:
            self._infer(zero_feeds(size))

    def run(self, names: Sequence[str] | None, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        """Each output named (None: all) for a batch of any size: run in chunks of at most
        `BATCHES[-1]` crops, each padded with zeros to the next size it was warmed at."""
        wanted = self.outputs if names is None else list(names)
        count = len(next(iter(feeds.values())))
        answers: list[list[np.ndarray]] = [[] for _ in wanted]
        for start in range(0, max(count, 1), BATCHES[-1]):
            chunk = {k: v[start : start + BATCHES[-1]] for k, v in feeds.items()}
            size = len(next(iter(chunk.values())))
            padded = next(b for b in BATCHES if b >= max(size, 1))
            out = self._infer({k: _padded(v, padded) for k, v in chunk.items()})
            for k, name in enumerate(wanted):
                answers[k].append(out[name][:size])
        return [np.concatenate(parts) for parts in answers]

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        request.infer({name: np.ascontiguousarray(value) for name, value in feeds.items()})
        # the request reuses its output buffers on the next call: copy them out
        return {name: request.get_tensor(name).data.copy() for name in self.outputs}


def _padded(values: np.ndarray, size: int) -> np.ndarray:
    """`values` with zero rows added to `size` rows."""
    if len(values) == size:
        return values
    pad = np.zeros((size - len(values), *values.shape[1:]), values.dtype)
    return np.concatenate([values, pad])
