"""Damage rules compared from one pass: a tiny set of cached analyses whose answer is known."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdat.findings import Box, DamageInstance, PartInstance, PhotoAnalysis
from cdat.taxonomy import CarPart, DamageType, PartFamily, Severity
from cdat.whole_car import WholeCarRule
from training.claim_eval import Outline
from training.closeup import _polygon_mask
from training.errors import TrainingError
from training.rule_sweep import (
    Candidate,
    PhotoRecord,
    _record,
    candidates,
    choose,
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


def test_a_cache_that_is_not_a_saved_pass_is_one_error(tmp_path: Path) -> None:
    from training.claim_rules import cached_records

    # given a file that is not a pickle saved by --pass
    cache = tmp_path / "pass.pkl"
    cache.write_bytes(b"not a pickle")
    # then reading it is the package's error, naming the file
    with pytest.raises(TrainingError, match="not a pass saved by --pass"):
        cached_records(cache, "val", 0, tmp_path)


def test_an_out_that_is_a_folder_is_refused_before_any_work(tmp_path: Path) -> None:
    from training.claim_rules import get_args_parser, main

    args = get_args_parser().parse_args(
        ["--split", "val", "--cache", str(tmp_path / "none.pkl"), "--out", str(tmp_path)]
    )
    with pytest.raises(TrainingError, match="is a folder"):
        main(args)
