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


def test_car_parts_damage_photos_take_the_engineers_grade_of_their_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a grades file naming photos of both splits
    grades = tmp_path / "grades.csv"
    grades.write_text("split,file,grade\nval,a.jpg,minor\ntest,b.jpg,severe\nval,c.jpg,moderate\n")
    monkeypatch.setattr("bench.bench_severity_grades.CPD_GRADES", grades)
    monkeypatch.setenv("CDAT_DATA_ROOT", str(tmp_path))
    # when the val photos are graded for the bench
    graded = graded_photos("car-parts-damage", tmp_path / "unused.yaml", "val")
    # then each val photo, in the published val folder, takes its grade, and no test photo
    folder = tmp_path / "car-parts-damage" / "valid" / "images"
    assert graded == [(folder / "a.jpg", Severity.MINOR), (folder / "c.jpg", Severity.MODERATE)]


def test_the_shipped_grades_name_every_held_out_photo_once_with_a_known_grade() -> None:
    from bench.bench_severity_grades import CPD_GRADES

    rows = CPD_GRADES.read_text().splitlines()[1:]
    keys = [tuple(r.split(",")[:2]) for r in rows]
    assert len(keys) == len(set(keys)) == 237
    assert {r.split(",")[2] for r in rows} == {s.value for s in Severity}
    assert {r.split(",")[0] for r in rows} == {"val", "test"}
