"""Model sessions: one exported YOLO-seg file run by ONNX Runtime or OpenVINO.

A session takes the letterboxed batch [B,3,S,S] float32 and returns the model's two
outputs (`output0`, the mask prototypes); `inference.runtime.DetectorRuntime` does the
letterboxing and decoding around it, the same for every backend.

* ``onnxruntime`` / ``fp32``: the fallback that works everywhere.
* ``openvino`` / ``fp32`` or ``bf16``: the same weights; ``bf16`` is OpenVINO's inference
  precision hint, which runs convolutions in bf16 on CPUs with AVX512-BF16 or AMX.
* ``int8``: a separate, quantised file (`inference.quantize`, QDQ ONNX), which either
  backend runs.
* ``openvino`` / ``bf16-fp32-head``: the same weights, the network in bf16 but its
  segmentation head in FP32 (`inference.openvino_split`).

Both packages are imported only when a session is opened.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

import numpy as np

from inference.errors import ModelUnavailable

BackendName = Literal["onnxruntime", "openvino"]
Precision = Literal["fp32", "bf16", "int8", "bf16-fp32-head"]
BACKENDS: tuple[BackendName, ...] = get_args(BackendName)
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
_PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")
_PACKAGES: dict[BackendName, str] = {"onnxruntime": "onnxruntime", "openvino": "openvino"}


@dataclass(frozen=True)
class Shapes:
    """The input and output shapes a model declares; None where a dimension is dynamic."""

    batch: int | None
    imgsz: int
    output0: tuple[int | None, ...]
    protos: tuple[int | None, ...]


class ModelSession(Protocol):
    shapes: Shapes
    metadata: dict[str, str]
    label: str
    """Backend and precision, e.g. 'openvino-bf16' (logged, and in bench results)."""

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[B,3,S,S] float32 -> (output0, prototypes), each with the batch axis."""
        ...


def available(backend: BackendName) -> bool:
    """Is the backend's package installed (without importing it)?"""
    return importlib.util.find_spec(_PACKAGES[backend]) is not None


def _dim(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def _shapes(path: Path, inputs: list[Any], outputs: list[Any]) -> Shapes:
    batch, _, height, width = inputs
    if not isinstance(height, int) or height != width:
        raise ModelUnavailable(f"{path}: expected a fixed square input, got {inputs}")
    return Shapes(
        _dim(batch),
        height,
        tuple(_dim(v) for v in outputs[0]),
        tuple(_dim(v) for v in outputs[1]),
    )


def small_cpu_session(path: Path, threads: int, what: str, model: bytes | None = None) -> Any:
    """An ONNX Runtime CPU session for one of the small models beside the detectors (the
    vehicle gate, the part-family stage, the damage verifier, a stage's cut backbone:
    `model`, serialised, made from `path`): `what` names it in the error a file that cannot
    be loaded gives."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # A pool left spinning after a stage's run takes the core the next photo's model needs
    # (docs/performance.md, "The crop stages on the whole budget").
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = str(path) if model is None else model
    try:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelUnavailable(f"cannot load {what} {path}: {exc}") from exc


def square_input_side(session: Any, path: Path, name: str | None = None) -> int:
    """The side of a small model's square (N, 3, side, side) image input (the first input,
    or the one called `name`); ModelUnavailable for any other shape."""
    inputs = session.get_inputs()
    shape = next((i.shape for i in inputs if i.name == name), None) if name else inputs[0].shape
    if shape is None or len(shape) != 4 or not isinstance(shape[2], int) or shape[2] != shape[3]:
        raise ModelUnavailable(f"{path}: expects a square image input, has {shape}")
    return int(shape[2])


class OrtSession:
    """ONNX Runtime on the CPU (or CUDA where a CUDA build finds a GPU)."""

    def __init__(
        self,
        path: Path,
        *,
        threads: int = 2,
        providers: tuple[str, ...] | None = None,
        model: bytes | None = None,
    ) -> None:
        """`model`: a graph made from `path` (serialised) to run in its place."""
        import onnxruntime as ort

        if providers is None:
            providers = tuple(p for p in _PREFERRED_PROVIDERS if p in ort.get_available_providers())
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            source = str(path) if model is None else model
            self.session = ort.InferenceSession(source, options, providers=list(providers))
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelUnavailable(f"cannot load ONNX model {path}: {exc}") from exc
        self.input_name = self.session.get_inputs()[0].name
        self.shapes = _shapes(
            path,
            list(self.session.get_inputs()[0].shape),
            [list(o.shape) for o in self.session.get_outputs()],
        )
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.label = "onnxruntime-int8" if "quantization" in self.metadata else "onnxruntime-fp32"

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        output0, protos = self.session.run(None, {self.input_name: batch})[:2]
        return output0, protos

    def run_all(self, batch: np.ndarray) -> list[np.ndarray]:
        """Every output the graph has, in its order (a joined graph has more than two)."""
        return list(self.session.run(None, {self.input_name: batch}))


class OpenVinoSession:
    """OpenVINO on the CPU, compiled for one batch size and precision hint."""

    def __init__(
        self,
        path: Path,
        *,
        threads: int = 2,
        precision: Precision = "fp32",
        batch_size: int = 1,
    ) -> None:
        import openvino as ov

        core = ov.Core()
        try:
            model = core.read_model(str(path))
            # A static batch lets the CPU plugin plan its memory once.
            imgsz = model.inputs[0].partial_shape[2].get_length()
            model.reshape({model.inputs[0].any_name: [batch_size, 3, imgsz, imgsz]})
            config = {
                "INFERENCE_NUM_THREADS": threads,
                "NUM_STREAMS": 1,
                "PERFORMANCE_HINT": "LATENCY",
                # bf16 for a bf16 hint; an int8 file's quantised layers stay int8 either way.
                "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
                # Two models share the cores side by side: pinning both to one core would
                # serialise them.
                "ENABLE_CPU_PINNING": False,
            }
            compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:  # openvino raises RuntimeError for anything it cannot read
            raise ModelUnavailable(f"cannot load {path} with OpenVINO: {exc}") from exc
        self.compiled = compiled
        # One request per calling thread: a request is not safe to share, and the analyzer
        # runs a claim's photos on two threads at once.
        self._local = threading.local()
        self.shapes = _shapes(
            path,
            list(compiled.inputs[0].shape),
            [list(o.shape) for o in compiled.outputs],
        )
        self.metadata: dict[str, str] = {}
        self.label = f"openvino-{precision}"
        # One call now, on the loading thread: openvino's first call sets up its numpy
        # bindings (a C++ static), and two threads making their first calls at once can
        # deadlock there (one holds the static's guard waiting for the GIL, the other holds
        # the GIL waiting for the guard), as the two models side by side did.
        shape = (self.shapes.batch or 1, 3, self.shapes.imgsz, self.shapes.imgsz)
        self.run(np.zeros(shape, np.float32))

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        request.infer({0: batch})
        # The request reuses its output buffers on the next call: copy them out.
        return (
            request.get_output_tensor(0).data.copy(),
            request.get_output_tensor(1).data.copy(),
        )


def open_session(
    path: Path,
    backend: BackendName = "onnxruntime",
    precision: Precision = "fp32",
    *,
    threads: int = 2,
    batch_size: int = 1,
) -> ModelSession:
    """A session for `path` (for int8: the quantised file itself)."""
    if not available(backend):
        raise ModelUnavailable(f"runtime {backend} is not installed (pip install {backend})")
    if backend == "onnxruntime":
        if precision not in ("fp32", "int8"):
            raise ModelUnavailable(f"onnxruntime serves fp32 and int8 models here, not {precision}")
        return OrtSession(path, threads=threads)
    if precision == "bf16-fp32-head":
        from inference.openvino_split import SplitSession

        return SplitSession(path, threads=threads, batch_size=batch_size)
    return OpenVinoSession(path, threads=threads, precision=precision, batch_size=batch_size)
