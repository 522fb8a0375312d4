"""The damage verifier's rule (cdat/verified.py): its record and what it keeps."""

from __future__ import annotations

from typing import Any

import pytest

from cdat.findings import Box, DamageInstance
from cdat.taxonomy import DamageType, Severity
from cdat.verified import VerifierRule, verified


def damage(conf: float, x: float = 0.0) -> DamageInstance:
    return DamageInstance(DamageType.DENT, Severity.MINOR, conf, Box(x, 0, x + 10, 10))


# --- VerifierRule --------------------------------------------------------------------------


def test_a_rule_round_trips_as_plain_data() -> None:
    # given a rule with every field
    rule = VerifierRule(base_conf=0.1, min_probability=0.7, min_base_probability=0.2)
    # when it is stored, then it is a plain record that reads back as the same rule
    assert rule.to_record() == {"base_conf": 0.1, "min_probability": 0.7,
                                "min_base_probability": 0.2, "max_overlap": 1.0,
                                "whole_car_probability": 0.0}  # fmt: skip
    assert VerifierRule.from_record(rule.to_record()) == rule


def test_a_stored_rule_without_a_base_probability_never_drops_base_damage() -> None:
    rule = VerifierRule.from_record({"base_conf": 0.1, "min_probability": 0.7})
    assert rule == VerifierRule(0.1, 0.7, 0.0)


def test_a_rule_stored_before_overlaps_were_judged_drops_no_overlapping_damage() -> None:
    # given a rule stored without max_overlap (entry -4's) and two confirmed damages
    # under the base with the very same box
    rule = VerifierRule.from_record({"base_conf": 0.1, "min_probability": 0.7})
    twins = (damage(0.06, 0), damage(0.05, 0))
    # then both are kept, as they were when the rule was chosen
    assert rule.max_overlap == 1.0
    assert verified(twins, [0.9, 0.9], [False, False], rule) == twins


def test_a_rule_stored_before_whole_car_views_were_judged_adds_there_as_on_a_close_up() -> None:
    # given a rule stored without whole_car_probability (entry -7's)
    rule = VerifierRule.from_record({"base_conf": 0.1, "min_probability": 0.5})
    faint = (damage(0.05),)
    # then damage the verifier confirms is added on a whole-car view too
    assert rule.whole_car_probability == 0.0
    assert verified(faint, [0.6], [False], rule, whole_car_view=True) == faint


def test_on_a_whole_car_view_added_damage_needs_the_whole_car_bar() -> None:
    # given a rule whose whole-car bar is above its close-up bar
    rule = VerifierRule(0.1, 0.5, whole_car_probability=0.9)
    faint, sure_faint = damage(0.05, 0), damage(0.04, 50)
    # when the verifier gives one 0.6 and the other 0.95
    found = (faint, sure_faint)
    # then a close-up adds both, a whole-car view only the one over 0.9
    assert verified(found, [0.6, 0.95], [False, False], rule) == found
    assert verified(found, [0.6, 0.95], [False, False], rule, whole_car_view=True) == (sure_faint,)


def test_the_whole_car_bar_leaves_what_the_threshold_keeps() -> None:
    # given damage the threshold and whole-car rule keep, on a whole-car view
    rule = VerifierRule(0.1, 0.5, min_base_probability=0.1, whole_car_probability=0.99)
    kept = (damage(0.3),)
    # then only the drop bar judges it, not the whole-car bar
    assert verified(kept, [0.4], [True], rule, whole_car_view=True) == kept
    assert verified(kept, [0.05], [True], rule, whole_car_view=True) == ()


def test_a_whole_car_bar_under_the_close_up_bar_asks_no_less() -> None:
    rule = VerifierRule(0.1, 0.7, whole_car_probability=0.2)
    assert verified((damage(0.05),), [0.5], [False], rule, whole_car_view=True) == ()


def test_whole_numbers_and_the_ends_of_the_range_are_accepted() -> None:
    assert VerifierRule(1, 1, 1) == VerifierRule(1.0, 1.0, 1.0)
    assert VerifierRule(1e-6, 0.0, 0.0).min_probability == 0.0


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"base_conf": 0.1, "min_probability": 0.7, "conf": 0.2}, "unknown field.*conf"),
        ({"base_conf": 0.1, "min_probability": 0.7, "b": 1, "a": 2}, r"unknown field\(s\) a, b"),
        ({"min_probability": 0.7}, "base_conf is required"),
        ({"base_conf": 0.1}, "min_probability is required"),
        ({}, "base_conf, min_probability are required"),
        ({"base_conf": "0.1", "min_probability": 0.7}, "base_conf '0.1': need a number"),
        ({"base_conf": 0.1, "min_probability": None}, "min_probability None: need a number"),
        ({"base_conf": True, "min_probability": 0.7}, "base_conf True: need a number"),
        ({"base_conf": 0.1, "min_probability": 0.7, "min_base_probability": False}, "number"),
        ({"base_conf": 0.1, "min_probability": 1.5}, "min_probability 1.5: need a value"),
        ({"base_conf": 0.1, "min_probability": -0.1}, "min_probability -0.1: need a value"),
        ({"base_conf": 0.1, "min_probability": 0.7, "min_base_probability": 2}, "from 0 to 1"),
        ({"base_conf": 1.01, "min_probability": 0.7}, "base_conf 1.01: need a value"),
        ({"base_conf": 0.0, "min_probability": 0.7}, "base_conf 0.0: need a score above 0"),
        ({"base_conf": 0.1, "min_probability": 0.7, "max_overlap": 1.2}, "max_overlap 1.2"),
        (
            {"base_conf": 0.1, "min_probability": 0.7, "whole_car_probability": -1},
            "whole_car_probability -1",
        ),
        ({"base_conf": float("nan"), "min_probability": 0.7}, "base_conf nan"),
    ],
)
def test_a_damaged_rule_is_refused(record: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VerifierRule.from_record(record)


def test_a_rule_is_checked_when_made_directly_too() -> None:
    with pytest.raises(ValueError, match="need a score above 0"):
        VerifierRule(0.0, 0.5)
    with pytest.raises(ValueError, match="min_base_probability"):
        VerifierRule(0.1, 0.5, 1.2)


def test_a_rule_is_frozen() -> None:
    rule = VerifierRule(0.1, 0.7)
    with pytest.raises(AttributeError):
        rule.base_conf = 0.2  # type: ignore[misc]


# --- verified ------------------------------------------------------------------------------

RULE = VerifierRule(base_conf=0.3, min_probability=0.7, min_base_probability=0.2)


def test_base_damage_is_kept_unless_the_verifier_gives_less_than_the_base_minimum() -> None:
    # given three damages the base keeps, the verifier giving them 0.2, 0.19 and 1.0
    damages = (damage(0.9, 0), damage(0.8, 20), damage(0.5, 40))
    # when the rule decides, then the one under 0.2 goes; exactly 0.2 stays
    got = verified(damages, [0.2, 0.19, 1.0], [True, True, True], RULE)
    assert got == (damages[0], damages[2])


def test_damage_under_the_base_is_kept_only_where_the_verifier_confirms_it() -> None:
    # given three damages the base drops, the verifier giving them 0.7, 0.69 and 0.95
    damages = (damage(0.05, 0), damage(0.05, 20), damage(0.05, 40))
    got = verified(damages, [0.7, 0.69, 0.95], [False, False, False], RULE)
    # then those at or above 0.7 are kept
    assert got == (damages[0], damages[2])


def test_the_base_verdict_decides_which_minimum_applies_not_the_score() -> None:
    # given two damages of the same score and the same probability (0.5): one kept by the
    # base, one not (e.g. the whole-car rule dropped it)
    same = (damage(0.5, 0), damage(0.5, 20))
    got = verified(same, [0.5, 0.5], [True, False], RULE)
    # then only the one in the base is kept
    assert got == (same[0],)


def test_a_base_minimum_of_zero_never_drops_base_damage() -> None:
    rule = VerifierRule(0.3, 0.7)
    damages = (damage(0.9, 0), damage(0.1, 20))
    assert verified(damages, [0.0, 0.0], [True, False], rule) == (damages[0],)


def test_the_kept_damages_are_the_same_objects_in_their_order() -> None:
    damages = tuple(damage(0.1 * k, 20 * k) for k in range(1, 6))
    got = verified(damages, [0.9, 0.1, 0.8, 0.9, 0.0], [False, True, True, False, True], RULE)
    assert got == (damages[0], damages[2], damages[3])
    assert all(a is b for a, b in zip(got, (damages[0], damages[2], damages[3]), strict=True))


def test_no_damage_keeps_nothing() -> None:
    assert verified((), [], [], RULE) == ()


@pytest.mark.parametrize(
    ("probabilities", "base_kept"),
    [([0.9], [True, True]), ([0.9, 0.9, 0.9], [True, True]), ([0.9, 0.9], [True]), ([], [])],
)
def test_one_probability_and_one_base_verdict_are_needed_per_damage(
    probabilities: list[float], base_kept: list[bool]
) -> None:
    with pytest.raises(ValueError, match="one probability and one base verdict per damage"):
        verified((damage(0.5, 0), damage(0.5, 20)), probabilities, base_kept, RULE)


def boxed(conf: float, box: tuple[float, float, float, float]) -> DamageInstance:
    return DamageInstance(DamageType.DENT, Severity.MINOR, conf, Box(*box))


def test_damage_added_under_the_base_is_not_another_name_for_damage_already_found() -> None:
    # given a damage the base keeps and three the verifier confirms under it: one over the
    # same area (box IoU 0.81), one a little offset (IoU 0.25) and one apart
    rule = VerifierRule(base_conf=0.3, min_probability=0.7, max_overlap=0.5)
    found = boxed(0.6, (0, 0, 100, 100))
    same = boxed(0.05, (0, 0, 100, 81))
    offset = boxed(0.04, (60, 0, 160, 100))
    apart = boxed(0.03, (300, 0, 400, 100))
    damages = (found, same, offset, apart)
    # when the rule decides
    got = verified(damages, [0.9, 0.9, 0.9, 0.9], [True, False, False, False], rule)
    # then the one over the found damage is dropped; the others add damage
    assert got == (found, offset, apart)


def test_of_two_overlapping_added_damages_the_surer_is_kept() -> None:
    rule = VerifierRule(base_conf=0.3, min_probability=0.7, max_overlap=0.5)
    weaker, surer = boxed(0.04, (0, 0, 100, 100)), boxed(0.08, (5, 0, 105, 100))
    # given in either order, then only the surer one of the pair is kept
    assert verified((weaker, surer), [0.9, 0.9], [False, False], rule) == (surer,)
    assert verified((surer, weaker), [0.9, 0.9], [False, False], rule) == (surer,)


def test_an_overlap_exactly_at_the_bound_is_kept_and_base_damage_is_never_dropped_for_it() -> None:
    rule = VerifierRule(base_conf=0.3, min_probability=0.7, max_overlap=0.5)
    # given two base damages overlapping each other, and an added one at IoU exactly 0.5
    a, b = boxed(0.9, (0, 0, 100, 100)), boxed(0.8, (0, 0, 100, 90))
    half = boxed(0.05, (300, 0, 400, 100))
    other = boxed(0.06, (300, 0, 400, 50))
    got = verified((a, b, other, half), [0.9] * 4, [True, True, False, False], rule)
    # then both base damages stay and the added one at exactly the bound stays too
    assert half.box.iou(other.box) == 0.5
    assert got == (a, b, other, half)
