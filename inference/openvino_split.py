"""A YOLO-seg model in OpenVINO with its body in bf16 and its segmentation head in FP32.

Precision ``bf16-fp32-head``: the network is cut where the head (the last layer of an
Ultralytics export, `/model.N/...` with the largest N: boxes, classes, mask coefficients
and mask prototypes) reads the neck's feature maps. Everything those feature maps need is
compiled with OpenVINO's bf16 hint, the head in FP32, and the two run one after the other
on one request each. What decides where a damage lands (the masks) is then computed in
FP32 from bf16 features.

Why not one model with the head marked: OpenVINO 2026.4's CPU plugin ran the head's
convolutions in bf16 whether or not they carried the `disable_fp16_compression` attribute
(`bench/bench_part_head.py` reads the compiled model's runtime precisions back).

    session = SplitSession(path, threads=1)       # an `inference.backends.ModelSession`
    output0, protos = session.run(batch)
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import numpy as np

from inference.errors import ModelUnavailable

_LAYER = re.compile(r"/model\.(\d+)/")


def _layer(node: Any) -> int | None:
    found = _LAYER.match(node.get_friendly_name())
    return int(found.group(1)) if found else None


def _ancestors(nodes: list[Any]) -> set[str]:
    """Names of `nodes` and of every node they depend on."""
    seen: set[str] = set()
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if node.get_name() not in seen:
            seen.add(node.get_name())
            stack += [port.get_source_output().get_node() for port in node.inputs()]
    return seen


def split_model(model: Any) -> tuple[Any, Any]:
    """(body, head): the head reads the body's outputs, in order, as its parameters."""
    import openvino as ov
    from openvino import opset13 as ops

    numbered = [(layer, n) for n in model.get_ordered_ops() if (layer := _layer(n)) is not None]
    if not numbered:
        raise ModelUnavailable("no /model.N/ layers: not an Ultralytics export")
    head = max(layer for layer, _ in numbered)
    sources: dict[tuple[str, int], Any] = {}
    for layer, node in numbered:  # the neck's feature maps the head reads (constants stay)
        if layer != head:
            continue
        for port in node.inputs():
            source = port.get_source_output()
            feeder = source.get_node()
            if _layer(feeder) not in (None, head) and feeder.get_type_name() != "Constant":
                sources[(feeder.get_name(), source.get_index())] = source
    if not sources:
        raise ModelUnavailable(f"layer {head} reads no earlier layer: no head to split off")
    outputs = list(sources.values())
    body_nodes = _ancestors([s.get_node() for s in outputs])
    readers = [  # the head's uses of each feature map, found before the body's results
        [p for p in s.get_target_inputs() if p.get_node().get_name() not in body_nodes]
        for s in outputs
    ]
    body = ov.Model([ops.result(s) for s in outputs], model.get_parameters(), "body")
    inputs = []
    for source, ports in zip(outputs, readers, strict=True):
        param = ops.parameter(source.get_partial_shape(), source.get_element_type())
        for port in ports:
            port.replace_source_output(param.output(0))
        inputs.append(param)
    return body, ov.Model(model.get_results(), inputs, "head")


class SplitSession:
    """OpenVINO on the CPU: body in bf16, head in FP32 (the module says why)."""

    def __init__(self, path: Path, *, threads: int = 2, batch_size: int = 1) -> None:
        import openvino as ov

        from inference.backends import _shapes

        core = ov.Core()
        config = {
            "INFERENCE_NUM_THREADS": threads,
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
            "ENABLE_CPU_PINNING": False,  # as OpenVinoSession: two models side by side
        }
        try:
            model = core.read_model(str(path))
            imgsz = model.inputs[0].partial_shape[2].get_length()
            model.reshape({model.inputs[0].any_name: [batch_size, 3, imgsz, imgsz]})
            body, head = split_model(model)
            self.body = core.compile_model(
                body, "CPU", config | {"INFERENCE_PRECISION_HINT": "bf16"}
            )
            self.head = core.compile_model(
                head, "CPU", config | {"INFERENCE_PRECISION_HINT": "f32"}
            )
        except ModelUnavailable as exc:
            raise ModelUnavailable(f"cannot split {path}: {exc.message}") from exc
        except Exception as exc:  # openvino raises RuntimeError for anything it cannot read
            raise ModelUnavailable(f"cannot load {path} with OpenVINO: {exc}") from exc
        self.features = len(self.body.outputs)
        self._local = threading.local()  # one pair of requests per calling thread
        self.shapes = _shapes(
            path,
            list(self.body.inputs[0].shape),
            [list(o.shape) for o in self.head.outputs],
        )
        self.metadata: dict[str, str] = {}
        self.label = "openvino-bf16-fp32-head"
        # The first call on the loading thread (OpenVinoSession says why).
        shape = (self.shapes.batch or 1, 3, self.shapes.imgsz, self.shapes.imgsz)
        self.run(np.zeros(shape, np.float32))

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        requests = getattr(self._local, "requests", None)
        if requests is None:
            requests = (self.body.create_infer_request(), self.head.create_infer_request())
            self._local.requests = requests
        body, head = requests
        body.infer({0: batch})
        head.infer({k: body.get_output_tensor(k).data for k in range(self.features)})
        return head.get_output_tensor(0).data.copy(), head.get_output_tensor(1).data.copy()
