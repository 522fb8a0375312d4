"""Damage -> part by mask overlap, with the share of the part covered."""

from __future__ import annotations

import numpy as np
import pytest

from cdat.findings import Box, DamageInstance, PartInstance
from cdat.taxonomy import CarPart, DamageType, Severity
from inference.assign import AssignRule, assign_parts

GRID = (100, 100)


def mask(r0, r1, c0, c1) -> np.ndarray:
    m = np.zeros(GRID, bool)
    m[r0:r1, c0:c1] = True
    return m


def damage() -> DamageInstance:
    return DamageInstance(DamageType.DENT, Severity.MINOR, 0.9, Box(0, 0, 1, 1))


def part(p: CarPart) -> PartInstance:
    return PartInstance(p, 0.9, Box(0, 0, 1, 1))


def test_assigns_the_part_with_most_overlap_and_its_coverage():
    parts = (part(CarPart.HOOD), part(CarPart.FRONT_BUMPER))
    part_masks = np.stack([mask(0, 50, 0, 100), mask(50, 100, 0, 100)])  # 5000 px each
    damages = (damage(), damage())
    damage_masks = np.stack([mask(40, 60, 0, 30), mask(10, 20, 10, 20)])
    # 30/10 split of the first damage across hood/bumper rows 40-50 vs 50-60: tie-free below
    damage_masks[0, 40:50, 0:10] = False
    out = assign_parts(damages, damage_masks, parts, part_masks)
    assert out[0].part is CarPart.FRONT_BUMPER
    assert out[0].part_coverage == pytest.approx(300 / 5000)
    assert out[1].part is CarPart.HOOD and out[1].part_coverage == pytest.approx(100 / 5000)


def test_damage_mostly_off_every_part_is_an_unlisted_panel():
    # given a damage 1000 px, of which 100 px lie on the hood (10% < 30%)
    parts = (part(CarPart.HOOD),)
    out = assign_parts(
        (damage(),), np.stack([mask(0, 10, 0, 100)]), parts, np.stack([mask(9, 100, 0, 100)])
    )
    # then it is not priced as the hood: an unlisted panel for the adjuster
    assert out[0].part is None and out[0].part_coverage == 0.0


def test_damage_with_a_third_on_a_panel_belongs_to_that_panel():
    parts = (part(CarPart.FRONT_LEFT_DOOR),)
    out = assign_parts(
        (damage(),), np.stack([mask(0, 10, 0, 100)]), parts, np.stack([mask(6, 100, 0, 100)])
    )
    assert out[0].part is CarPart.FRONT_LEFT_DOOR  # 400 of 1000 px: 40% >= 30%


def test_corner_damage_reaching_into_the_wheel_is_not_a_new_wheel():
    # given a crumpled corner, 40% of it over the wheel and the rest on the (unlisted) fender
    parts = (part(CarPart.WHEEL),)
    corner = np.stack([mask(0, 10, 0, 100)])
    out = assign_parts((damage(),), corner, parts, np.stack([mask(6, 100, 0, 100)]))
    assert out[0].part is None
    # when the damage lies mostly on the wheel itself, it is the wheel's
    out = assign_parts((damage(),), corner, parts, np.stack([mask(3, 100, 0, 100)]))
    assert out[0].part is CarPart.WHEEL


def test_a_smashed_front_end_belongs_to_the_part_it_engulfs_never_the_wheel():
    # given a wide damage (rows 0-60) holding a small lamp (rows 0-10, cols 0-10) whole, and
    # a wheel it half covers; neither holds 30% of the damage
    parts = (part(CarPart.WHEEL), part(CarPart.FRONT_LEFT_LIGHT), part(CarPart.HOOD))
    wide = np.stack([mask(0, 60, 0, 100)])
    part_masks = np.stack([mask(50, 70, 0, 20), mask(0, 10, 0, 10), mask(60, 100, 0, 100)])
    engulfing = AssignRule(min_engulfed=0.5)
    out = assign_parts((damage(),), wide, parts, part_masks, engulfing)
    # then, with the fallback on, the lamp it engulfs is the damaged part, with its coverage
    assert out[0].part is CarPart.FRONT_LEFT_LIGHT and out[0].part_coverage == 1.0
    # and with only the wheel in sight, it is an unlisted panel, not a new wheel
    out = assign_parts((damage(),), wide, parts[:1], part_masks[:1], engulfing)
    assert out[0].part is None
    # and served, the fallback is on (the sweep's candidate without it was not served)
    assert assign_parts((damage(),), wide, parts, part_masks)[0].part is CarPart.FRONT_LEFT_LIGHT


def test_no_parts_at_all():
    out = assign_parts((damage(),), np.stack([mask(0, 5, 0, 5)]), (), np.zeros((0, *GRID), bool))
    assert out[0].part is None


def test_the_thresholds_are_a_rule_a_sweep_can_vary():
    # given a damage of 1000 px, 250 px of it on the hood
    parts = (part(CarPart.HOOD),)
    dent = np.stack([mask(0, 10, 0, 100)])
    hood = np.stack([mask(0, 10, 0, 25) | mask(10, 100, 0, 100)])  # too big to be engulfed
    # when the served rule needs 30% of the damage on the part: an unlisted panel
    assert assign_parts((damage(),), dent, parts, hood)[0].part is None
    # when a rule needs 20%: the hood
    rule = AssignRule(min_overlap=0.2)
    assert assign_parts((damage(),), dent, parts, hood, rule)[0].part is CarPart.HOOD


def test_min_engulfed_decides_whether_a_wide_damage_falls_back_to_a_part():
    # given a wide damage (6000 px) covering 40% of a lamp (rows 50-60 of its rows 50-75)
    parts = (part(CarPart.FRONT_LEFT_LIGHT),)
    wide = np.stack([mask(0, 60, 0, 100)])
    lamp = np.stack([mask(50, 75, 0, 10)])
    # then at 50% it is an unlisted panel, and at 30% the lamp
    assert (
        assign_parts((damage(),), wide, parts, lamp, AssignRule(min_engulfed=0.5))[0].part is None
    )
    out = assign_parts((damage(),), wide, parts, lamp, AssignRule(min_engulfed=0.3))
    assert out[0].part is CarPart.FRONT_LEFT_LIGHT


def test_a_damage_touching_no_part_is_never_on_one_even_with_no_threshold():
    parts = (part(CarPart.HOOD),)
    out = assign_parts(
        (damage(),),
        np.stack([mask(0, 10, 0, 10)]),
        parts,
        np.stack([mask(50, 60, 50, 60)]),
        AssignRule(min_overlap=0.0, min_engulfed=0.0),
    )
    assert out[0].part is None
