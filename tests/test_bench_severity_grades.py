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


def test_car_parts_damage_photos_take_the_grade_its_config_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a config naming a grades file, and a held-out split of three photos, one ungraded
    grades = tmp_path / "grades.csv"
    grades.write_text("split,file,grade\nval,a.jpg,minor\nval,c.jpg,severe\n")
    config = tmp_path / "cpd.yaml"
    config.write_text("photo_grades: grades.csv\n")
    photos = [(tmp_path / n, []) for n in ("a.jpg", "b.jpg", "c.jpg")]
    monkeypatch.setattr("bench.bench_severity_grades.CPD_CONFIG", config)
    monkeypatch.setattr("bench.bench_severity_grades.held_out_photos", lambda *a: photos)
    # when they are graded for the bench
    graded = graded_photos("car-parts-damage", tmp_path / "unused.yaml", "val")
    # then each takes the file's grade, and the photo it does not name is left out
    assert graded == [(tmp_path / "a.jpg", Severity.MINOR), (tmp_path / "c.jpg", Severity.SEVERE)]


def test_the_shipped_grades_name_every_car_parts_damage_photo_once_with_a_known_grade() -> None:
    from bench.bench_severity_grades import CPD_CONFIG

    rows = (CPD_CONFIG.parent / "car-parts-damage-grades.csv").read_text().splitlines()[1:]
    files = [r.split(",")[1] for r in rows]
    assert len(files) == len(set(files)) == 1386 + 118 + 119
    assert {r.split(",")[2] for r in rows} == {s.value for s in Severity}
    assert {r.split(",")[0] for r in rows} == {"train", "val", "test"}
