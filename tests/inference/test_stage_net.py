"""A crop stage stored as its head reads the served model's own layers (inference/stage_net.py),
and a whole stage converts to one (training/stage_head.py) that answers as it did."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cdat.findings import Box
from cdat.part_family import FamilyRule
from cdat.taxonomy import PartFamily
from inference.errors import ModelUnavailable
from inference.part_family import FamilyStage
from inference.registry import sha256_of
from inference.stage_net import StageNet, features_model, layer_outputs
from training import stage_head
from training.errors import TrainingError

SIDE = 32
FAMILIES = (PartFamily.DOOR, PartFamily.HOOD, PartFamily.LIGHT)
RNG = np.random.default_rng(7)
W0 = RNG.normal(size=(4, 3, 3, 3)).astype(np.float32)
W1 = RNG.normal(size=(2, 4, 3, 3)).astype(np.float32)
W2 = RNG.normal(size=(5, 2, 1, 1)).astype(np.float32)
HEAD = RNG.normal(size=(6, len(FAMILIES))).astype(np.float32)


def _layers() -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Three layers named as an Ultralytics export names them: conv, then SiLU (x * sigmoid);
    the third stands for the detection head, which no stage reads."""
    nodes, inits, x = [], [], "images"
    for k, (w, stride) in enumerate(((W0, 2), (W1, 2), (W2, 1))):
        inits.append(numpy_helper.from_array(w, f"w{k}"))
        pad = w.shape[-1] // 2
        nodes += [
            helper.make_node("Conv", [x, f"w{k}"], [f"/model.{k}/conv/Conv_output_0"],
                             name=f"/model.{k}/conv/Conv", strides=[stride, stride],
                             pads=[pad] * 4),
            helper.make_node("Sigmoid", [f"/model.{k}/conv/Conv_output_0"],
                             [f"/model.{k}/act/Sigmoid_output_0"], name=f"/model.{k}/act/Sigmoid"),
            helper.make_node("Mul", [f"/model.{k}/conv/Conv_output_0",
                                     f"/model.{k}/act/Sigmoid_output_0"],
                             [f"/model.{k}/act/Mul_output_0"], name=f"/model.{k}/act/Mul"),
        ]  # fmt: skip
        x = f"/model.{k}/act/Mul_output_0"
    return nodes, inits


def make_backbone(path: Path, side: int = 64) -> Path:
    """A served model stand-in: fixed input side, as exported."""
    nodes, inits = _layers()
    graph = helper.make_graph(
        nodes,
        "detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, side, side])],
        [helper.make_tensor_value_info("/model.2/act/Mul_output_0", TensorProto.FLOAT, None)],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def make_whole_stage(path: Path) -> Path:
    """A part-family stage as training exported it before heads: the backbone's layers 0
    and 1, each averaged over space (ReduceMean), joined, a linear head and a softmax."""
    nodes, inits = _layers()
    nodes = nodes[:6]  # layers 0 and 1
    nodes += [
        helper.make_node("ReduceMean", ["/model.0/act/Mul_output_0"], ["m0"], axes=[2, 3],
                         keepdims=0),
        helper.make_node("ReduceMean", ["/model.1/act/Mul_output_0"], ["m1"], axes=[2, 3],
                         keepdims=0),
        helper.make_node("Concat", ["m0", "m1"], ["pooled"], axis=1),
        helper.make_node("MatMul", ["pooled", "head"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["families"], axis=1),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "part_family",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, SIDE, SIDE])],
        [helper.make_tensor_value_info("families", TensorProto.FLOAT, ["batch", len(FAMILIES)])],
        [*inits[:2], numpy_helper.from_array(HEAD, "head")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    entry = model.metadata_props.add()
    entry.key, entry.value = "families", ",".join(f.value for f in FAMILIES)
    onnx.save(model, str(path))
    return path


def _convert(tmp_path: Path, backbone: Path) -> Path:
    whole = make_whole_stage(tmp_path / "whole.onnx")
    out = tmp_path / "head.onnx"
    args = ["--stage", str(whole), "--backbone", str(backbone), "--out", str(out)]
    args += ["--layers", "0", "1"]
    assert stage_head.main(stage_head.get_args_parser().parse_args(args)) == 0
    return out


def test_layer_outputs_are_the_last_node_of_each_layer(tmp_path: Path) -> None:
    model = onnx.load(str(make_backbone(tmp_path / "m.onnx")))
    assert layer_outputs(model.graph, [0, 2]) == [
        "/model.0/act/Mul_output_0",
        "/model.2/act/Mul_output_0",
    ]
    with pytest.raises(ModelUnavailable, match=r"\[7\]"):
        layer_outputs(model.graph, [0, 7])


def test_features_are_the_spatial_means_of_the_tapped_layers_at_any_side(
    tmp_path: Path,
) -> None:
    # given a backbone exported at 64 px; when its layers 0 and 1 are pooled on 32 px crops
    import onnxruntime as ort

    backbone = make_backbone(tmp_path / "m.onnx")
    session = ort.InferenceSession(features_model(backbone, [1, 0]).SerializeToString())
    crops = RNG.random((2, 3, SIDE, SIDE), dtype=np.float32)
    features = session.run(["features"], {"images": crops})[0]
    # then 4 + 2 columns, layer 0's first, each the mean of that layer's map
    assert features.shape == (2, 6)
    whole = onnx.load(str(make_whole_stage(tmp_path / "w.onnx")))
    whole.graph.output.append(helper.make_tensor_value_info("pooled", TensorProto.FLOAT, None))
    pooled = ort.InferenceSession(whole.SerializeToString()).run(["pooled"], {"images": crops})[0]
    np.testing.assert_allclose(features, pooled, atol=1e-6)


def test_a_converted_head_on_the_backbone_answers_as_the_whole_stage(tmp_path: Path) -> None:
    # given a whole stage and the served model it was trained on
    backbone = make_backbone(tmp_path / "parts.onnx")
    head = _convert(tmp_path, backbone)
    # then the head is a fraction of the stage and records what it reads
    meta = {p.key: p.value for p in onnx.load(str(head)).metadata_props}
    assert meta["layers"] == "0,1" and meta["side"] == str(SIDE)
    assert meta["backbone_sha256"] == sha256_of(backbone) and meta["families"]
    # and, loaded as the part-family stage, answers as the whole one did
    stage = FamilyStage.load(head, FamilyRule(0.5), backbone=backbone)
    whole = FamilyStage.load(tmp_path / "whole.onnx", FamilyRule(0.5))
    image = (RNG.random((80, 96, 3)) * 255).astype(np.uint8)
    boxes = [Box(10, 10, 40, 50), Box(0, 0, 96, 80)]
    got, expected = stage.probabilities(image, boxes), whole.probabilities(image, boxes)
    assert stage.families == whole.families == FAMILIES and stage.side == SIDE
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert not np.allclose(got[0], got[1])  # the crops differ, so must the answers


def test_a_head_refuses_to_load_without_or_on_another_model(tmp_path: Path) -> None:
    backbone = make_backbone(tmp_path / "parts.onnx")
    head = _convert(tmp_path, backbone)
    with pytest.raises(ModelUnavailable, match="is a head"):
        StageNet.load(head, 1, "stage")
    with pytest.raises(ModelUnavailable, match="missing"):
        StageNet.load(head, 1, "stage", tmp_path / "gone.onnx")
    # a model whose weights differ (a retrained part model) gives other features
    W0[0, 0, 0, 0] += 1.0
    try:
        other = make_backbone(tmp_path / "other.onnx")
    finally:
        W0[0, 0, 0, 0] -= 1.0
    with pytest.raises(ModelUnavailable, match="another model"):
        StageNet.load(head, 1, "stage", other)


def test_converting_refuses_a_head_and_a_missing_file(tmp_path: Path) -> None:
    backbone = make_backbone(tmp_path / "parts.onnx")
    head = _convert(tmp_path, backbone)
    parser = stage_head.get_args_parser()
    again = ["--stage", str(head), "--backbone", str(backbone), "--out", str(tmp_path / "x.onnx")]
    with pytest.raises(TrainingError, match="already a head"):
        stage_head.main(parser.parse_args([*again, "--layers", "0", "1"]))
    # a backbone that is not a model, or lacks a tapped layer, is one error naming it
    whole = str(make_whole_stage(tmp_path / "w.onnx"))
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    for bad, message in ((notes, "cannot read"), (backbone, "no layer")):
        args = ["--stage", whole, "--backbone", str(bad), "--out", str(tmp_path / "z.onnx")]
        with pytest.raises(ModelUnavailable, match=f"--backbone: .*{message}"):
            stage_head.main(parser.parse_args([*args, "--layers", "0", "7"]))
    assert not (tmp_path / "z.onnx").exists()
    missing = ["--stage", str(tmp_path / "no.onnx"), "--backbone", str(backbone)]
    with pytest.raises(TrainingError, match="no such file"):
        stage_head.main(parser.parse_args([*missing, "--out", str(tmp_path / "y.onnx")]))


def test_a_heads_backbone_gets_the_threads_and_the_head_one(tmp_path: Path) -> None:
    # given a head and its backbone, loaded with a share of two threads
    backbone = make_backbone(tmp_path / "parts.onnx")
    net = StageNet.load(_convert(tmp_path, backbone), 2, "stage", backbone)
    # then the backbone runs on both, the tiny head on one (its pool would only spin beside it)
    assert net.body.get_session_options().intra_op_num_threads == 2
    assert net.head.get_session_options().intra_op_num_threads == 1
    # and a whole stage keeps the share for its own backbone
    whole = StageNet.load(tmp_path / "whole.onnx", 2, "stage")
    assert whole.body is None and whole.head.get_session_options().intra_op_num_threads == 2


def make_context_head(path: Path, backbone: Path, extras: int = 10) -> Path:
    """A part-family head trained with --context, by hand: softmax(joined @ weights), where
    joined is the crop's 6 pooled values, then `extras` (the photo's 6 and the 4 position
    numbers). The crop's rows are zero, the photo's are CONTEXT, and the position's give
    door K * cx and hood K * cy: every answer is known without the crop."""
    weights = np.zeros((16, len(FAMILIES)), np.float32)
    weights[6:12] = CONTEXT
    weights[12, 0], weights[13, 1] = K, K
    graph = helper.make_graph(
        [
            helper.make_node("Concat", ["features", "extras"], ["joined"], axis=1),
            helper.make_node("MatMul", ["joined", "w"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["families"], axis=1),
        ],
        "part_family_head",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 6]),
         helper.make_tensor_value_info("extras", TensorProto.FLOAT, ["batch", extras])],
        [helper.make_tensor_value_info("families", TensorProto.FLOAT, ["batch", len(FAMILIES)])],
        [numpy_helper.from_array(weights[: 6 + extras], "w")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    meta = {"families": ",".join(f.value for f in FAMILIES), "layers": "0,1", "side": str(SIDE),
            "backbone_sha256": sha256_of(backbone)}  # fmt: skip
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


K = 3.0
CONTEXT = RNG.normal(size=(6, len(FAMILIES))).astype(np.float32)


def test_a_context_stage_reads_the_whole_photo_and_where_the_damage_lies(
    tmp_path: Path,
) -> None:
    import cv2
    import onnxruntime as ort

    # given a context head (its answer ignores the crop) on the served model's layers
    backbone = make_backbone(tmp_path / "parts.onnx")
    stage = FamilyStage.load(
        make_context_head(tmp_path / "head.onnx", backbone), FamilyRule(0.5), backbone=backbone
    )
    assert stage.context
    # when two damages of a 96 x 80 photo are placed: one top left, one bottom right
    image = (RNG.random((80, 96, 3)) * 255).astype(np.uint8)
    got = stage.probabilities(image, [Box(0, 0, 24, 16), Box(48, 40, 96, 80)])
    # then each answer is softmax(the whole photo's pooled layers @ CONTEXT + position):
    # the photo squeezed to the crop side, its layers pooled by a session of their own
    whole = (
        cv2.cvtColor(
            cv2.resize(image, (SIDE, SIDE), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB
        )
        .transpose(2, 0, 1)[None]
        .astype(np.float32)
        / 255
    )
    session = ort.InferenceSession(features_model(backbone, [0, 1]).SerializeToString())
    photo = session.run(["features"], {"images": whole})[0] @ CONTEXT
    for k, (cx, cy) in enumerate(((12 / 96, 8 / 80), (72 / 96, 60 / 80))):
        logits = photo[0] + np.array([K * cx, K * cy, 0.0])
        expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        np.testing.assert_allclose(got[k], expected, atol=1e-5)


def test_a_head_whose_extras_are_not_the_photo_and_position_is_refused(tmp_path: Path) -> None:
    backbone = make_backbone(tmp_path / "parts.onnx")
    head = make_context_head(tmp_path / "head.onnx", backbone, extras=7)
    with pytest.raises(ModelUnavailable, match="extras"):
        FamilyStage.load(head, FamilyRule(0.5), backbone=backbone)


@pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None, reason="openvino is not installed"
)
def test_a_stage_served_in_bf16_answers_each_crop_as_fp32_does_at_any_batch(
    tmp_path: Path,
) -> None:
    # given a head on its backbone and a whole stage, each loaded in FP32 and in bf16
    backbone = make_backbone(tmp_path / "parts.onnx")
    head = _convert(tmp_path, backbone)
    whole = tmp_path / "whole.onnx"
    for path, base in ((head, backbone), (whole, None)):
        fp32 = StageNet.load(path, 2, "stage", base)
        bf16 = StageNet.load(path, 2, "stage", base, precision="bf16")
        assert (bf16.body if base else bf16.whole_bf16) is not None
        # and a whole stage's ONNX Runtime session, which no longer runs it, holds one thread
        assert bf16.head.get_session_options().intra_op_num_threads == 1
        # when batches of sizes it was and was not planned at are read, more than a chunk too
        for count in (1, 5, 37):
            crops = RNG.random((count, 3, SIDE, SIDE), dtype=np.float32)
            got, expected = bf16.run(crops), fp32.run(crops)
            # then every crop gets its own answer, as FP32 gives it to bf16's precision
            assert got.shape == expected.shape == (count, len(FAMILIES))
            np.testing.assert_allclose(got, expected, atol=0.02)
        assert not np.allclose(got[0], got[1])  # padding rows never stand in for crops
