"""Choosing the served threshold on val: every candidate scored on one set of predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from training.cli import main as cli
from training.errors import TrainingError
from training.matching import Instance
from training.threshold import ThresholdRow, _Sweep, candidates_of, choose, write_choice

from .test_damage_eval import box, photo


def test_each_candidate_keeps_only_the_predictions_at_or_above_it(tmp_path: Path) -> None:
    # given two labelled damages, one found confidently, one only faintly, and a faint false alarm
    image = np.full((40, 40, 3), 120, np.uint8)
    truths = [Instance("dent", box(0, 10, 0, 10)), Instance("scratch", box(20, 30, 20, 30))]
    preds = [
        Instance("dent", box(0, 10, 0, 10), 0.6),
        Instance("scratch", box(20, 30, 20, 30), 0.12),
        Instance("dent", box(30, 40, 0, 10), 0.08),
    ]
    sweep = _Sweep((0.05, 0.1, 0.5, 0.7), "damage", ["dent", "scratch"])
    # when the photo is tallied once for all candidates
    sweep.add_image(photo(tmp_path, "setA", ["minor", "minor"]), image, preds, truths)
    rows = {r.conf: r for r in sweep.rows()}
    # then each threshold sees only its own predictions
    assert (rows[0.05].recall, rows[0.05].precision) == (1.0, pytest.approx(2 / 3))
    assert (rows[0.1].recall, rows[0.1].precision) == (1.0, 1.0)
    assert (rows[0.5].recall, rows[0.5].precision) == (0.5, 1.0)
    # and where nothing is reported nothing is found: F1 0, not undefined
    assert rows[0.7].recall == 0.0 and rows[0.7].precision is None and rows[0.7].f1 == 0.0
    # and the best F1 wins: both damages found, nothing false
    assert choose(list(rows.values())).conf == 0.1


def test_part_models_are_scored_by_class_matches_at_iou_50() -> None:
    truths = [Instance("hood", box(0, 20, 0, 20)), Instance("wheel", box(25, 35, 25, 35))]
    preds = [
        Instance("hood", box(0, 20, 0, 20), 0.9),
        Instance("door", box(25, 35, 25, 35), 0.4),  # right place, wrong part
    ]
    sweep = _Sweep((0.3, 0.5), "parts", ["hood", "wheel", "door"])
    sweep.add_image(Path("p.jpg"), np.zeros((40, 40, 3), np.uint8), preds, truths)
    rows = {r.conf: r for r in sweep.rows()}
    assert (rows[0.3].recall, rows[0.3].precision) == (0.5, 0.5)
    assert (rows[0.5].recall, rows[0.5].precision) == (0.5, 1.0)
    assert choose(list(rows.values())).conf == 0.5


def test_a_tie_goes_to_the_higher_threshold_and_nothing_scored_is_an_error() -> None:
    rows = [ThresholdRow(0.1, 0.5, 0.5, 0.5), ThresholdRow(0.2, 0.5, 0.5, 0.5)]
    assert choose(rows).conf == 0.2
    with pytest.raises(TrainingError, match="no labelled instances"):
        choose([ThresholdRow(0.1, None, None, None)])
    with pytest.raises(TrainingError, match="try lower --conf"):
        choose([ThresholdRow(0.1, 0.0, None, 0.0), ThresholdRow(0.2, 0.0, None, 0.0)])


def test_candidates_outside_zero_one_are_refused() -> None:
    assert candidates_of([0.3, 0.1, 0.1]) == (0.1, 0.3)
    with pytest.raises(TrainingError, match=r"\(0, 1\)"):
        candidates_of([0.1, 1.5])


def test_the_test_split_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    with pytest.raises(SystemExit) as exit_info:
        cli(["threshold", "--config", "datasets/damage.yaml", "--model", str(model),
             "--split", "test"])  # fmt: skip
    assert exit_info.value.code == 2
    assert "invalid choice: 'test'" in capsys.readouterr().err


def test_a_missing_model_is_one_error_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = cli(["threshold", "--config", "datasets/damage.yaml", "--model",
                str(tmp_path / "none.onnx"), "--out", str(tmp_path / "out")])  # fmt: skip
    assert code == 2
    assert "no such model file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_choice_is_written_with_every_row(tmp_path: Path) -> None:
    rows = [ThresholdRow(0.1, 0.6, 0.3, 0.4), ThresholdRow(0.2, 0.5, 0.5, 0.5)]
    path = write_choice(tmp_path / "out", rows, choose(rows), {"split": "val"})
    body = json.loads(path.read_text())
    assert body["chosen_conf"] == 0.2 and body["split"] == "val"
    assert [r["conf"] for r in body["rows"]] == [0.1, 0.2]
