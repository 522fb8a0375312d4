"""The severity-head bench (bench/bench_severity_head.py): its examples and its score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.bench_severity_head import (
    Outline,
    balanced,
    box_of,
    get_args_parser,
    main,
    with_hand_features,
)
from cdat.findings import Box
from cdat.taxonomy import DamageType
from inference.severity import FEATURE_NAMES
from tests import images


def test_balanced_accuracy_is_the_mean_recall_of_the_severities_present() -> None:
    truth = np.array([0, 0, 0, 2])
    # all three minors right, the one severe wrong: recall 1.0 and 0.0
    assert balanced(truth, np.array([0, 0, 0, 0])) == pytest.approx(0.5)
    assert box_of(np.array([[4.0, 2.0], [1.0, 9.0], [3.0, 5.0]])) == Box(1.0, 2.0, 4.0, 9.0)


def test_an_untyped_outline_is_one_example_per_panel_type_beside_its_crop(tmp_path: Path) -> None:
    # given a photo with a typed outline and an untyped one, and each one's pooled crop
    photo = tmp_path / "p.jpg"
    photo.write_bytes(images.jpeg(64, 48))
    square = np.array([[8.0, 8.0], [40.0, 8.0], [40.0, 40.0], [8.0, 40.0]])
    panel = (DamageType.DENT, DamageType.SCRATCH, DamageType.BROKEN_PART)
    outlines = [
        Outline(photo, box_of(square), 2, square, (DamageType.LAMP_BROKEN,)),
        Outline(photo, box_of(square), 0, square, panel),
    ]
    pooled = np.array([[1.0, 2.0], [3.0, 4.0]])
    # when the served stage's features are joined to the crops'
    x, y = with_hand_features(outlines, pooled)
    # then the untyped outline is three examples, each with its own crop's layers first
    assert y.tolist() == [2, 0, 0, 0]
    assert x.shape == (4, 2 + len(FEATURE_NAMES))
    assert x[1:, :2].tolist() == [[3.0, 4.0]] * 3
    # and the type the served stage reads differs between the three
    assert len({tuple(row[2:]) for row in x[1:]}) == 3


def test_without_a_converted_data_set_it_says_what_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = get_args_parser().parse_args(["--data", str(tmp_path / "none.yaml")])
    assert main(args) == 2
    assert "run training.convert first" in capsys.readouterr().err


def test_a_stage_to_combine_with_that_is_not_there_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data.yaml"
    data.write_text("path: .\n")
    args = get_args_parser().parse_args(
        ["--data", str(data), "--combine-with", str(tmp_path / "none.json")]
    )
    assert main(args) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"error: --combine-with {tmp_path / 'none.json'}: no such stage"
    )
