"""The type-level damage loop on tiny generated photos, from an init checkpoint the test makes.

convert (types, severities kept beside) -> train from --init -> severity stage -> evaluate
(the registry's metric names, per source) -> export -> register with the severity stage ->
served: each detected damage gets its type from the detector and its severity from the stage.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from cdat.settings import Settings
from cdat.taxonomy import DamageType, Severity
from inference.loading import load_model
from inference.postprocess import PostprocessConfig
from inference.registry import Registry
from inference.runtime import damage_instances
from inference.severity import SeverityModel, severity_features
from training import severity as severity_cli
from training.backgrounds import write_backgrounds
from training.cli import main as cli
from training.threshold import sweep

from .conftest import coco_config, make_coco, write_yaml

pytestmark = pytest.mark.slow
REGISTRY_NAMES = {
    "type_box_map50",
    "type_mask_map50",
    "damage_recall_iou30",
    "severity_accuracy",
    "severity_balanced_accuracy",
    "severity_matched",
}


def make_init_checkpoint(path: Path) -> Path:
    """A random-weight YOLO11n-seg saved as an Ultralytics checkpoint (what --init takes)."""
    import torch

    from training.ultra import load_ultralytics

    model = load_ultralytics().YOLO("yolo11n-seg.yaml", task="segment").model
    torch.save({"model": model.half()}, path)
    return path


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("typed")
    root = make_coco(tmp / "coco", {"train": 8, "val": 4, "test": 3})
    # the source labels pair severity and type; the model learns the types only
    source = write_yaml(tmp / "source.yaml", coco_config(root, classes={
        "super": None, "dent-small": "minor-dent", "scratch-big": "severe-scratch",
        "smudge": None}))  # fmt: skip
    # photos in which nothing is damage (an intact car, a room) train as background
    plain = [tmp / "plain" / f"bg{k}.jpg" for k in range(2)]
    for k, photo in enumerate(plain):
        photo.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(photo), np.full((64, 64, 3), 60 + 80 * k, np.uint8))
    write_backgrounds(tmp / "bg", {"no-vehicle": plain})
    config = write_yaml(tmp / "typed.yaml", {
        "name": "typed", "task": "damage", "datasets": [source.name, "bg/dataset.yaml"],
        "classes": ["dent", "scratch"]})  # fmt: skip
    init = make_init_checkpoint(tmp / "init.pt")
    paths = {"config": config, "tmp": tmp, "data": tmp / "data", "init": init}
    assert cli(["train", "--config", str(config), "--imgsz", "64", "--epochs", "2", "--batch",
                "4", "--project", str(tmp / "runs"), "--name", "t", "--data-dir",
                str(paths["data"]), "--threads", "2", "--init", str(init)]) == 0  # fmt: skip
    paths["run"] = tmp / "runs" / "t"
    paths["weights"] = paths["run"] / "weights" / "last.pt"
    paths["data_yaml"] = paths["data"] / "typed" / "data.yaml"
    return paths


def test_background_photos_train_with_empty_labels(loop: dict[str, Path]) -> None:
    data = loop["data"] / "typed"
    manifest = json.loads((data / "manifest.json").read_text())
    labelled = [p for p in (data / "labels" / "train").glob("*.txt") if p.read_text()]
    assert manifest["images"]["train"] == len(labelled) + 2
    for k in range(2):
        label = data / "labels" / "train" / f"backgrounds__no-vehicle__bg{k}.txt"
        assert label.read_text() == ""


def test_conversion_keeps_types_as_classes_and_severities_beside(loop: dict[str, Path]) -> None:
    data = loop["data"] / "typed"
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["classes"] == ["dent", "scratch"]
    label = next((data / "labels" / "train").glob("*.txt"))
    sidecar = data / "severity" / "train" / label.name
    classes = [int(row.split()[0]) for row in label.read_text().splitlines()]
    severities = sidecar.read_text().splitlines()
    # dent-small was labelled minor-dent, scratch-big severe-scratch
    assert [{0: "minor", 1: "severe"}[c] for c in classes] == severities


def test_run_records_its_init_weights(loop: dict[str, Path]) -> None:
    run = json.loads((loop["run"] / "cdat_run.json").read_text())
    assert run["init"]["path"] == str(loop["init"])
    assert len(run["init"]["sha256"]) == 64
    assert run["classes"] == ["dent", "scratch"]


def test_init_that_does_not_exist_is_one_error_line(
    loop: dict[str, Path], capsys: pytest.CaptureFixture
) -> None:
    code = cli(["train", "--config", str(loop["config"]), "--init", "missing.pt", "--project",
                str(loop["tmp"] / "none")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--init missing.pt" in err


def test_freezing_every_layer_is_one_error_line_and_writes_no_run(
    loop: dict[str, Path], capsys: pytest.CaptureFixture
) -> None:
    # when --freeze covers all 24 layers of YOLO11n-seg, so nothing would train
    code = cli(["train", "--config", str(loop["config"]), "--init", str(loop["init"]),
                "--freeze", "24", "--project", str(loop["tmp"] / "frozen"), "--data-dir",
                str(loop["data"])])  # fmt: skip
    # then it is refused by name before a run folder or record is written
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--freeze 24: the model has 24 layers" in err
    assert not (loop["tmp"] / "frozen").exists()


def test_severity_stage_trains_and_predicts(loop: dict[str, Path]) -> None:
    out = loop["tmp"] / "severity.json"
    args = severity_cli.get_args_parser().parse_args(
        ["--data", str(loop["data_yaml"]), "--out", str(out), "--steps", "300"]
    )
    assert severity_cli.main(args) == 0
    model = SeverityModel.load(out)
    # generated dents are minor and scratches severe: their features tell them apart
    examples = severity_cli.collect(loop["data_yaml"], "train")
    predicted = model.probabilities(examples.features).argmax(1)
    assert (predicted == examples.labels).mean() >= 0.9
    loop["severity"] = out


def test_severity_stage_scored_on_every_labelled_test_outline(
    loop: dict[str, Path], capsys: pytest.CaptureFixture
) -> None:
    if "severity" not in loop:
        pytest.skip("needs the severity stage trained above")
    out = loop["tmp"] / "severity-test.json"
    # when the trained stage is scored on the test split's labelled outlines
    assert cli(["severity", "--data", str(loop["data_yaml"]), "--split", "test", "--evaluate",
                str(loop["severity"]), "--out", str(out)]) == 0  # fmt: skip
    report = json.loads(out.read_text())
    # then every labelled test damage counts, whatever a detector would have found
    examples = severity_cli.collect(loop["data_yaml"], "test")
    predicted = SeverityModel.load(loop["severity"]).probabilities(examples.features).argmax(1)
    assert report["split"] == "test" and report["count"] == len(examples)
    assert report["accuracy"] == pytest.approx(float((predicted == examples.labels).mean()))
    assert sum(map(sum, report["confusion"])) == len(examples)
    labelled = {k: v["labelled"] for k, v in report["per_severity"].items()}
    assert labelled["minor"] + labelled["severe"] == len(examples) and labelled["moderate"] == 0
    assert report["per_severity"]["moderate"]["recall"] is None
    # and a file that is not a severity model is one error line, with nothing written
    bad, bad_out = loop["tmp"] / "not-severity.json", loop["tmp"] / "bad-report.json"
    bad.write_text('{"mean": []}')
    capsys.readouterr()
    assert cli(["severity", "--data", str(loop["data_yaml"]), "--evaluate", str(bad),
                "--out", str(bad_out)]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot load severity model" in err
    assert not bad_out.exists()
    # and --split without --evaluate is refused rather than ignored
    assert cli(["severity", "--data", str(loop["data_yaml"]), "--split", "val",
                "--out", str(bad_out)]) == 2  # fmt: skip
    assert "--split chooses what --evaluate scores" in capsys.readouterr().err
    assert not bad_out.exists()
    # and a data.yaml that is not there is named, not a traceback's last line
    assert cli(["severity", "--data", str(loop["tmp"] / "none.yaml"), "--evaluate",
                str(loop["severity"]), "--out", str(bad_out)]) == 2  # fmt: skip
    assert "none.yaml: no such data.yaml" in capsys.readouterr().err


def test_evaluate_register_and_serve(loop: dict[str, Path]) -> None:
    if "severity" not in loop:
        pytest.skip("needs the severity stage trained above")
    out, onnx_file = loop["tmp"] / "eval", loop["tmp"] / "typed-seg-n.onnx"
    models = loop["tmp"] / "models"
    assert cli(["evaluate", "--config", str(loop["config"]), "--model", str(loop["weights"]),
                "--out", str(out), "--data-dir", str(loop["data"]), "--severity",
                str(loop["severity"]), "--conf", "0.001", "--no-compare"]) == 0  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    assert set(report) >= REGISTRY_NAMES
    assert set(report["per_source"]) == {"gen-coco"}
    assert 0.0 <= report["damage_recall_iou30"] <= 1.0
    assert cli(["export", "--weights", str(loop["weights"]), "--out", str(onnx_file)]) == 0
    assert cli(["models", "--model-dir", str(models), "register", "--file", str(onnx_file),
                "--task", "damage", "--report", str(out / "report.json"), "--run",
                str(loop["run"]), "--severity", str(loop["severity"])]) == 0  # fmt: skip
    entry = Registry.load(models).entries[0]
    assert set(entry.metrics) >= REGISTRY_NAMES
    assert entry.metrics["recall_per_type"] == report["recall_per_type"]
    assert set(entry.metrics["recall_per_type"]) <= {"dent", "scratch"}
    assert entry.severity_model == "severity.json" and (models / "severity.json").is_file()
    assert entry.init["path"] == str(loop["init"])
    assert cli(["models", "--model-dir", str(models), "promote", entry.id]) == 0
    # served: the detector names the type, the severity stage the severity
    model = load_model(Settings(model_dir=models), "damage", config=PostprocessConfig(conf=1e-4))
    image = cv2.imread(str(next((loop["data"] / "typed" / "images" / "test").iterdir())))
    raw = model.infer([image])[0]
    found = damage_instances(model, raw, image, image.shape[1], image.shape[0])
    assert found, "a two-epoch model at conf 1e-4 detects something"
    assert {d.damage_type for d in found} <= {DamageType.DENT, DamageType.SCRATCH}
    assert all(isinstance(d.severity, Severity) for d in found)


def test_threshold_sweep_scores_every_candidate_from_one_pass(loop: dict[str, Path]) -> None:
    if "severity" not in loop:
        pytest.skip("needs the severity stage trained above")
    candidates = (0.0001, 0.001, 0.01, 0.5)
    rows = sweep(loop["weights"], loop["data_yaml"], "val", 64, candidates, loop["severity"])
    assert [r.conf for r in rows] == list(candidates)
    # a higher threshold keeps a subset of the predictions: it never finds more
    recalls = [r.recall for r in rows if r.recall is not None]
    matched = [r.severity_matched for r in rows if r.severity_matched is not None]
    assert len(recalls) == len(matched) == len(rows)
    assert all(0.0 <= r <= 1.0 for r in recalls)
    assert recalls == sorted(recalls, reverse=True)
    assert matched == sorted(matched, reverse=True)


def test_severity_model_from_another_feature_set_is_refused(tmp_path: Path) -> None:
    from inference.errors import ModelUnavailable

    bad = tmp_path / "s.json"
    bad.write_text(json.dumps({"mean": [0.0], "scale": [1.0], "weights": [[0, 0, 0]] * 2}))
    with pytest.raises(ModelUnavailable, match="different feature set"):
        SeverityModel.load(bad)


def test_severity_features_grow_with_the_damage() -> None:
    image = np.full((120, 160, 3), 150, np.uint8)
    small, large = np.zeros((120, 160), bool), np.zeros((120, 160), bool)
    small[50:60, 70:80] = True
    large[20:100, 30:130] = True
    f_small = severity_features(image, small, DamageType.DENT)
    f_large = severity_features(image, large, DamageType.DENT)
    # log area share is the 4th feature (after the three type groups)
    assert f_large[3] > f_small[3] and f_small[0] == 1.0 and f_small[2] == 0.0


def test_warm_start_from_a_model_with_the_same_classes_keeps_its_class_head(
    loop: dict[str, Path],
) -> None:
    import torch

    from training.train import _initial_model
    from training.ultra import load_ultralytics

    ultralytics = load_ultralytics()
    trained = torch.load(loop["weights"], map_location="cpu", weights_only=False)["model"]
    # when a run with the same classes starts from the trained model
    warm = _initial_model(
        ultralytics, "yolo11n-seg.yaml", str(loop["weights"]), ["dent", "scratch"]
    )
    # then every tensor, the class convolutions included, is the trained one
    expected = trained.float().state_dict()
    got = warm.model.float().state_dict()
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    # and a run with other classes starts from the architecture, its head learned anew
    other = _initial_model(ultralytics, "yolo11n-seg.yaml", str(loop["weights"]), ["dent"])
    assert len(other.names) != 2
