"""Each backend and precision loads and runs a model the test builds, and finds what the
FP32 reference finds; a backend whose package is missing is skipped, saying so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from inference.backends import BackendName, Precision, available, open_session
from inference.errors import ModelUnavailable
from inference.parity import compare
from inference.runtime import DetectorRuntime, OnnxRuntime

from .conftest import FakeDet, make_fake_model, textured

IMGSZ = 64
NC = 3
CASES: list[tuple[BackendName, Precision]] = [
    ("onnxruntime", "fp32"),
    ("openvino", "fp32"),
    ("openvino", "bf16"),
]


def need(backend: BackendName) -> None:
    if not available(backend):
        pytest.skip(f"{backend} is not installed (pip install {backend})")


def conv_model(path: Path, imgsz: int = IMGSZ, nc: int = NC, seed: int = 0) -> Path:
    """A small convolutional network with a YOLO-seg export's interface: `output0`
    [1, 4+nc+32, N] from a strided convolution, prototypes [1, 32, S/4, S/4] from a
    pooled one. Random weights: it detects nothing real, but every backend must compute
    the same numbers from the same pixels."""
    rng = np.random.default_rng(seed)
    channels = 4 + nc + 32
    cells = (imgsz // 8) ** 2
    weights = {
        "w_head": rng.normal(0, 0.3, (channels, 3, 8, 8)).astype(np.float32),
        "b_head": rng.normal(0, 0.1, channels).astype(np.float32),
        "w_proto": rng.normal(0, 0.5, (32, 3, 3, 3)).astype(np.float32),
        "b_proto": np.zeros(32, np.float32),
        "shape0": np.array([1, channels, cells], np.int64),
    }
    nodes = [
        helper.make_node("Conv", ["images", "w_head", "b_head"], ["head"], strides=[8, 8]),
        helper.make_node("Reshape", ["head", "shape0"], ["output0"]),
        helper.make_node(
            "AveragePool", ["images"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4]
        ),
        helper.make_node("Conv", ["pooled", "w_proto", "b_proto"], ["output1"], pads=[1, 1, 1, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_conv_seg",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, imgsz, imgsz])],
        [
            helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, channels, cells]),
            helper.make_tensor_value_info(
                "output1", TensorProto.FLOAT, [1, 32, imgsz // 4, imgsz // 4]
            ),
        ],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    import onnx

    onnx.save(model, path)
    return path


def raw_outputs(path: Path, backend: BackendName, precision: Precision, photo: np.ndarray):
    from inference.imaging import letterbox, to_tensor

    session = open_session(path, backend, precision, threads=1)
    canvas, _ = letterbox(photo, session.shapes.imgsz)
    return session.run(to_tensor([canvas]))


@pytest.mark.parametrize(("backend", "precision"), CASES)
def test_each_backend_computes_the_reference_numbers(tmp_path, backend, precision):
    need(backend)
    # given a convolutional model and a photo
    path = conv_model(tmp_path / "tiny.onnx")
    photo = textured(96, 80, seed=3)
    # when the backend runs it
    out0, protos = raw_outputs(path, backend, precision, photo)
    ref0, ref_protos = raw_outputs(path, "onnxruntime", "fp32", photo)
    # then it has the model's shapes and numbers; bf16 keeps 8 bits of mantissa
    assert out0.shape == (1, 4 + NC + 32, 64) and protos.shape == (1, 32, 16, 16)
    scale = float(np.abs(ref0).max())
    tolerance = 0.03 * scale if precision == "bf16" else 1e-4 * scale
    np.testing.assert_allclose(out0, ref0, atol=tolerance)
    np.testing.assert_allclose(protos, ref_protos, atol=0.03 * float(np.abs(ref_protos).max()))


@pytest.mark.parametrize(("backend", "precision"), CASES)
def test_each_backend_finds_the_detections_of_the_fp32_reference(tmp_path, backend, precision):
    need(backend)
    dets = [
        FakeDet(20, 24, 16, 12, cls=0, score=0.9),
        FakeDet(44, 40, 20, 24, cls=2, score=0.6),
    ]
    path = make_fake_model(tmp_path / "fake.onnx", IMGSZ, NC, dets)
    photos = [textured(128, 96, seed=1), textured(80, 120, seed=2)]
    reference = OnnxRuntime(path, threads=1).infer(photos)
    session = open_session(path, backend, precision, threads=1)
    found = DetectorRuntime(session).infer(photos)
    parity = compare(reference, found)
    assert parity.reference == 4 and parity.matched == 4 and parity.candidate == 4
    assert parity.mean_mask_iou is not None and parity.mean_mask_iou > 0.95
    assert parity.max_score_drift is not None and parity.max_score_drift < 0.01


def test_openvino_compiled_for_a_batch_pads_the_last_chunk(tmp_path):
    need("openvino")
    path = make_fake_model(tmp_path / "fake.onnx", IMGSZ, NC, [FakeDet(30, 30, 20, 20, 1, 0.7)])
    photos = [textured(100, 60, seed=k) for k in range(3)]
    batched = DetectorRuntime(open_session(path, "openvino", threads=1, batch_size=2))
    assert batched.batch_size == 2
    one_by_one = OnnxRuntime(path, threads=1).infer(photos)
    for a, b in zip(one_by_one, batched.infer(photos), strict=True):
        np.testing.assert_allclose(a.boxes, b.boxes, atol=0.05)
        assert (a.masks == b.masks).all()


def test_int8_quantised_model_runs_on_each_backend(tmp_path, encode):
    pytest.importorskip("onnxruntime.quantization")
    from inference.quantize import quantize_model

    path = conv_model(tmp_path / "tiny.onnx")
    calibration = []
    for k in range(4):
        photo = tmp_path / f"cal{k}.png"
        photo.write_bytes(encode(textured(96, 96, seed=10 + k)))
        calibration.append(photo)
    int8 = quantize_model(path, tmp_path / "tiny.int8.onnx", calibration)
    photo = textured(96, 96, seed=11)
    ref0, _ = raw_outputs(path, "onnxruntime", "fp32", photo)
    for backend in ("onnxruntime", "openvino"):
        if not available(backend):
            continue
        out0, protos = raw_outputs(int8, backend, "int8", photo)
        assert out0.shape == ref0.shape and protos.shape == (1, 32, 16, 16)
        # 8-bit steps across the calibrated range: close, not equal
        error = float(np.abs(out0 - ref0).mean()) / float(np.abs(ref0).mean())
        assert 0.0 < error < 0.1


def test_bf16_on_onnxruntime_is_refused_clearly(tmp_path):
    path = make_fake_model(tmp_path / "fake.onnx", IMGSZ, NC, [])
    with pytest.raises(ModelUnavailable, match="not bf16"):
        open_session(path, "onnxruntime", "bf16")
