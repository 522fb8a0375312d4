"""ONNX Runtime and Ultralytics/PyTorch give the same findings on the same weights.

A freshly built YOLO is almost constant (activations vanish through the untrained
layers), so the fixture calibrates the BatchNorm statistics on noise: the tiny model
then emits varied, input-dependent detections both runtimes must agree on.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from inference.postprocess import PostprocessConfig, RawDetections
from inference.runtime import OnnxRuntime

pytestmark = pytest.mark.slow
IMGSZ = 160


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> tuple[Path, Path]:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    torch = pytest.importorskip("torch")
    ultralytics = pytest.importorskip("ultralytics")
    import yaml

    folder = tmp_path_factory.mktemp("tiny_yolo")
    source = next((Path(ultralytics.__file__).parent / "cfg/models").rglob("yolo11-seg.yaml"))
    config = yaml.safe_load(source.read_text())
    config["nc"] = 3
    (folder / "yolo11n-seg.yaml").write_text(yaml.safe_dump(config))
    torch.manual_seed(0)
    model = ultralytics.YOLO(str(folder / "yolo11n-seg.yaml"))
    net = model.model
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = 1.0
    net.train()
    with torch.no_grad():
        net(torch.rand(2, 3, IMGSZ, IMGSZ))
        for seq in net.model[-1].cv3:  # keep class scores off the 0/1 rails: no ties
            seq[-1].weight.mul_(0.002)
            seq[-1].bias.zero_()
    net.eval()
    model.save(str(folder / "tiny.pt"))
    cwd = os.getcwd()
    os.chdir(folder)  # the exporter writes beside the weights and into the cwd
    try:
        # export what was saved (checkpoints hold fp16 weights), so both runtimes match
        reloaded = ultralytics.YOLO(str(folder / "tiny.pt"))
        exported = reloaded.export(format="onnx", imgsz=IMGSZ, opset=17, simplify=False)
    finally:
        os.chdir(cwd)
    return folder / "tiny.pt", folder / Path(exported).name


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area if area else 0.0


def matched(a: RawDetections, b: RawDetections) -> list[tuple[int, int]]:
    """Each detection of `a` paired with the closest-scoring same-class overlap in `b`."""
    pairs = []
    for i in range(len(a)):
        same = [
            j
            for j in range(len(b))
            if a.class_ids[i] == b.class_ids[j] and iou(a.boxes[i], b.boxes[j]) > 0.9
        ]
        if same:
            pairs.append((i, min(same, key=lambda j: abs(a.scores[i] - b.scores[j]))))
    return pairs


def test_onnx_and_ultralytics_runtimes_agree(tiny_weights):
    from inference.ultralytics_runtime import UltralyticsRuntime

    weights, onnx_path = tiny_weights
    config = PostprocessConfig(conf=0.4, max_det=30)
    rng = np.random.default_rng(0)
    photo = cv2.resize(rng.integers(0, 255, (25, 25, 3), dtype=np.uint8), (200, 200))
    # when both runtimes see the same photo with the same weights
    ours = OnnxRuntime(onnx_path, threads=1, config=config).infer([photo])[0]
    theirs = UltralyticsRuntime(weights, imgsz=IMGSZ, config=config).infer([photo])[0]
    # then they find the same objects, classes, scores and masks
    assert len(ours) >= 3, "the calibrated tiny model should detect something"
    pairs = matched(ours, theirs)
    assert len(pairs) >= 0.9 * max(len(ours), len(theirs))
    mask_ious = []
    for i, j in pairs:
        assert ours.scores[i] == pytest.approx(theirs.scores[j], abs=2e-3)
        np.testing.assert_allclose(ours.boxes[i], theirs.boxes[j], atol=1.0)
        union = (ours.masks[i] | theirs.masks[j]).sum()
        mask_ious.append((ours.masks[i] & theirs.masks[j]).sum() / max(union, 1))
    # Untrained masks are speckle, where resampling differences (Ultralytics thresholds
    # at input size and then rescales; we resample the prototypes once, onto the grid)
    # flip many pixels: agreement is judged on the median, not per mask.
    assert np.median(mask_ious) > 0.75


def test_int8_quantisation_keeps_the_head_fp32_and_the_masks_close(tiny_weights, tmp_path):
    import onnxruntime as ort

    from inference.imaging import letterbox, to_tensor
    from inference.quantize import float_nodes, quantize_model

    from .conftest import textured

    _, onnx_path = tiny_weights
    calibration = []
    for seed in range(4):
        path = tmp_path / f"calib{seed}.png"
        cv2.imwrite(str(path), textured(200, 150, seed))
        calibration.append(path)
    # when the model is quantised
    out = quantize_model(onnx_path, tmp_path / "tiny.int8.onnx", calibration)
    # then the head (with the prototypes and the final concat) stayed in float, the
    # backbone did not, and the exporter's metadata survived
    kept = float_nodes(onnx_path)
    assert any("/dfl/" in name for name in kept)
    assert any("/proto/cv1/conv/" in name for name in kept)
    outputs_only = float_nodes(onnx_path, "outputs")
    assert set(outputs_only) < set(kept)
    assert not any("/proto/cv1/conv/" in n for n in outputs_only)
    assert not any(name.startswith("/model.0/") for name in kept)
    int8 = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    meta = int8.get_modelmeta().custom_metadata_map
    assert "names" in meta and meta["quantization"].startswith("int8")
    # and its outputs stay close to the FP32 model's on a new photo
    fp32 = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    x = to_tensor([letterbox(textured(200, 200, 9), IMGSZ)[0]])
    a, b = fp32.run(None, {"images": x}), int8.run(None, {"images": x})
    assert a[0].shape == b[0].shape and a[1].shape == b[1].shape
    # How far the class scores of a *random* tiny model drift under INT8 depends on the
    # torch build that made it (0.073 mean in one fresh environment, under 0.05 in another),
    # so no bound on it is asserted here; the served models' INT8 agreement is measured on
    # real photos by bench/bench_inference.py, and INT8 is not served (inference/quantize.py).
    # The mask prototypes drift by the build too (correlation above 0.95 in one fresh
    # environment, 0.933 in another with onnxruntime 1.32.0, torch 2.15.0, ultralytics
    # 8.4.190), so this bound only catches a broken quantisation, not a lossy one.
    assert np.corrcoef(a[1].ravel(), b[1].ravel())[0, 1] > 0.9
