"""The part-family sweep's criterion and re-choice (training/family_sweep.py), on hand-made
rows and analyses."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from cdat.findings import Box, DamageInstance, PartInstance, PhotoAnalysis
from cdat.part_family import FamilyRule
from cdat.taxonomy import CarPart, DamageType, PartFamily, Severity
from inference.part_family import FamilyStage
from training.assign_sweep import grid_masks
from training.claim_eval import PART_NAMED
from training.family_sweep import MAX_SOURCE_DROP, MIN_GAIN, choose, rechosen

CARS, DAMAGED = PART_NAMED  # car-parts-damage, damaged-parts


def row(rule: FamilyRule | None, cars: float | None, damaged: float | None) -> dict[str, Any]:
    """A sweep row as `sweep` writes it, with the figures the criterion reads."""
    return {
        "rule": None if rule is None else rule.to_record(),
        "part_family_accuracy": {CARS: cars, DAMAGED: damaged},
    }


BASE = row(None, 0.60, 0.60)


def test_the_sources_are_the_two_part_named_sets() -> None:
    assert PART_NAMED == ("car-parts-damage", "damaged-parts")
    assert MIN_GAIN == MAX_SOURCE_DROP == 0.01


def test_the_rule_with_the_best_mean_is_chosen() -> None:
    # given the masks alone at 0.60 on both sources, and three rules
    rows = [
        BASE,
        row(FamilyRule(0.5), 0.70, 0.62),  # mean 0.66
        row(FamilyRule(0.7), 0.66, 0.64),  # mean 0.65
        row(FamilyRule(0.9), 0.62, 0.61),  # mean 0.615
    ]
    # when the criterion chooses, then the best mean wins, not the best single source
    assert choose(rows) is rows[1]


def test_a_rule_that_costs_a_source_more_than_the_floor_is_not_chosen() -> None:
    # given a rule with the best mean that loses 0.015 on damaged-parts
    rows = [
        BASE,
        row(FamilyRule(0.3), 0.90, 0.585),
        row(FamilyRule(0.6), 0.66, 0.60),
    ]
    # then the one that costs nothing is chosen instead
    assert choose(rows) is rows[2]


def test_a_rule_that_costs_a_source_exactly_the_floor_may_be_chosen() -> None:
    rows = [BASE, row(FamilyRule(0.3), 0.90, 0.59), row(FamilyRule(0.6), 0.66, 0.60)]
    assert choose(rows) is rows[1]


def test_a_tie_in_mean_goes_to_the_higher_threshold() -> None:
    # given two rules with the same mean (0.66), listed low threshold first and last
    low, high = row(FamilyRule(0.5), 0.70, 0.62), row(FamilyRule(0.8), 0.66, 0.66)
    # then the one that overrules less often is chosen, whatever the order
    assert choose([BASE, low, high]) is high
    assert choose([high, BASE, low]) is high


def test_a_tie_in_mean_and_threshold_goes_to_the_lower_masks_limit() -> None:
    strict, loose = row(FamilyRule(0.8, 0.1), 0.66, 0.66), row(FamilyRule(0.8, 1.0), 0.67, 0.65)
    assert choose([BASE, loose, strict]) is strict
    assert choose([BASE, strict, loose]) is strict


def test_a_mean_within_a_millionth_is_a_tie() -> None:
    # given a lower threshold ahead by less than 1e-6 in mean
    low, high = row(FamilyRule(0.5), 0.7000004, 0.62), row(FamilyRule(0.8), 0.66, 0.66)
    # then the higher threshold still wins
    assert choose([BASE, low, high]) is high


def test_nothing_is_served_when_the_best_gains_less_than_the_minimum() -> None:
    # given the best rule's mean 0.0075 above the masks alone
    rows = [BASE, row(FamilyRule(0.5), 0.605, 0.61), row(FamilyRule(0.9), 0.60, 0.60)]
    # then the masks alone are kept
    assert choose(rows) is None


def test_a_gain_of_exactly_the_minimum_is_served() -> None:
    rows = [BASE, row(FamilyRule(0.5), 0.61, 0.61)]
    assert choose(rows) is rows[1]


def test_nothing_is_served_when_every_rule_costs_a_source_too_much() -> None:
    rows = [BASE, row(FamilyRule(0.3), 0.95, 0.50), row(FamilyRule(0.5), 0.40, 0.90)]
    assert choose(rows) is None


def test_a_source_without_a_figure_counts_as_zero() -> None:
    # given the masks alone with no figure for damaged-parts
    base = row(None, 0.60, None)
    # then a rule at 0 there is within the floor, and one gaining on the other source wins
    gained = row(FamilyRule(0.7), 0.64, 0.0)
    assert choose([base, gained]) is gained
    # and a rule with no figure where the masks had one is below the floor
    assert choose([BASE, row(FamilyRule(0.7), 0.99, None)]) is None


# --- rechosen ------------------------------------------------------------------------------


def test_each_damage_is_chosen_again_in_its_order() -> None:
    # given a photo of 200 x 100 px: a bumper along the bottom, a door top-left; three
    # damages on the bumper, the crop saying door, unlisted panel and (unsure) door
    square = [(0, 50), (200, 50), (200, 100), (0, 100)]
    door = [(0, 0), (80, 0), (80, 50), (0, 50)]

    def on_bumper(x: float) -> DamageInstance:
        polygon = ((x, 60.0), (x + 20, 60.0), (x + 20, 80.0), (x, 80.0))
        return DamageInstance(DamageType.DENT, Severity.MINOR, 0.7, Box(x, 60, x + 20, 80),
                              polygon, CarPart.FRONT_BUMPER, 0.1)  # fmt: skip

    damages = (on_bumper(20), on_bumper(100), on_bumper(160))
    parts = (
        PartInstance(CarPart.FRONT_BUMPER, 0.9, Box(0, 50, 200, 100),
                     tuple((float(x), float(y)) for x, y in square)),
        PartInstance(CarPart.FRONT_LEFT_DOOR, 0.9, Box(0, 0, 80, 50),
                     tuple((float(x), float(y)) for x, y in door)),
    )  # fmt: skip
    analysis = PhotoAnalysis("p", 200, 100, damages=damages, parts=parts)
    stage = FamilyStage(None, 32, (PartFamily.DOOR, PartFamily.UNLISTED_PANEL), FamilyRule(1.0))
    table = np.array([[0.9, 0.1], [0.1, 0.9], [0.6, 0.4]], np.float32)
    # when they are chosen again under a rule of 0.8
    got = rechosen(analysis, grid_masks(analysis), table, stage, FamilyRule(0.8))
    # then the first goes to the door, the second to no part, the third stays, in order
    assert [d.part for d in got.damages] == [CarPart.FRONT_LEFT_DOOR, None, CarPart.FRONT_BUMPER]
    assert [d.box for d in got.damages] == [d.box for d in damages]
    assert got.damages[0].part_coverage == 0.0 and got.damages[1].part_coverage == 0.0
    assert got.damages[2] is damages[2]
    assert got.parts == parts and got.photo_id == "p"


@pytest.mark.parametrize("rule", [FamilyRule(0.95), FamilyRule(0.8, 0.05)])
def test_a_rule_no_answer_passes_leaves_the_analysis_as_it_was(rule: FamilyRule) -> None:
    box = Box(20, 60, 40, 80)
    polygon = ((20.0, 60.0), (40.0, 60.0), (40.0, 80.0), (20.0, 80.0))
    damage = DamageInstance(DamageType.DENT, Severity.MINOR, 0.7, box, polygon,
                            CarPart.FRONT_BUMPER, 0.1)  # fmt: skip
    bumper = PartInstance(CarPart.FRONT_BUMPER, 0.9, Box(0, 50, 200, 100),
                          ((0.0, 50.0), (200.0, 50.0), (200.0, 100.0), (0.0, 100.0)))  # fmt: skip
    analysis = PhotoAnalysis("p", 200, 100, damages=(damage,), parts=(bumper,))
    families = (PartFamily.DOOR, PartFamily.UNLISTED_PANEL, PartFamily.BUMPER)
    stage = FamilyStage(None, 32, families, FamilyRule(1.0))
    # the crop says door at 0.9, bumper (the masks' family) at 0.1
    table = np.array([[0.9, 0.0, 0.1]], np.float32)
    got = rechosen(analysis, grid_masks(analysis), table, stage, rule)
    assert got == analysis
