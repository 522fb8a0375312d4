"""Mask-IoU matching and the severity confusion it yields."""

from __future__ import annotations

import numpy as np

from training.matching import BACKGROUND, Instance, MatchStats, match


def _square(x: int, y: int, size: int = 10) -> np.ndarray:
    mask = np.zeros((40, 40), bool)
    mask[y : y + size, x : x + size] = True
    return mask


def test_matches_by_mask_iou_highest_score_first() -> None:
    truths = [Instance("minor-dent", _square(0, 0)), Instance("severe-dent", _square(20, 20))]
    preds = [
        Instance("minor-dent", _square(1, 0), 0.4),  # IoU 0.82 with truth 0
        Instance("moderate-dent", _square(0, 1), 0.9),  # IoU 0.82 with truth 0, higher score
        Instance("severe-dent", _square(25, 25), 0.8),  # IoU 0.14: too little overlap
    ]
    assert match(preds, truths) == [(1, 0)]


def test_severity_accuracy_on_matched_instances() -> None:
    stats = MatchStats(["minor-dent", "moderate-dent", "severe-scratch"], damage=True)
    truths = [Instance("minor-dent", _square(0, 0)), Instance("severe-scratch", _square(20, 20))]
    preds = [Instance("moderate-dent", _square(0, 0), 0.9),
             Instance("severe-scratch", _square(20, 20), 0.9),
             Instance("minor-dent", _square(20, 0), 0.9)]  # fmt: skip
    stats.add_image(preds, truths)
    assert stats.matched == 2
    assert stats.severity_cm.accuracy == 0.5
    labels = stats.classes_cm.labels
    assert stats.classes_cm.matrix[labels.index(BACKGROUND), labels.index("minor-dent")] == 1
    assert stats.classes_cm.matrix[labels.index("minor-dent"), labels.index("moderate-dent")] == 1


def test_no_matches_gives_no_accuracy() -> None:
    stats = MatchStats(["minor-dent"], damage=True)
    stats.add_image([], [Instance("minor-dent", _square(0, 0))])
    assert stats.severity_cm.accuracy is None
    assert stats.classes_cm.matrix[0, 1] == 1


def test_precision_and_recall_count_only_right_class_matches_at_the_threshold() -> None:
    # given two labelled parts, one found with its class, one found with the wrong class,
    # and one prediction on background
    stats = MatchStats(["door", "hood"], damage=False)
    truths = [Instance("door", _square(0, 0)), Instance("hood", _square(20, 20))]
    preds = [Instance("door", _square(0, 0), 0.9),
             Instance("door", _square(20, 20), 0.8),
             Instance("hood", _square(0, 25), 0.7)]  # fmt: skip
    # when they are tallied
    stats.add_image(preds, truths)
    # then one of three predictions and one of two truths count as right
    assert stats.correct == 1
    assert stats.precision == 1 / 3
    assert stats.recall == 1 / 2


def test_precision_and_recall_are_none_without_predictions_or_truths() -> None:
    stats = MatchStats(["door"], damage=False)
    stats.add_image([], [])
    assert stats.precision is None and stats.recall is None
