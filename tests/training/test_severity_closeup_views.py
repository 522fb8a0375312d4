"""Damage-severity's damages seen as close-ups (training.severity --closeup-views)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from training.errors import TrainingError
from training.severity_examples import CLOSEUP_SHARES, closeup_view


def converted_set(root: Path) -> Path:
    """A converted damage set (as `training.convert` writes one): 96 px photos, each with a
    small minor dent and a large severe scratch, in train and val."""
    for split, photos in (("train", 4), ("val", 2)):
        for sub in ("images", "labels", "severity"):
            (root / sub / split).mkdir(parents=True)
        for k in range(photos):
            image = np.full((96, 96, 3), 90, np.uint8)
            cv2.rectangle(image, (10, 10), (20, 16), (30, 30, 30), -1)
            cv2.rectangle(image, (30, 40), (90, 90), (200, 200, 240), -1)
            cv2.imwrite(str(root / "images" / split / f"p{k}.jpg"), image)
            dent = "0 0.10 0.10 0.21 0.10 0.21 0.17 0.10 0.17"
            scratch = "1 0.31 0.42 0.94 0.42 0.94 0.94 0.31 0.94"
            (root / "labels" / split / f"p{k}.txt").write_text(f"{dent}\n{scratch}\n")
            (root / "severity" / split / f"p{k}.txt").write_text("minor\nsevere\n")
    data = {"path": str(root), "train": "images/train", "val": "images/val",
            "names": {0: "dent", 1: "scratch"}}  # fmt: skip
    (root / "data.yaml").write_text(yaml.safe_dump(data))
    return root / "data.yaml"


def _mask(shape: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = True
    return mask


@pytest.mark.parametrize("box", [(300, 200, 330, 210), (0, 0, 40, 12), (600, 440, 640, 480)])
def test_a_close_up_view_holds_the_whole_damage_at_close_up_scale(box) -> None:
    # given a small damage on a 640 x 480 photo (in its middle or at a corner)
    image = np.random.default_rng(1).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    mask = _mask((480, 640), box)
    rng = np.random.default_rng(0)
    for _ in range(20):
        # when it is seen as a close-up
        view = closeup_view(image, mask, rng)
        assert view is not None
        crop, region = view
        # then the crop is square, inside the photo, holds every damage pixel, and the
        # damage's longer side takes the drawn share of it
        assert crop.shape[0] == crop.shape[1] == region.shape[0] == region.shape[1]
        assert region.sum() == mask.sum()
        longer = max(box[2] - box[0], box[3] - box[1])
        share = longer / crop.shape[0]
        assert CLOSEUP_SHARES[0] - 0.02 <= share <= CLOSEUP_SHARES[1] + 0.02


def test_a_damage_that_fills_the_photo_is_a_close_up_already() -> None:
    # given a dent 450 px across on a 640 x 480 photo
    image = np.zeros((480, 640, 3), np.uint8)
    mask = _mask((480, 640), (50, 10, 500, 470))
    # when it is to be seen close up, then there is no closer view of it
    assert closeup_view(image, mask, np.random.default_rng(0)) is None


def test_close_up_views_add_train_examples_only(tmp_path: Path) -> None:
    from training import severity as severity_cli

    # given a converted damage set, none of whose damages fills its photo
    data = converted_set(tmp_path / "data")
    out = tmp_path / "views.json"
    # when the stage is trained with close-up views
    args = severity_cli.get_args_parser().parse_args(
        ["--data", str(data), "--out", str(out), "--steps", "50", "--closeup-views", "--train-only"]
    )
    assert severity_cli.main(args) == 0
    report = json.loads(out.with_suffix(".report.json").read_text())
    # then each train damage counts twice (itself and its close-up), val's once
    assert report["train"] == 2 * len(severity_cli.collect(data, "train")) == 16
    assert report["val"] == len(severity_cli.collect(data, "val")) == 4
    assert "seen close up" in json.loads(out.read_text())["trained_on"]


def test_close_up_views_are_refused_when_scoring(tmp_path: Path) -> None:
    from training import severity as severity_cli

    data = converted_set(tmp_path / "data")
    args = severity_cli.get_args_parser().parse_args(
        [
            "--data",
            str(data),
            "--evaluate",
            str(tmp_path / "x.json"),
            "--closeup-views",
            "--out",
            str(tmp_path / "r.json"),
        ]
    )
    with pytest.raises(TrainingError, match="--closeup-views is for training"):
        severity_cli.main(args)
