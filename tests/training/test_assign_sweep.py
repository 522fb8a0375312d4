"""The damage -> part rule swept on cached analyses: a tiny set whose answer is known."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import pytest

from cdat.findings import Box, DamageInstance, PartInstance, PhotoAnalysis
from cdat.taxonomy import CarPart, DamageType, PartFamily, Severity
from inference.assign import SERVED, AssignRule
from training.assign_sweep import (
    choose,
    grid_masks,
    rule_grid,
    served_agreement,
    sweep,
)
from training.closeup import _polygon_mask
from training.outline_tally import Outline
from training.rule_sweep import PhotoRecord, _record, at_conf

W, H = 200, 100  # the analysis grid of a 200 x 100 photo is the photo itself
DENT = ((40.0, 40.0), (80.0, 40.0), (80.0, 80.0), (40.0, 80.0))
QUARTER = (
    (0.0, 0.0),
    (199.0, 0.0),
    (199.0, 49.0),
    (0.0, 49.0),
)  # ~24% of the dent, too big to engulf


def photo(name: str, part: CarPart, family: PartFamily) -> PhotoRecord:
    """A dent with a quarter of it on `part` (served: an unlisted panel), labelled `family`."""
    dent = DamageInstance(DamageType.DENT, Severity.MINOR, 0.9, Box(40, 40, 80, 80), DENT)
    parts = (PartInstance(part, 0.9, Box(0, 0, 199, 49), QUARTER),)
    analysis = PhotoAnalysis(name, W, H, damages=(dent,), parts=parts)
    outline = Outline(_polygon_mask(DENT, (H, W), scale=False), family)
    return _record("car-parts-damage", Path(f"{name}.jpg"), analysis, [outline])


def run(records: list[PhotoRecord], grid: list[AssignRule]) -> list[dict]:
    masks = [grid_masks(r.analysis) for r in records]
    return sweep(records, masks, grid, at_conf(0.15))


LOWER = AssignRule(min_overlap=0.2)


def test_a_lower_overlap_puts_the_hood_dent_on_the_hood_and_the_fender_dent_on_the_door():
    # given a hood dent and a fender dent, each with a quarter on a listed part
    records = [
        photo("h", CarPart.HOOD, PartFamily.HOOD),
        photo("f", CarPart.FRONT_LEFT_DOOR, PartFamily.UNLISTED_PANEL),
    ]
    served, lower = run(records, [SERVED, LOWER])
    # then served: the fender right (unlisted), the hood wrong (unlisted too)
    assert served["part_family_accuracy"]["car-parts-damage"] == 0.5
    assert served["per_family"]["car-parts-damage"]["hood"]["part_family_accuracy"] == 0.0
    assert served["priced"]["car-parts-damage"] == {
        "unlisted_damage_share": 1.0,
        "listed_found_called_unlisted": 1.0,
    }
    # and at 20%: the hood right, the fender wrong (priced as a door), both still found
    assert lower["per_family"]["car-parts-damage"]["hood"]["part_family_accuracy"] == 1.0
    assert lower["per_family"]["car-parts-damage"]["unlisted_panel"]["part_family_accuracy"] == 0
    assert lower["priced"]["car-parts-damage"]["unlisted_damage_share"] == 0.0
    assert lower["damage_recall_iou30"] == served["damage_recall_iou30"]
    # a tie keeps the served rule
    assert choose([served, lower]) is None


def test_choose_takes_a_rule_that_gains_and_never_one_that_loses_recall():
    records = [photo(n, CarPart.HOOD, PartFamily.HOOD) for n in "ab"]
    records.append(photo("f", CarPart.FRONT_LEFT_DOOR, PartFamily.UNLISTED_PANEL))
    served, lower = run(records, [SERVED, LOWER])
    assert lower["part_family_accuracy"]["car-parts-damage"] == pytest.approx(2 / 3)
    assert choose([served, lower]) == lower
    lost = {**lower, "damage_recall_iou30": {**lower["damage_recall_iou30"], "car-parts-damage": 0}}
    assert choose([served, lost]) is None


def test_served_agreement_compares_the_recomputed_part_with_the_served_one():
    records = [photo("h", CarPart.HOOD, PartFamily.HOOD)]
    masks = [grid_masks(r.analysis) for r in records]
    assert served_agreement(records, masks) == 1.0  # served: unlisted, recomputed: unlisted
    moved = replace(records[0].analysis.damages[0], part=CarPart.HOOD)
    records = [replace(records[0], analysis=replace(records[0].analysis, damages=(moved,)))]
    assert served_agreement(records, masks) == 0.0


def test_the_grid_holds_every_combination():
    grid = rule_grid([0.2, 0.3], [0.5, 1.01], [0.6])
    assert [(r.min_overlap, r.min_engulfed) for r in grid] == [
        (0.2, 0.5),
        (0.2, 1.01),
        (0.3, 0.5),
        (0.3, 1.01),
    ]
    assert {asdict(r)["min_wheel_overlap"] for r in grid} == {0.6}
