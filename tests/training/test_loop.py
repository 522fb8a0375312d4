"""The whole data-scientist loop on tiny generated photos, through the CLI.

convert -> train one epoch -> evaluate -> export ONNX -> parity with PyTorch ->
register -> promote -> a worse candidate is refused -> forced promotion.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from inference.registry import Registry
from training.cli import main as cli
from training.export import _compare, check_parity

from .conftest import coco_config, write_yaml

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from .conftest import make_coco

    tmp = tmp_path_factory.mktemp("loop")
    root = make_coco(tmp / "coco", {"train": 8, "val": 2, "test": 2})
    config = write_yaml(tmp / "d.yaml", coco_config(root))
    paths = {"config": config, "tmp": tmp, "data": tmp / "data", "models": tmp / "models"}
    code = cli(["train", "--config", str(config), "--imgsz", "64", "--epochs", "1", "--batch",
                "4", "--project", str(tmp / "runs"), "--name", "t", "--data-dir",
                str(paths["data"]), "--threads", "2"])  # fmt: skip
    assert code == 0
    paths["run"] = tmp / "runs" / "t"
    paths["weights"] = paths["run"] / "weights" / "best.pt"
    return paths


def test_training_writes_weights_run_record_and_plots(loop: dict[str, Path]) -> None:
    run = json.loads((loop["run"] / "cdat_run.json").read_text())
    assert loop["weights"].is_file()
    assert run["classes"] == ["minor-dent", "severe-scratch"]
    assert run["command"].startswith("python -m training.train")
    assert (loop["run"] / "training_curves.png").stat().st_size > 1000


def test_export_leaves_the_onnx_file_beside_the_weights_alone(loop: dict[str, Path]) -> None:
    # given a served model: an ONNX file beside the checkpoint it came from
    beside = loop["weights"].with_suffix(".onnx")
    beside.write_bytes(b"the served model")
    try:
        # when the checkpoint is exported somewhere else, at another size
        out = loop["tmp"] / "elsewhere" / "other.onnx"
        assert cli(["export", "--weights", str(loop["weights"]), "--out", str(out),
                    "--imgsz", "96"]) == 0  # fmt: skip
        # then only --out is written
        assert beside.read_bytes() == b"the served model"
        assert ort.InferenceSession(str(out)).get_inputs()[0].shape[2:] == [96, 96]
    finally:
        beside.unlink()


def test_evaluate_export_register_promote(loop: dict[str, Path], capsys: pytest.CaptureFixture
                                          ) -> None:  # fmt: skip
    out, onnx_file = loop["tmp"] / "eval", loop["tmp"] / "gen-seg-n.onnx"
    # evaluate: per-class report with severity confusion
    assert cli(["evaluate", "--config", str(loop["config"]), "--model", str(loop["weights"]),
                "--out", str(out), "--data-dir", str(loop["data"]), "--model-dir",
                str(loop["models"])]) == 0  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    assert set(report["per_class"]) == {"minor-dent", "severe-scratch"}
    assert report["images"] == 4 and len(report["severity_confusion"]["matrix"]) == 3
    assert (out / "report.md").read_text().startswith("# Evaluation")
    assert (out / "pr_curves.png").is_file() and (out / "sample_0.jpg").is_file()
    # export: fixed square input, dynamic batch, runs a batch of two
    test_images = loop["data"] / "gen-coco" / "images" / "test"
    assert cli(["export", "--weights", str(loop["weights"]), "--out", str(onnx_file),
                "--check-images", str(test_images)]) == 0  # fmt: skip
    session = ort.InferenceSession(str(onnx_file))
    assert session.get_inputs()[0].shape[1:] == [3, 64, 64]
    outputs = session.run(None, {"images": np.zeros((2, 3, 64, 64), np.float32)})
    assert outputs[0].shape[:2] == (2, 4 + 2 + 32)
    # parity at a threshold low enough that the one-epoch model detects something
    parity = check_parity(loop["weights"], onnx_file, sorted(test_images.iterdir()), 64,
                          conf=1e-4)  # fmt: skip
    assert parity.detections > 0 and parity.ok, parity.problems[:3]
    # register + promote through the CLI
    models = ["models", "--model-dir", str(loop["models"])]
    assert cli([*models, "register", "--file", str(onnx_file), "--task", "damage", "--report",
                str(out / "report.json"), "--run", str(loop["run"])]) == 0  # fmt: skip
    first = Registry.load(loop["models"]).entries[0]
    assert first.classes == ["minor-dent", "severe-scratch"] and first.imgsz == 64
    assert cli([*models, "promote", first.id]) == 0
    # a candidate evaluated at its own threshold meets the promoted model as served, at its own
    assert first.served_conf == report["served_conf"] == 0.25
    assert cli(["evaluate", "--config", str(loop["config"]), "--model", str(loop["weights"]),
                "--out", str(out / "at-005"), "--data-dir", str(loop["data"]), "--model-dir",
                str(loop["models"]), "--conf", "0.05"]) == 0  # fmt: skip
    compared = json.loads((out / "at-005" / "report.json").read_text())
    assert compared["served_conf"] == 0.05 and compared["baseline"]["served_conf"] == 0.25
    # a candidate with a worse gate metric is refused, then forced
    worse = dict(report, mask_map50=report["mask_map50"] - 0.1)
    (out / "worse.json").write_text(json.dumps(worse))
    assert cli([*models, "register", "--file", str(onnx_file), "--task", "damage", "--report",
                str(out / "worse.json"), "--id", "worse-1"]) == 0  # fmt: skip
    capsys.readouterr()
    assert cli([*models, "promote", "worse-1"]) == 2
    assert "refusing to promote worse-1" in capsys.readouterr().err
    assert Registry.load(loop["models"]).promoted["damage"] == first.id
    assert cli([*models, "promote", "worse-1", "--force"]) == 0
    assert Registry.load(loop["models"]).promoted["damage"] == "worse-1"


def test_parity_comparison_catches_differences() -> None:
    torch_dets = (np.array([[10.0, 10, 50, 50]]), np.array([1]), np.array([0.8]))
    same = _compare(torch_dets, torch_dets, 0.25, 2.0, 0.01, "a")
    moved = _compare(torch_dets, (torch_dets[0] + 5, torch_dets[1], torch_dets[2]), 0.25, 2.0,
                     0.01, "b")  # fmt: skip
    other_class = _compare(torch_dets, (torch_dets[0], np.array([0]), torch_dets[2]), 0.25, 2.0,
                           0.01, "c")  # fmt: skip
    assert same[2] == [] and "box off by 5.00px" in moved[2][0]
    assert any("missing in ONNX" in p for p in other_class[2])
