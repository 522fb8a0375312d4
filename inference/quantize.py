"""Optional INT8 quantisation of an exported YOLO-seg ONNX model (static, QDQ).

On CPUs with AVX512-VNNI (or AVX-VNNI) an INT8 model runs about twice as fast as FP32.
It is not the default: a quantised model is a new model, so it must be evaluated and
registered like one (``cdat models register``) before it is promoted. The layers that
produce the head's outputs (see `head_output_nodes`) stay in FP32 by default, which keeps
boxes and scores close to the FP32 model.

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

import cv2

from inference.errors import InferenceError
from inference.imaging import decode_photo, letterbox, to_tensor

_BLOCK = re.compile(r"^/model\.(\d+)/")
PHOTO_EXTS = {".jpg", ".jpeg", ".png"}


def head_output_nodes(model_path: Path) -> list[str]:
    """Nodes of the head that produce its outputs: the final 1x1 convolutions of each
    branch, the DFL and the box/score arithmetic. Quantising these costs most of the
    accuracy (boxes move by pixels) for little speed; the inner Conv-BN-SiLU blocks of
    the head, where the time goes, are quantised."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    blocks = [(int(m.group(1)), n.name) for n in graph.node if (m := _BLOCK.match(n.name))]
    if not blocks:
        return []
    last = max(index for index, _ in blocks)
    return [
        name
        for index, name in blocks
        if index == last and ("/dfl/" in name or not re.search(r"/(conv|act)/", name))
    ]


def _calibration(images: Sequence[Path], imgsz: int) -> Iterator[dict]:
    for path in images:
        canvas, _ = letterbox(decode_photo(path.read_bytes()), imgsz)
        yield {"images": to_tensor([canvas])}


def quantize_model(
    model: Path, out: Path, images: Sequence[Path], keep_head_fp32: bool = True
) -> Path:
    """Write an INT8 (QDQ, per-channel) copy of `model` calibrated on `images`."""
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
            nodes_to_exclude=head_output_nodes(model) if keep_head_fp32 else [],
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
        "--quantize-head", action="store_true", help="also quantise the head's output layers"
    )
    return parser


def main(args: argparse.Namespace) -> int:
    if not args.model.is_file():
        print(f"error: no such model: {args.model}", file=sys.stderr)
        return 2
    photos = sorted(p for p in args.images.glob("*") if p.suffix.lower() in PHOTO_EXTS)
    try:
        out = quantize_model(args.model, args.out, photos[: args.limit], not args.quantize_head)
    except (InferenceError, cv2.error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(get_args_parser().parse_args()))
