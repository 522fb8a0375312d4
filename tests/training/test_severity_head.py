"""training/severity_head.py: the close-up severity head fitted on a damage model's layers,
end to end on tiny generated data and a fake model that hands out a layer."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from inference.layer_severity import LayerSeverityHead
from tests.inference.conftest import make_fake_model
from tests.training.conftest import write_yaml
from training.errors import TrainingError
from training.severity_head import get_args_parser, main

SIDE = 64


def converted(root: Path) -> Path:
    """A converted damage set: two photos a split, each a dent with its severity sidecar."""
    for split in ("train", "val"):
        for sub in ("images", "labels", "severity"):
            (root / sub / split).mkdir(parents=True)
        for k, severity in enumerate(("minor", "severe")):
            image = np.full((SIDE, SIDE, 3), 60 + 80 * k, np.uint8)
            cv2.imwrite(str(root / "images" / split / f"p{k}.jpg"), image)
            box = "0.2 0.2 0.6 0.2 0.6 0.6 0.2 0.6"
            (root / "labels" / split / f"p{k}.txt").write_text(f"0 {box}\n")
            (root / "severity" / split / f"p{k}.txt").write_text(f"{severity}\n")
    return write_yaml(root / "data.yaml", {
        "path": str(root), "train": "images/train", "val": "images/val",
        "names": {0: "dent"},
    })  # fmt: skip


def graded(root: Path) -> Path:
    """Close-ups graded by file name in train and val: a minor door, a major lamp."""
    for n, split in enumerate(("train", "val")):  # one source photo, one split
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
        for stem, cls in {f"minor_{n}_png.rf.0": 0, f"major_{n}_png.rf.0": 1}.items():
            image = np.full((SIDE, SIDE, 3), 90, np.uint8)
            cv2.imwrite(str(root / split / "images" / f"{stem}.jpg"), image)
            (root / split / "labels" / f"{stem}.txt").write_text(
                f"{cls} 0.25 0.25 0.75 0.25 0.75 0.75 0.25 0.75\n"
            )
    return write_yaml(root / "graded.yaml", {
        "name": "gen-graded", "task": "damage", "format": "yolo", "root": str(root),
        "licence": "generated", "names": ["Door", "Light"],
        "splits": {s: {"images": f"{s}/images", "labels": f"{s}/labels"}
                   for s in ("train", "val")},
        "resplit": "source",
        "classes": {"Door": None, "Light": "lamp_broken"},
    })  # fmt: skip


@pytest.fixture
def made(tmp_path: Path) -> dict[str, Path]:
    return {
        "data": converted(tmp_path / "data"),
        "graded": graded(tmp_path / "graded"),
        "damage": make_fake_model(tmp_path / "damage.onnx", 320, 1, [], tapped=True),
        "out": tmp_path / "head.json",
    }


def test_the_head_is_fitted_on_the_models_layers_and_chosen_on_the_graded_val(
    made: dict[str, Path],
) -> None:
    # when the head is fitted with two candidate penalties
    args = get_args_parser().parse_args([
        "--data", str(made["data"]), "--graded", str(made["graded"]),
        "--damage", str(made["damage"]), "--taps", "0", "--l2", "0.01", "0.1",
        "--out", str(made["out"]),
    ])  # fmt: skip
    assert main(args) == 0
    # then the saved head reads that model's layer 0 and loads beside it
    head = LayerSeverityHead.load(made["out"], made["damage"])
    assert head.taps == (0,)
    # and its report counts every example (the graded door once per panel type) and tried both
    report = json.loads(made["out"].with_suffix(".report.json").read_text())
    assert report["examples"]["train"] == {"data": 2, str(made["graded"]): 4}
    assert [t["l2"] for t in report["trials"]] == [0.01, 0.1]
    assert report["chosen"]["graded_mean"] == max(t["graded_mean"] for t in report["trials"])


def test_with_hand_features_the_head_reads_them_after_the_layers(made: dict[str, Path]) -> None:
    from inference.severity import FEATURE_NAMES

    args = get_args_parser().parse_args([
        "--data", str(made["data"]), "--graded", str(made["graded"]),
        "--damage", str(made["damage"]), "--taps", "0", "--hand-features",
        "--out", str(made["out"]),
    ])  # fmt: skip
    assert main(args) == 0
    head = LayerSeverityHead.load(made["out"], made["damage"])
    assert head.hand_features and len(head.mean) == 1 + len(FEATURE_NAMES)


def test_without_a_graded_set_it_is_one_error(made: dict[str, Path]) -> None:
    args = get_args_parser().parse_args([
        "--data", str(made["data"]), "--damage", str(made["damage"]), "--out", str(made["out"]),
    ])  # fmt: skip
    with pytest.raises(TrainingError, match="--graded"):
        main(args)
    assert not made["out"].exists()
