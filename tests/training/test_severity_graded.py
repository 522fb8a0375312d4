"""The severity stage taught close-ups graded by photo (training.severity --graded)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from inference.severity import SEVERITIES
from tests.training.conftest import write_yaml
from training.errors import TrainingError
from training.severity import Graded, SeverityHyperparameters, select_and_fit
from training.severity_examples import Examples, graded_damages

SIDE = 64


def graded_set(root: Path) -> Path:
    """Three close-ups: a minor door dent, a major broken lamp, and one without a grade."""
    (root / "train" / "images").mkdir(parents=True)
    (root / "train" / "labels").mkdir(parents=True)
    photos = {"minor_1_png.rf.0": 0, "major_2_png.rf.0": 1, "damage_3_png.rf.0": 0}
    for stem, cls in photos.items():
        image = np.full((SIDE, SIDE, 3), 90, np.uint8)
        cv2.rectangle(image, (16, 16), (48, 48), (20, 20, 200), -1)
        cv2.imwrite(str(root / "train" / "images" / f"{stem}.jpg"), image)
        (root / "train" / "labels" / f"{stem}.txt").write_text(
            f"{cls} 0.25 0.25 0.75 0.25 0.75 0.75 0.25 0.75\n"
        )
    return write_yaml(root / "graded.yaml", {
        "name": "gen-graded", "task": "damage", "format": "yolo", "root": str(root),
        "licence": "generated", "names": ["Door", "Light"],
        "splits": {"train": {"images": "train/images", "labels": "train/labels"}},
        "resplit": "source",
        "classes": {"Door": None, "Light": "lamp_broken"},
        "part_families": {"Door": "door", "Light": "light"},
    })  # fmt: skip


def test_a_graded_photos_outlines_take_its_grade_and_an_untyped_one_each_panel_type(
    tmp_path: Path,
) -> None:
    # given close-ups named by grade, one of them without a grade
    config = graded_set(tmp_path / "graded")
    # when their outlines are read as severity examples
    got = sorted((kind, grade) for _, mask, kind, grade in graded_damages(config, "train"))
    # then the minor door (no type named) is an example for each panel type, the major
    # lamp one broken lamp, severe; the ungraded photo gives none
    assert got == [
        ("broken_part", "minor"),
        ("dent", "minor"),
        ("lamp_broken", "severe"),
        ("scratch", "minor"),
    ]


def examples(rng: np.random.Generator, labels: list[int], shift: float) -> Examples:
    """One feature that tells severities apart, shifted by `shift` (another view)."""
    y = np.array(labels)
    x = np.c_[y + shift + 0.3 * rng.standard_normal(len(y)), rng.standard_normal(len(y))]
    return Examples(x, y)


def test_graded_weights_are_swept_and_the_choice_keeps_the_data_sets_own_val() -> None:
    rng = np.random.default_rng(0)
    labels = [k % len(SEVERITIES) for k in range(90)]
    train, val = examples(rng, labels, 0.0), examples(rng, labels, 0.0)
    # given graded close-ups whose severities sit elsewhere on the same feature
    graded = Graded(
        {"g": examples(rng, labels, 1.5)}, {"g": examples(rng, labels, 1.5)}, keep_balanced=0.5
    )
    hp = SeverityHyperparameters(
        class_weight_powers=(0.0,), l2_strengths=(1e-3,), steps=200, graded_weights=(0.1, 1.0)
    )
    # when the stage is chosen
    _, selection = select_and_fit(train, val, hp, "gen", graded)
    # then every weight was tried, each scored on both val sets
    assert [t["graded_weight"] for t in selection["trials"]] == [0.1, 1.0]
    assert all("g" in t and t["balanced_accuracy"] >= 0 for t in selection["trials"])
    chosen = selection["chosen"]
    assert chosen["balanced_accuracy"] >= 0.5
    best_graded = max(
        t["g"]["balanced_accuracy"] for t in selection["trials"] if t["balanced_accuracy"] >= 0.5
    )
    assert chosen["g"]["balanced_accuracy"] == best_graded
    # and a bound no fit keeps is refused, naming it
    strict = Graded(graded.train, graded.val, keep_balanced=1.01)
    with pytest.raises(TrainingError, match=r"1\.01"):
        select_and_fit(train, val, hp, "gen", strict)


def test_weighing_examples_changes_what_a_class_weight_sees() -> None:
    # given two examples and their weighted copy weighing 4 together
    x = Examples(np.zeros((2, 1)), np.array([0, 2]))
    weighted = x.weighted(4.0)
    # then each weighs 2, and the unweighted ones 1
    assert weighted.example_weights.tolist() == [2.0, 2.0]
    assert x.example_weights.tolist() == [1.0, 1.0]


def test_without_a_refit_the_chosen_fit_on_train_alone_is_returned() -> None:
    from training.severity import fit, with_graded

    rng = np.random.default_rng(1)
    labels = [k % len(SEVERITIES) for k in range(60)]
    train, val = examples(rng, labels, 0.0), examples(rng, labels, 0.0)
    graded = Graded({"g": examples(rng, labels, 1.0)}, {"g": examples(rng, labels, 1.0)})
    hp = SeverityHyperparameters(
        class_weight_powers=(0.5,), l2_strengths=(1e-3,), steps=100, graded_weights=(0.5,)
    )
    # when the stage is chosen without a refit on train and val
    model, _ = select_and_fit(train, val, hp, "gen", graded, refit=False)
    # then it is the fit on train (and the graded train examples at their weight) alone
    alone = fit(with_graded(train, graded.train["g"], 0.5), 0.5, 1e-3, hp)
    assert np.allclose(model.probabilities(val.features), alone.probabilities(val.features))
    refitted, _ = select_and_fit(train, val, hp, "gen", graded)
    assert not np.allclose(refitted.probabilities(val.features), alone.probabilities(val.features))
