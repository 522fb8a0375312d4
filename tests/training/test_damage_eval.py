"""Damage recall / precision at IoU 0.3 and severity on matched damages, per source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cdat.taxonomy import DamageType
from inference.severity import SEVERITIES, SeverityModel, severity_features
from training.damage_eval import DamageTally
from training.matching import Instance
from training.severity import severity_scores


def box(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    mask = np.zeros((40, 40), bool)
    mask[r0:r1, c0:c1] = True
    return mask


def always(severity: int) -> SeverityModel:
    """A severity stage that always answers one severity (bias only)."""
    width = len(severity_features(np.zeros((8, 8, 3), np.uint8), box(0, 4, 0, 4), DamageType.DENT))
    weights = np.zeros((width + 1, 3))
    weights[-1, severity] = 10.0
    return SeverityModel([0.0] * width, [1.0] * width, weights.tolist())


def photo(tmp_path: Path, source: str, severities: list[str]) -> Path:
    image = tmp_path / "images" / "test" / f"{source}__p.jpg"
    sidecar = tmp_path / "severity" / "test" / f"{source}__p.txt"
    for path in (image, sidecar):
        path.parent.mkdir(parents=True, exist_ok=True)
    image.write_bytes(b"")
    sidecar.write_text("\n".join(severities) + "\n")
    return image


def test_recall_precision_and_severity_are_tallied_per_source(tmp_path: Path) -> None:
    tally = DamageTally(always(SEVERITIES.index(SEVERITIES[0])))  # always "minor"
    image = np.full((40, 40, 3), 120, np.uint8)
    truths = [Instance("dent", box(0, 10, 0, 10)), Instance("scratch", box(20, 30, 20, 30))]
    # a: one damage found exactly, one missed; one false alarm
    preds = [Instance("dent", box(0, 10, 0, 10), 0.9), Instance("dent", box(30, 40, 0, 10), 0.8)]
    tally.add_image(photo(tmp_path / "a", "setA", ["minor", "severe"]), image, preds, truths)
    # b: a loose outline (IoU 0.4) still counts as found at 0.3, but is no match at 0.5
    loose = [Instance("scratch", box(0, 10, 0, 4), 0.9)]
    tally.add_image(photo(tmp_path / "b", "setB", ["moderate"]), image, loose, truths[:1])
    metrics = tally.metrics()
    assert metrics["per_source"]["setA"]["damage_recall_iou30"] == 0.5
    assert metrics["per_source"]["setA"]["damage_precision_iou30"] == 0.5
    assert metrics["per_source"]["setB"]["damage_recall_iou30"] == 1.0
    assert metrics["damage_recall_iou30"] == pytest.approx(2 / 3)
    # severity only on the IoU >= 0.5 match of setA, labelled minor: right
    assert metrics["severity_matched"] == 1 and metrics["severity_accuracy"] == 1.0
    assert metrics["per_source"]["setB"]["severity_accuracy"] is None


def test_balanced_accuracy_is_the_mean_recall_over_present_severities() -> None:
    truth = np.array([0, 0, 0, 0, 1, 2])
    predicted = np.array([0, 0, 0, 0, 0, 2])
    scores = severity_scores(truth, predicted)
    assert scores["accuracy"] == pytest.approx(5 / 6)
    assert scores["balanced_accuracy"] == pytest.approx((1.0 + 0.0 + 1.0) / 3)


def test_recall_is_broken_down_by_labelled_type_and_severity(tmp_path: Path) -> None:
    # given a photo with a found severe dent, a missed minor scratch and a missed minor dent
    tally = DamageTally(None)
    image = np.full((40, 40, 3), 120, np.uint8)
    truths = [
        Instance("dent", box(0, 10, 0, 10)),
        Instance("scratch", box(20, 30, 20, 30)),
        Instance("dent", box(30, 40, 30, 40)),
    ]
    preds = [Instance("dent", box(0, 10, 0, 10), 0.9)]
    # when it is tallied, and a photo without severity labels beside it
    tally.add_image(
        photo(tmp_path / "a", "setA", ["severe", "minor", "minor"]), image, preds, truths
    )
    tally.add_image(photo(tmp_path / "b", "setB", []), image, [], truths[1:2])
    metrics = tally.metrics()
    # then recall is reported per type over both photos, per severity only where labelled
    assert metrics["recall_per_type"]["dent"] == {"instances": 2, "damage_recall_iou30": 0.5}
    assert metrics["recall_per_type"]["scratch"] == {"instances": 2, "damage_recall_iou30": 0.0}
    assert metrics["recall_per_severity"] == {
        "minor": {"instances": 2, "damage_recall_iou30": 0.0},
        "severe": {"instances": 1, "damage_recall_iou30": 1.0},
    }
