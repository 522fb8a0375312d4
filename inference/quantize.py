"""Optional INT8 quantisation of an exported YOLO-seg ONNX model (static, QDQ).

On CPUs with AVX512-VNNI (or AVX-VNNI) an INT8 model runs about twice as fast as FP32.
It is not the default: a quantised model is a new model, so it must be evaluated and
registered like one (``cdat models register``) before it is promoted, or pass the precision
gate against its FP32 source (``python -m training.precision_gate --precision int8``).
The detection head stays in float by default (see `float_nodes`), which keeps boxes,
scores and masks close to the FP32 model; the backbone and neck, most of the time, are INT8.

    python -m inference.quantize --model inference/models/damage.onnx \\
        --out /tmp/damage.int8.onnx --images ../shared/datasets/damage-severity/images/val
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal, get_args

import cv2

from inference.errors import InferenceError
from inference.imaging import decode_photo, letterbox, to_tensor

_BLOCK = re.compile(r"^/model\.(\d+)/")
PHOTO_EXTS = {".jpg", ".jpeg", ".png"}
FloatScope = Literal["head", "outputs", "none"]


def float_nodes(model_path: Path, keep: FloatScope = "head") -> list[str]:
    """Nodes left in float: for ``head``, the whole detection head (its box, class and
    mask-coefficient branches, the mask prototypes and the final concat), whose outputs are
    coordinates, scores and mask logits that 8-bit steps visibly move; for ``outputs``,
    only the head's final arithmetic and DFL (the head's inner convolutions quantised,
    which lost 14 of 34 damage detections on the test photos); ``none`` quantises all."""
    import onnx

    if keep == "none":
        return []
    graph = onnx.load(str(model_path), load_external_data=False).graph
    blocks = [(int(m.group(1)), n.name) for n in graph.node if (m := _BLOCK.match(n.name))]
    if not blocks:
        return []
    last = max(index for index, _ in blocks)
    head = [name for index, name in blocks if index == last]
    if keep == "head":
        return head
    return [n for n in head if "/dfl/" in n or not re.search(r"/(conv|act)/", n)]


def _calibration(images: Sequence[Path], imgsz: int) -> Iterator[dict]:
    for path in images:
        canvas, _ = letterbox(decode_photo(path.read_bytes()), imgsz)
        yield {"images": to_tensor([canvas])}


def quantize_model(
    model: Path, out: Path, images: Sequence[Path], keep: FloatScope = "head"
) -> Path:
    """Write an INT8 (QDQ, per-channel) copy of `model` calibrated on `images`, with the
    nodes `float_nodes(model, keep)` left in float."""
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not images:
        raise InferenceError("quantisation needs calibration photos; none given")
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    imgsz = int(session.get_inputs()[0].shape[2])
    feed = _calibration(images, imgsz)

    class Reader(CalibrationDataReader):
        def get_next(self) -> dict | None:
            return next(feed, None)

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(model), str(prepared), skip_symbolic_shape=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        quantize_static(
            str(prepared),
            str(out),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=float_nodes(model, keep),
        )
    _copy_metadata(model, out)
    return out


def _copy_metadata(source: Path, target: Path) -> None:
    """Keep the exporter's metadata (class names, imgsz) that registration reads."""
    import onnx

    src = onnx.load(str(source), load_external_data=False)
    dst = onnx.load(str(target))
    del dst.metadata_props[:]
    for prop in src.metadata_props:
        dst.metadata_props.add(key=prop.key, value=prop.value)
    dst.metadata_props.add(key="quantization", value="int8-qdq-per-channel")
    onnx.save(dst, str(target))


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="INT8-quantise a YOLO-seg ONNX model")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--images", type=Path, required=True, help="folder of calibration photos")
    parser.add_argument("--limit", type=int, default=64, help="calibration photos to use")
    parser.add_argument(
        "--keep-float",
        choices=get_args(FloatScope),
        default="head",
        help="what stays in float: the whole head (default), its output layers, or nothing",
    )
    return parser


def main(args: argparse.Namespace) -> int:
    if not args.model.is_file():
        print(f"error: no such model: {args.model}", file=sys.stderr)
        return 2
    photos = sorted(p for p in args.images.glob("*") if p.suffix.lower() in PHOTO_EXTS)
    try:
        out = quantize_model(args.model, args.out, photos[: args.limit], args.keep_float)
    except (InferenceError, cv2.error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(get_args_parser().parse_args()))
