"""The photo-level severity bench (bench/bench_severity_grades.py): how each photo is graded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import training.claim_eval
from bench.bench_severity_grades import graded_photos, summarise, worst_labelled
from cdat.taxonomy import Severity


def test_a_typed_photo_is_graded_by_its_worst_labelled_damage() -> None:
    labels: list[tuple[str, Any]] = [("minor-scratch", []), ("severe-broken_part", []),
                                     ("moderate-dent", [])]  # fmt: skip
    assert worst_labelled(labels) is Severity.SEVERE
    assert worst_labelled([("minor-dent", [])]) is Severity.MINOR
    assert worst_labelled([]) is None


def test_damage_severity_photos_are_graded_and_unlabelled_ones_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a typed set's split of three photos, one with no labelled damage
    photos = [(tmp_path / "a.jpg", [("minor-dent", []), ("moderate-scratch", [])]),
              (tmp_path / "b.jpg", []),
              (tmp_path / "c.jpg", [("severe-dent", [])])]  # fmt: skip
    monkeypatch.setenv("CDAT_DATA_ROOT", str(tmp_path))
    monkeypatch.setattr(training.claim_eval, "typed_photos", lambda *args: iter(photos))
    # when its photos are graded for the bench
    graded = graded_photos("damage-severity", tmp_path / "unused.yaml", "val")
    # then each labelled photo takes its worst damage, and the unlabelled one is not counted
    assert graded == [
        (tmp_path / "a.jpg", Severity.MODERATE),
        (tmp_path / "c.jpg", Severity.SEVERE),
    ]
    # and the summary counts a severe call on the moderate photo as wrong
    summary = summarise([(g, "severe") for _, g in graded])
    assert summary["per_grade"]["moderate"]["right_when_found"] == 0.0
    assert summary["per_grade"]["severe"]["right_when_found"] == 1.0
