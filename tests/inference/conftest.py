"""Fixtures: handcrafted ONNX models that emit known detections, and a model registry.

The fake models have the exact interface of an Ultralytics YOLO-seg ONNX export
(input `images` [B,3,S,S], `output0` [B,4+nc+32,N], `output1` [B,32,S/4,S/4]) but
ignore the pixels (all but the mean, where a test asks: `score_slope`), so tests can
assert where boxes and masks land in the photo.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cdat.settings import Settings
from cdat.taxonomy import SEGMENTED_PARTS
from cdat.whole_car import WholeCarRule
from inference.registry import ModelEntry, Registry, sha256_of

NUM_MASKS = 32
DAMAGE_CLASSES = ["minor-dent", "moderate-dent", "severe-dent", "minor-scratch", "moderate-broken"]
PART_CLASSES = [p.value for p in SEGMENTED_PARTS]
FULL, LEFT_HALF = 0, 1
"""Mask prototypes: FULL is on everywhere, LEFT_HALF on the left half of the model input."""


@dataclass(frozen=True)
class FakeDet:
    """A detection in model-input pixels: centre, size, class, score, prototype used."""

    cx: float
    cy: float
    w: float
    h: float
    cls: int
    score: float
    proto: int = FULL


def fake_outputs(imgsz: int, nc: int, dets: list[FakeDet]) -> tuple[np.ndarray, np.ndarray]:
    n = len(dets) + 4  # extra anchors below any threshold, as a real head has
    out0 = np.zeros((1, 4 + nc + NUM_MASKS, n), np.float32)
    out0[0, :4, len(dets) :] = np.array([[10], [10], [4], [4]], np.float32)
    for k, d in enumerate(dets):
        out0[0, :4, k] = (d.cx, d.cy, d.w, d.h)
        out0[0, 4 + d.cls, k] = d.score
        out0[0, 4 + nc + d.proto, k] = 1.0
    side = imgsz // 4
    protos = np.full((1, NUM_MASKS, side, side), -10.0, np.float32)
    protos[0, FULL] = 10.0
    protos[0, LEFT_HALF, :, : side // 2] = 10.0
    return out0, protos


def make_fake_model(
    path: Path,
    imgsz: int,
    nc: int,
    dets: list[FakeDet],
    tapped: bool = False,
    score_slope: float = 0.0,
) -> Path:
    """A fake export emitting `dets`; `tapped` also gives a `layer0` output, as a damage
    model tapped for its placer head does (inference/placer.py). A `score_slope` adds that
    times the input's mean (0..1) to the first detection's score: the one fake that sees
    what it is shown (a grey canvas around a photo changes the mean)."""
    return _save_fake(path, imgsz, nc, dets, "images", tapped, score_slope)


def make_fake_head(path: Path, imgsz: int, nc: int, dets: list[FakeDet]) -> Path:
    """A fake placer head: the `layer0` a tapped fake model gives in, `dets` out."""
    return _save_fake(path, imgsz, nc, dets, "layer0", False)


def _save_fake(
    path: Path,
    imgsz: int,
    nc: int,
    dets: list[FakeDet],
    source: str,
    tapped: bool,
    score_slope: float = 0.0,
) -> Path:
    out0, protos = fake_outputs(imgsz, nc, dets)
    slope = np.zeros_like(out0)
    if dets:
        slope[0, 4 + dets[0].cls, 0] = score_slope
    if source == "images":  # zero = 0 * mean(images), shaped [B,1,1,1]: outputs keep the batch
        first = [
            helper.make_node("ReduceMean", ["images", "axes"], ["mean"], keepdims=1),
            helper.make_node("Mul", ["mean", "zero_f"], ["zero4"]),
        ]
        shape: list[object] = ["batch", 3, imgsz, imgsz]
    else:  # the tapped layer already is such a zero
        first = [helper.make_node("Identity", [source], ["zero4"])]
        shape = ["batch", 1, 1, 1]
    nodes = [
        *first,
        helper.make_node("Squeeze", ["zero4", "sq_axes"], ["zero3"]),
        helper.make_node("Add", ["zero3", "out0_c"], ["constant0"]),
        helper.make_node("Add", ["zero4", "protos_c"], ["output1"]),
    ]
    if source == "images" and score_slope:
        nodes += [
            helper.make_node("Squeeze", ["mean", "sq_axes"], ["mean3"]),
            helper.make_node("Mul", ["mean3", "slope_c"], ["sloped"]),
            helper.make_node("Add", ["constant0", "sloped"], ["output0"]),
        ]
    else:
        nodes.append(helper.make_node("Identity", ["constant0"], ["output0"]))
    inits = [
        numpy_helper.from_array(np.array([1, 2, 3], np.int64), "axes"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero_f"),
        numpy_helper.from_array(np.array([3], np.int64), "sq_axes"),
        numpy_helper.from_array(out0, "out0_c"),
        numpy_helper.from_array(protos, "protos_c"),
        *([numpy_helper.from_array(slope, "slope_c")] if score_slope else []),
    ]
    outputs = [
        helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", *out0.shape[1:]]),
        helper.make_tensor_value_info("output1", TensorProto.FLOAT, ["batch", *protos.shape[1:]]),
    ]
    if tapped:
        nodes.append(helper.make_node("Identity", ["zero4"], ["layer0"]))
        outputs.append(helper.make_tensor_value_info("layer0", TensorProto.FLOAT, [None] * 4))
    graph = helper.make_graph(
        nodes,
        "fake_yolo_seg",
        [helper.make_tensor_value_info(source, TensorProto.FLOAT, shape)],
        outputs,
        [i for i in inits if source == "images" or i.name not in ("axes", "zero_f")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def write_registry(
    model_dir: Path,
    imgsz: int,
    damage: list[FakeDet] | None,
    parts: list[FakeDet] | None,
    whole_car_rule: WholeCarRule | None = None,
) -> Settings:
    """A model dir with the fake models promoted; None leaves that task out. The damage
    model's entry carries `whole_car_rule` as its own."""
    model_dir.mkdir(parents=True, exist_ok=True)
    entries, promoted = [], {}
    for task, classes, dets in (("damage", DAMAGE_CLASSES, damage), ("parts", PART_CLASSES, parts)):
        if dets is None:
            continue
        path = make_fake_model(model_dir / f"{task}.onnx", imgsz, len(classes), dets)
        entry_id = f"{task}-fake-1"
        entry = ModelEntry(entry_id, task, path.name, sha256_of(path), classes, imgsz)  # type: ignore[arg-type]
        if task == "damage" and whole_car_rule is not None:
            entry = replace(entry, whole_car_rule=whole_car_rule.to_record())
        entries.append(entry)
        promoted[task] = entry_id
    Registry(model_dir, entries, promoted).save()
    return Settings(model_dir=model_dir, onnx_threads=1, min_image_side=64)


def to_model(
    box: tuple[float, float, float, float], width: int, height: int, imgsz: int
) -> tuple[float, float, float, float]:
    """A photo-pixel box -> (cx, cy, w, h) in model-input pixels, from first principles."""
    scale = min(imgsz / width, imgsz / height)
    pad_x = (imgsz - round(width * scale)) / 2
    pad_y = (imgsz - round(height * scale)) / 2
    x1, y1, x2, y2 = box
    return (
        (x1 + x2) / 2 * scale + pad_x,
        (y1 + y2) / 2 * scale + pad_y,
        (x2 - x1) * scale,
        (y2 - y1) * scale,
    )


def textured(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A sharp, well exposed BGR photo stand-in (random blocks pass blur and exposure)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(40, 220, (max(1, height // 8), max(1, width // 8), 3), dtype=np.uint8)
    import cv2

    return cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)


@pytest.fixture
def encode():
    import cv2

    def _encode(image: np.ndarray, ext: str = ".png") -> bytes:
        ok, data = cv2.imencode(ext, image)
        assert ok
        return data.tobytes()

    return _encode
