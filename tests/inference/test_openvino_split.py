"""OpenVINO with the body in bf16 and the segmentation head in FP32, on a tiny network the
test builds with an Ultralytics export's layer names (`/model.N/...`, the head last)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from inference.errors import ModelUnavailable

from .conftest import textured
from .test_backends import conv_model, need, raw_outputs

IMGSZ, NC = 64, 3
CHANNELS = 4 + NC + 32


def yolo_named_model(path: Path) -> Path:
    """Two neck levels (`/model.0/`, `/model.1/`) and a head (`/model.2/`) reading both:
    `output0` [1, 4+nc+32, 64] and prototypes [1, 32, 16, 16]."""
    rng = np.random.default_rng(5)

    def w(*shape: int) -> np.ndarray:
        return rng.normal(0, 0.3, shape).astype(np.float32)

    weights = {
        "w0": w(8, 3, 4, 4), "w1": w(8, 8, 2, 2), "wa": w(CHANNELS, 8, 2, 2),
        "wb": w(CHANNELS, 8, 1, 1), "wp": w(32, 8, 3, 3),
        "flat": np.array([1, CHANNELS, 64], np.int64),
    }  # fmt: skip
    node = helper.make_node
    nodes = [
        node("Conv", ["images", "w0"], ["c0"], strides=[4, 4], name="/model.0/conv/Conv"),
        node("Relu", ["c0"], ["f0"], name="/model.0/act/Relu"),
        node("Conv", ["f0", "w1"], ["c1"], strides=[2, 2], name="/model.1/conv/Conv"),
        node("Relu", ["c1"], ["f1"], name="/model.1/act/Relu"),
        node("Conv", ["f0", "wa"], ["ha"], strides=[2, 2], name="/model.2/cv2/Conv"),
        node("Conv", ["f1", "wb"], ["hb"], name="/model.2/cv3/Conv"),
        node("Add", ["ha", "hb"], ["h"], name="/model.2/Add"),
        node("Reshape", ["h", "flat"], ["output0"], name="/model.2/Reshape"),
        node("Conv", ["f0", "wp"], ["output1"], pads=[1, 1, 1, 1], name="/model.2/proto/Conv"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_yolo_named",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, IMGSZ, IMGSZ])],
        [
            helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, CHANNELS, 64]),
            helper.make_tensor_value_info("output1", TensorProto.FLOAT, [1, 32, 16, 16]),
        ],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_the_split_model_computes_the_reference_numbers_with_its_head_in_fp32(tmp_path):
    need("openvino")
    from inference.backends import open_session

    # given a network with a head reading two neck levels, and a photo
    path = yolo_named_model(tmp_path / "tiny.onnx")
    photo = textured(96, 80, seed=3)
    # when it runs with the body in bf16 and the head in FP32
    out0, protos = raw_outputs(path, "openvino", "bf16-fp32-head", photo)
    ref0, ref_protos = raw_outputs(path, "onnxruntime", "fp32", photo)
    # then it has the model's shapes and, within bf16's 8 bits of mantissa, its numbers
    assert out0.shape == ref0.shape == (1, CHANNELS, 64) and protos.shape == (1, 32, 16, 16)
    np.testing.assert_allclose(out0, ref0, atol=0.03 * float(np.abs(ref0).max()))
    np.testing.assert_allclose(protos, ref_protos, atol=0.03 * float(np.abs(ref_protos).max()))
    # and the head was cut at both feature maps it reads, its convolutions run in FP32
    session = open_session(path, "openvino", "bf16-fp32-head", threads=1)
    assert session.label == "openvino-bf16-fp32-head" and session.features == 2  # type: ignore[attr-defined]
    runtime = session.head.get_runtime_model()  # type: ignore[attr-defined]
    precisions = {
        op.get_rt_info()["runtimePrecision"].astype(str)
        for op in runtime.get_ordered_ops()
        if op.get_rt_info()["layerType"].astype(str) == "Convolution"
    }
    assert precisions == {"f32"}


def test_a_model_without_ultralytics_layer_names_is_refused_clearly(tmp_path):
    need("openvino")
    from inference.backends import open_session

    path = conv_model(tmp_path / "plain.onnx")
    with pytest.raises(ModelUnavailable, match="not an Ultralytics export"):
        open_session(path, "openvino", "bf16-fp32-head", threads=1)
