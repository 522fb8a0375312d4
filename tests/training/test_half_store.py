"""Storing a whole stage's weights at half precision (training/half_store.py): smaller, the
same answers within the tolerance, served as before; bad inputs refused with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from training.errors import TrainingError
from training.half_store import get_args_parser, main

SIDE = 32
EXTRAS = 3


def whole_stage(path: Path, extras: int = EXTRAS, features_input: bool = False) -> Path:
    """A small generated stage as the training scripts export one: a conv layer on `images`,
    pooled, joined with `extras`, a linear layer and a sigmoid."""
    import torch
    from torch import nn

    torch.manual_seed(0)

    class Stage(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 64, 3, padding=1)
            self.linear = nn.Linear(64 + extras, 1)

        def forward(self, images: torch.Tensor, more: torch.Tensor) -> torch.Tensor:
            pooled = self.conv(images).relu().mean((2, 3))
            return torch.sigmoid(self.linear(torch.cat([pooled, more], 1))).squeeze(1)

    first = "features" if features_input else "images"
    torch.onnx.export(
        Stage().eval(), (torch.zeros(1, 3, SIDE, SIDE), torch.zeros(1, extras)), str(path),
        input_names=[first, "extras"], output_names=["damage"],
        dynamic_axes={first: {0: "batch"}, "extras": {0: "batch"}, "damage": {0: "batch"}},
        opset_version=17, dynamo=False,
    )  # fmt: skip
    return path


def run(*argv: str) -> int:
    return main(get_args_parser().parse_args(list(argv)))


@pytest.mark.slow
def test_a_halved_stage_is_smaller_answers_the_same_and_is_served(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import onnx

    from inference.stage_net import StageNet

    # given a whole stage with metadata
    stage = whole_stage(tmp_path / "stage.onnx")
    model = onnx.load(str(stage))
    entry = model.metadata_props.add()
    entry.key, entry.value = "classes", "dent,scratch"
    onnx.save(model, str(stage))
    out = tmp_path / "half.onnx"
    # when its weights are stored at half precision
    assert run("--stage", str(stage), "--out", str(out)) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # then the conv's weights (64 x 3 x 3 x 3) are halved, the linear layer's 67 are not
    assert report["weights_halved"] == 1
    assert report["bytes"]["after"] < report["bytes"]["before"]
    # and the served stage loads it with its metadata, and answers as the original does
    original = StageNet.load(stage, 1, "stage")
    halved = StageNet.load(out, 1, "stage")
    assert halved.side == SIDE and halved.metadata["classes"] == "dent,scratch"
    rng = np.random.default_rng(1)
    crops = rng.random((5, 3, SIDE, SIDE), dtype=np.float32)
    extras = rng.random((5, EXTRAS), dtype=np.float32)
    a, b = original.run(crops, extras), halved.run(crops, extras)
    assert a.shape == b.shape == (5,)
    assert np.abs(a - b).max() < 1e-3
    assert report["largest_difference"] < 1e-3


@pytest.mark.slow
def test_a_tolerance_the_rounding_exceeds_refuses_and_writes_nothing(tmp_path: Path) -> None:
    stage = whole_stage(tmp_path / "stage.onnx")
    out = tmp_path / "half.onnx"
    with pytest.raises(TrainingError, match=r"half\.onnx: differs from .*stage\.onnx by"):
        run("--stage", str(stage), "--out", str(out), "--tolerance", "1e-12")
    assert not out.exists()


@pytest.mark.slow
def test_a_head_is_not_a_whole_stage(tmp_path: Path) -> None:
    head = whole_stage(tmp_path / "head.onnx", features_input=True)
    with pytest.raises(TrainingError, match="not a whole stage"):
        run("--stage", str(head), "--out", str(tmp_path / "half.onnx"))
    assert not (tmp_path / "half.onnx").exists()


@pytest.mark.parametrize(
    ("stage", "out", "more", "message"),
    [
        ("missing.onnx", "half.onnx", [], "--stage .*missing.onnx: no such file"),
        ("stage.onnx", "stage.onnx", [], "--out .*stage.onnx: name a new .onnx file"),
        ("stage.onnx", "half.bin", [], r"--out .*half\.bin: name a new \.onnx file"),
        ("stage.onnx", "half.onnx", ["--tolerance", "0"], "--tolerance 0.0: above 0"),
        ("notonnx.onnx", "half.onnx", [], "--stage .*notonnx.onnx: not an ONNX file"),
    ],
)
def test_bad_arguments_are_one_error_line(
    tmp_path: Path, stage: str, out: str, more: list[str], message: str
) -> None:
    (tmp_path / "stage.onnx").write_bytes(b"")  # not read: the argument checks come first
    (tmp_path / "notonnx.onnx").write_bytes(b"\xff\xfe not protobuf")
    with pytest.raises(TrainingError, match=message):
        run("--stage", str(tmp_path / stage), "--out", str(tmp_path / out), *more)
    assert not (tmp_path / "half.onnx").exists()
