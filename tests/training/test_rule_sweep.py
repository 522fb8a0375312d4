"""Damage rules compared from one pass: a tiny set of cached analyses whose answer is known."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from cdat.findings import Box, DamageInstance, PartInstance, PhotoAnalysis
from cdat.taxonomy import CarPart, DamageType, PartFamily, Severity
from cdat.whole_car import WholeCarRule
from training.claim_eval import INTACT_CLOSEUPS
from training.closeup import _polygon_mask
from training.errors import TrainingError
from training.outline_tally import Outline
from training.rule_sweep import (
    Candidate,
    PhotoRecord,
    _record,
    candidates,
    choose,
    choose_served,
    score,
    sweep,
)

W, H = 200, 100
SMALL_PARTS = tuple(
    PartInstance(p, 0.9, Box(30 * i, 10, 30 * i + 20, 30))
    for i, p in enumerate(
        (
            CarPart.FRONT_BUMPER,
            CarPart.HOOD,
            CarPart.WHEEL,
            CarPart.LEFT_MIRROR,
            CarPart.FRONT_LEFT_DOOR,
        )
    )
)
DOOR = (PartInstance(CarPart.FRONT_LEFT_DOOR, 0.9, Box(0, 0, 180, 100)),)
SQUARE = ((40.0, 40.0), (80.0, 40.0), (80.0, 80.0), (40.0, 80.0))


def damage(conf: float) -> DamageInstance:
    return DamageInstance(
        DamageType.DENT, Severity.MINOR, conf, Box(40, 40, 80, 80), SQUARE, CarPart.FRONT_LEFT_DOOR
    )


def records() -> list[PhotoRecord]:
    """A close-up whose door dent is found at 0.2, and an intact whole car with a 0.2
    false damage: a global threshold cannot keep the one and drop the other."""
    closeup = PhotoAnalysis("c", W, H, damages=(damage(0.2),), parts=DOOR)
    outline = Outline(_polygon_mask(SQUARE, (H, W), scale=False), PartFamily.DOOR, "severe")
    intact = PhotoAnalysis("i", W, H, damages=(damage(0.2),), parts=SMALL_PARTS)
    return [
        _record("car-parts-damage", Path("c.jpg"), closeup, [outline]),
        PhotoRecord("car-parts", "i.jpg", intact),
    ]


def test_the_figures_of_a_threshold_and_of_a_whole_car_rule() -> None:
    recs = records()
    # when served at 0.15: the dent is found on its door, and the intact car gets damage
    at_served = score(recs, Candidate(0.15).rule)
    assert at_served["damage_recall_iou30"]["car-parts-damage"] == 1.0
    assert at_served["part_family_accuracy"]["car-parts-damage"] == 1.0
    assert at_served["intact_photos_with_damage"] == 1.0
    assert at_served["per_source"]["car-parts"]["damaged_photo_names"] == ["i.jpg"]
    # when served at 0.25: neither
    higher = score(recs, Candidate(0.25).rule)
    assert higher["damage_recall_iou30"]["car-parts-damage"] == 0.0
    assert higher["intact_photos_with_damage"] == 0.0
    # when a whole-car view (5+ parts) needs 0.25: the dent kept, the intact car clean
    rule = Candidate(0.15, WholeCarRule(min_parts=5, whole_car_conf=0.25))
    ruled = score(recs, rule.rule)
    assert ruled["damage_recall_iou30"]["car-parts-damage"] == 1.0
    assert ruled["per_source"]["car-parts-damage"]["severe_damage_recall_iou30"] == 1.0
    assert ruled["intact_photos_with_damage"] == 0.0
    # and a view of 6+ parts does not cover the intact car's 5
    wider = score(recs, Candidate(0.15, WholeCarRule(min_parts=6, whole_car_conf=0.25)).rule)
    assert wider["intact_photos_with_damage"] == 1.0


def test_an_intact_close_up_meets_the_close_up_threshold_and_is_counted_apart() -> None:
    # given the records above and an intact close-up (one door filling the frame) with a
    # 0.2 false damage
    closeup = PhotoAnalysis("k", W, H, damages=(damage(0.2),), parts=DOOR)
    recs = [*records(), PhotoRecord(INTACT_CLOSEUPS, "k-0.jpg", closeup, jpeg=b"jpeg")]
    # when a whole-car view needs 0.25: the whole car is clean, the close-up is not
    rule = Candidate(0.15, WholeCarRule(min_parts=5, whole_car_conf=0.25))
    figures = score(recs, rule.rule)
    assert figures["intact_photos_with_damage"] == 0.0
    assert figures["intact_closeups_with_damage"] == 1.0
    assert figures["per_source"][INTACT_CLOSEUPS]["damaged_photo_names"] == ["k-0.jpg"]
    # and at 0.25 everywhere, both are clean
    assert score(recs, Candidate(0.25).rule)["intact_closeups_with_damage"] == 0.0


def test_a_record_is_read_from_its_bytes_or_its_file(tmp_path: Path) -> None:
    empty = PhotoAnalysis("e", W, H)
    (tmp_path / "f.jpg").write_bytes(b"from the file")
    assert PhotoRecord("x", "m", empty, jpeg=b"made here").photo_bytes() == b"made here"
    assert PhotoRecord("x", "f", empty, path=tmp_path / "f.jpg").photo_bytes() == b"from the file"
    with pytest.raises(TrainingError, match="names no photo file"):
        PhotoRecord("x", "n", empty).photo_bytes()


def test_the_grid_holds_each_threshold_alone_and_only_rules_that_change_something() -> None:
    grid = candidates([0.15, 0.3], [5], [1.0], [0.25], drop_off_part=(False,))
    # then: both thresholds alone, and 0.25 on whole cars only above 0.15
    assert grid == [
        Candidate(0.15),
        Candidate(0.3),
        Candidate(0.15, WholeCarRule(5, 1.0, 0.25, False)),
    ]


def test_the_chosen_rule_keeps_the_recall_a_higher_threshold_would_lose() -> None:
    grid = candidates([0.15, 0.25], [5, 6], [1.0], [0.25], drop_off_part=(False,))
    rows = sweep(records(), grid)
    # then the threshold alone fails the intact bound, 0.25 loses the dent, 6+ parts fails
    # the bound: the rule on 5+ parts is chosen
    chosen = choose(rows, served_conf=0.15)
    assert chosen is not None
    assert chosen["conf"] == 0.15
    assert chosen["whole_car"] == {
        "min_parts": 5,
        "max_part_share": 1.0,
        "whole_car_conf": 0.25,
        "drop_off_part": False,
    }


def test_nothing_is_chosen_when_no_candidate_meets_the_intact_bound() -> None:
    rows = sweep(records(), candidates([0.15], [6], [1.0], [0.25], drop_off_part=(False,)))
    assert choose(rows, served_conf=0.15) is None


def test_a_threshold_that_meets_the_bound_wins_over_a_rule_that_finds_no_more() -> None:
    # given only the intact car: every candidate that meets the bound finds the same (none)
    rows = sweep(records()[1:], candidates([0.15, 0.25], [5], [1.0], [0.25], (False,)))
    chosen = choose(rows, served_conf=0.15)
    # then the simpler candidate, the threshold alone, is chosen
    assert chosen is not None and chosen["whole_car"] is None
    assert chosen["conf"] == pytest.approx(0.25)


SQUARE_2 = ((120.0, 40.0), (160.0, 40.0), (160.0, 80.0), (120.0, 80.0))


def faint_records(false_faint: int = 0) -> list[PhotoRecord]:
    """A close-up with two real dents, one scored 0.3 and one 0.12 (and `false_faint` false
    damages at 0.11), and an intact whole car with a 0.2 false damage: the second dent is
    found only below the served 0.15, the whole car kept clean there only by a rule."""
    second = replace(damage(0.12), box=Box(120, 40, 160, 80), polygon=SQUARE_2)
    faint = tuple(
        replace(damage(0.11), box=Box(10 + 30 * i, 85, 30 + 30 * i, 95), polygon=())
        for i in range(false_faint)
    )
    closeup = PhotoAnalysis("c", W, H, damages=(damage(0.3), second, *faint), parts=DOOR)
    outlines = [
        Outline(_polygon_mask(square, (H, W), scale=False), PartFamily.DOOR, "severe")
        for square in (SQUARE, SQUARE_2)
    ]
    intact = PhotoAnalysis("i", W, H, damages=(damage(0.2),), parts=SMALL_PARTS)
    return [
        _record("car-parts-damage", Path("c.jpg"), closeup, outlines),
        PhotoRecord("car-parts", "i.jpg", intact),
    ]


def test_a_lower_threshold_is_chosen_with_the_rule_that_keeps_intact_cars_clean() -> None:
    # given the threshold-and-rule criterion over thresholds 0.1 and 0.15 (served) and a
    # whole-car rule of 5+ parts at 0.25
    rows = sweep(faint_records(), candidates([0.1, 0.15], [5], [1.0], [0.25], (False,)))
    chosen = choose_served(rows, served_conf=0.15)
    # then 0.1 finds the second dent, its rule keeps the intact car clean: both are chosen
    assert chosen is not None and chosen["conf"] == 0.1
    assert chosen["whole_car"] is not None and chosen["whole_car"]["min_parts"] == 5
    assert chosen["damage_recall_iou30"]["car-parts-damage"] == 1.0
    # while the rule-only criterion keeps the served threshold, which misses it
    kept = choose(rows, served_conf=0.15)
    assert kept is not None and kept["conf"] == 0.15


def test_a_lower_threshold_that_costs_too_much_precision_is_not_chosen() -> None:
    # given the close-up also holds three more false damages at 0.11
    rows = sweep(
        faint_records(false_faint=3), candidates([0.1, 0.15], [5], [1.0], [0.25], (False,))
    )
    # then precision at 0.1 falls from 1.0 to 0.4, more than 0.05: the served threshold stays
    chosen = choose_served(rows, served_conf=0.15)
    assert chosen is not None and chosen["conf"] == 0.15


def test_a_cache_that_is_not_a_saved_pass_is_one_error(tmp_path: Path) -> None:
    from training.claim_rules import cached_records

    # given a file that is not a pickle saved by --pass
    cache = tmp_path / "pass.pkl"
    cache.write_bytes(b"not a pickle")
    # then reading it is the package's error, naming the file
    with pytest.raises(TrainingError, match="not a pass saved by --pass"):
        cached_records(cache, "val", 0, tmp_path)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--damage", "model.pt", "--pass"], "a candidate's .onnx file"),
        (["--damage", "model.onnx"], "a candidate's .onnx file"),
        (["--damage", "missing.onnx", "--pass"], "no such file"),
        (["--parts", "model.pt", "--pass"], "a candidate's .onnx file"),
        (["--parts", "model.onnx"], "a candidate's .onnx file"),
        (["--parts", "missing.onnx", "--pass"], "--parts .*no such file"),
    ],
)
def test_a_candidate_pass_that_cannot_run_is_one_error(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    from training.claim_rules import get_args_parser, main

    (tmp_path / "model.pt").write_bytes(b"x")
    (tmp_path / "model.onnx").write_bytes(b"x")
    argv = ["--cache", str(tmp_path / "c.pkl"), *[a if a.startswith("--") else
            str(tmp_path / a) for a in extra]]  # fmt: skip
    with pytest.raises(TrainingError, match=message):
        main(get_args_parser().parse_args(argv))


def test_an_out_that_is_a_folder_is_refused_before_any_work(tmp_path: Path) -> None:
    from training.claim_rules import get_args_parser, main

    args = get_args_parser().parse_args(
        ["--split", "val", "--cache", str(tmp_path / "none.pkl"), "--out", str(tmp_path)]
    )
    with pytest.raises(TrainingError, match="is a folder"):
        main(args)


def test_a_pass_made_before_close_ups_were_measured_is_one_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cv2
    import numpy as np

    from training import rule_sweep

    # given one intact-car photo, and a pass that answered for it but not for its close-ups
    photo = tmp_path / "car.jpg"
    cv2.imwrite(str(photo), np.full((512, 512, 3), 200, np.uint8))
    car = [0.1, 0.3, 0.9, 0.3, 0.9, 0.9, 0.1, 0.9]

    def photos_of(config: Path, *args: object) -> list:
        return [(photo, [("hood", car)])] if config.stem == "car-parts" else []

    monkeypatch.setattr(rule_sweep, "typed_photos", photos_of)
    monkeypatch.setattr(rule_sweep, "held_out_photos", photos_of)
    monkeypatch.setattr(rule_sweep, "no_vehicle_split", lambda *args: [])
    answer = PhotoAnalysis("car.jpg", 512, 512)
    cache = {rule_sweep.photo_key(photo.read_bytes()): answer}
    # when its records are built, then the error says to make the pass again
    with pytest.raises(TrainingError, match="make it again"):
        rule_sweep.build_records(cache, "val", 0, tmp_path)
    # and with the close-ups answered too, each is a record read from its own bytes
    for closeup in rule_sweep.intact_closeups(photos_of(Path("car-parts.yaml"))):
        cache[rule_sweep.photo_key(closeup.jpeg)] = answer
    records = rule_sweep.build_records(cache, "val", 0, tmp_path)
    closeups = [r for r in records if r.source == INTACT_CLOSEUPS]
    assert closeups and all(r.jpeg and r.photo_bytes() == r.jpeg for r in closeups)
