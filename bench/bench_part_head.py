"""The part model in bf16 with its segmentation head kept in FP32: faster, and closer to FP32?

The precision gate refused the part model in OpenVINO bf16 (part family on car-parts-damage
val 0.529 -> 0.500, tolerance 0.02), so it is served in FP32 and sets the pace of a photo.
This measures two ways of keeping the head (`model.23`: mask prototypes, mask coefficients,
boxes and classes) in FP32 while the rest of the network runs in bf16, beside all-FP32 and
all-bf16, on the same photos and weights:

* ``marked``: every head node carries OpenVINO's `disable_fp16_compression` runtime
  attribute (written into the IR, as OpenVINO's own passes write it), compiled with the
  bf16 hint; the compiled model's runtime precision of each head convolution is read back;
* ``split`` (precision ``bf16-fp32-head``, `inference.openvino_split`): the network cut at
  the head's inputs, the body compiled with the bf16 hint and the head in FP32, run one
  after the other.

Per variant: median ms per photo on one thread, the head's convolutions that run in bf16,
and detection parity against ONNX Runtime FP32 (`inference.parity`: matched detections,
mask IoU, score drift) at the served threshold on car-parts val photos. A variant worth
gating is one faster than FP32 whose parity is closer to FP32 than all-bf16's::

    python bench/bench_part_head.py --out bench/results/part-head-fp32.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from inference.backends import Shapes  # noqa: E402  (the repository on the path first)

HEAD = 23
"""The Segment head's index in the YOLO11-seg layout (node names `/model.23/...`)."""
CONFIG = {"INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"}


def _layer(name: str) -> int | None:
    found = re.match(r"/model\.(\d+)/", name)
    return int(found.group(1)) if found else None


def _read(core: Any, path: Path, imgsz: int) -> Any:
    model = core.read_model(str(path))
    model.reshape({model.inputs[0].any_name: [1, 3, imgsz, imgsz]})
    return model


def _shapes(compiled: Any, imgsz: int) -> Shapes:
    out0, protos = (tuple(int(d) for d in o.shape) for o in compiled.outputs[:2])
    return Shapes(1, imgsz, out0, protos)


class _Compiled:
    """One compiled OpenVINO model as an `inference.backends.ModelSession`."""

    def __init__(self, compiled: Any, imgsz: int, label: str) -> None:
        self.request = compiled.create_infer_request()
        self.shapes, self.metadata, self.label = _shapes(compiled, imgsz), {}, label

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.request.infer({0: batch})
        return tuple(self.request.get_output_tensor(i).data.copy() for i in (0, 1))  # type: ignore[return-value]


def marked(core: Any, path: Path, imgsz: int) -> tuple[Any, int]:
    """The model with every head node marked to keep FP32, compiled with the bf16 hint;
    and how many head convolutions still run in bf16."""
    with tempfile.TemporaryDirectory() as tmp:
        import openvino as ov

        xml = Path(tmp) / "parts.xml"
        ov.save_model(_read(core, path, imgsz), str(xml), compress_to_fp16=False)
        tree = ET.parse(xml)
        for layer in tree.getroot().iter("layer"):
            if _layer(layer.get("name", "")) == HEAD:
                rt = layer.find("rt_info")
                rt = ET.SubElement(layer, "rt_info") if rt is None else rt
                ET.SubElement(rt, "attribute", {"name": "disable_fp16_compression", "version": "0"})
        tree.write(xml)
        compiled = core.compile_model(
            core.read_model(str(xml)), "CPU", {**CONFIG, "INFERENCE_PRECISION_HINT": "bf16"}
        )
    return compiled, _head_convs_in_bf16(compiled)


def _head_convs_in_bf16(compiled: Any) -> int:
    count = 0
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        kind = info["layerType"].astype(str) if "layerType" in info else ""
        precision = info["runtimePrecision"].astype(str) if "runtimePrecision" in info else ""
        if "model.23" in op.get_friendly_name() and "onvolution" in kind and precision == "bf16":
            count += 1
    return count


def measure(runtime: Any, images: list[np.ndarray], repeats: int) -> float:
    """Median ms per photo of the session alone (letterboxing and decoding excluded)."""
    from inference.imaging import letterbox, to_tensor

    tensors = [to_tensor([letterbox(im, runtime.imgsz)[0]]) for im in images]
    for tensor in tensors[:3]:
        runtime.session.run(tensor)
    times = []
    for _ in range(repeats):
        for tensor in tensors:
            started = time.perf_counter()
            runtime.session.run(tensor)
            times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def main(args: argparse.Namespace) -> int:
    import openvino as ov

    from inference.backends import OpenVinoSession
    from inference.openvino_split import SplitSession
    from inference.parity import compare
    from inference.postprocess import PostprocessConfig
    from inference.registry import Registry
    from inference.runtime import DetectorRuntime, OnnxRuntime
    from training.claim_eval import DATASETS
    from training.mask_map import labelled_split

    registry = Registry.load(args.model_dir)
    entry = registry.promoted_entry("parts")
    path = registry.path_of(entry)
    photos = labelled_split(DATASETS / "car-parts.yaml", "val", entry.classes, 0, args.data_root)
    images = [p.image for p in photos[: args.photos]]
    served = PostprocessConfig(conf=entry.served_conf)
    reference = OnnxRuntime(path, threads=1, config=served)
    core = ov.Core()
    compiled, marked_bf16 = marked(core, path, entry.imgsz)
    variants: dict[str, Any] = {
        "openvino-fp32": OpenVinoSession(path, threads=1, precision="fp32"),
        "openvino-bf16": OpenVinoSession(path, threads=1, precision="bf16"),
        "bf16, head marked fp32": _Compiled(compiled, entry.imgsz, "marked"),
        "bf16 body, fp32 head (split)": SplitSession(path, threads=1),
    }
    expected = reference.infer(images)
    rows: dict[str, Any] = {"onnxruntime-fp32": {"median_ms": measure(reference, images, 1)}}
    for name, session in variants.items():
        runtime = DetectorRuntime(session, config=served)
        parity = compare(expected, runtime.infer(images)).as_dict()
        rows[name] = {"median_ms": measure(runtime, images, 1), "parity_vs_fp32": parity}
        print(f"{name:<30} {rows[name]['median_ms']:>6} ms  {parity}", flush=True)
    rows["bf16, head marked fp32"]["head_convolutions_in_bf16"] = marked_bf16
    report = {
        "benchmark": "part-head-fp32",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(["python", *sys.argv]),
        "model": entry.id,
        "openvino": ov.__version__,
        "photos": f"first {len(images)} of car-parts val",
        "threads": 1,
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        "variants": rows,
    }
    print(f"head convolutions still in bf16 when marked: {marked_bf16}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    default_root = os.environ.get("CDAT_DATA_ROOT", str(REPO.parent / "shared" / "datasets"))
    parser.add_argument("--model-dir", type=Path, default=REPO / "inference" / "models")
    parser.add_argument("--data-root", type=Path, default=Path(default_root))
    parser.add_argument("--photos", type=int, default=50, help="car-parts val photos")
    parser.add_argument("--out", type=Path, help="JSON report (bench/results/...)")
    return parser


if __name__ == "__main__":
    raise SystemExit(main(get_args_parser().parse_args()))
