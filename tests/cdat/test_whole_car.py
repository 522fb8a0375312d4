"""The whole-car damage rule on made-up analyses whose answer is known."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cdat.findings import Box, DamageInstance, PartInstance, PhotoAnalysis
from cdat.taxonomy import CarPart, DamageType, Severity
from cdat.whole_car import (
    WholeCarRule,
    apply_whole_car_rule,
    is_whole_car_view,
    largest_part_share,
)

W, H = 1000, 500
RULE = WholeCarRule(min_parts=5, max_part_share=0.2, whole_car_conf=0.3)


def part(name: CarPart, x: float, side: float = 100) -> PartInstance:
    return PartInstance(name, 0.9, Box(x, 100, x + side, 100 + side))


def damage(conf: float, on: CarPart | None = CarPart.FRONT_LEFT_DOOR) -> DamageInstance:
    return DamageInstance(DamageType.SCRATCH, Severity.MINOR, conf, Box(10, 10, 20, 20), part=on)


WHOLE_CAR = tuple(
    part(p, 150 * i)
    for i, p in enumerate(
        (
            CarPart.FRONT_BUMPER,
            CarPart.HOOD,
            CarPart.FRONT_LEFT_DOOR,
            CarPart.WHEEL,
            CarPart.LEFT_MIRROR,
            CarPart.FRONT_LEFT_LIGHT,
        )
    )
)
CLOSE_UP = (part(CarPart.FRONT_LEFT_DOOR, 0, side=450), part(CarPart.WHEEL, 500, side=300))


def photo(parts: tuple[PartInstance, ...], *damages: DamageInstance) -> PhotoAnalysis:
    return PhotoAnalysis("p", W, H, damages=damages, parts=parts)


def test_a_whole_car_view_is_many_parts_each_small_in_the_frame() -> None:
    # given six 100x100 parts in a 1000x500 frame: each fills 2% of it
    assert largest_part_share(WHOLE_CAR, W, H) == pytest.approx(0.02)
    # then it is a whole-car view; two large parts are a close-up; no part is none
    assert is_whole_car_view(WHOLE_CAR, W, H, RULE)
    assert not is_whole_car_view(CLOSE_UP, W, H, RULE)
    assert not is_whole_car_view((), W, H, RULE)
    # and many parts of which one fills half the frame are not a whole-car view
    big = (*WHOLE_CAR[:5], part(CarPart.HOOD, 0, side=500))
    assert not is_whole_car_view(big, W, H, RULE)


def test_a_whole_car_view_keeps_only_damage_scored_above_its_threshold() -> None:
    # given a whole-car photo with a faint damage (0.2) and a confident one (0.6)
    faint, sure = damage(0.2), damage(0.6)
    # when the rule is applied
    kept = apply_whole_car_rule(photo(WHOLE_CAR, faint, sure), RULE)
    # then only the confident one stays
    assert kept.damages == (sure,)


def test_a_close_up_keeps_every_damage_it_was_served() -> None:
    # given a close-up with the same faint damage
    analysis = photo(CLOSE_UP, damage(0.2), damage(0.16, on=None))
    # then the rule leaves it as it was
    assert apply_whole_car_rule(analysis, RULE) is analysis


def test_damage_on_no_part_of_a_whole_car_view_is_dropped_only_when_asked() -> None:
    # given a confident damage on no listed part of a whole-car photo
    off = damage(0.9, on=None)
    analysis = photo(WHOLE_CAR, off, damage(0.9))
    # then the plain rule keeps it, and the off-part variant drops it
    assert apply_whole_car_rule(analysis, RULE).damages == analysis.damages
    strict = WholeCarRule(5, 0.2, 0.3, drop_off_part=True)
    assert off not in apply_whole_car_rule(analysis, strict).damages
    assert len(apply_whole_car_rule(analysis, strict).damages) == 1


@pytest.mark.parametrize(
    "kwargs", [{"min_parts": 0}, {"max_part_share": 0.0}, {"whole_car_conf": 1.0}]
)
def test_a_rule_out_of_range_is_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        WholeCarRule(**{"min_parts": 5, **kwargs})


def test_a_rule_is_stored_and_read_back_by_one_codec() -> None:
    # given a rule as a registry entry stores it
    record = RULE.to_record()
    # then it reads back as the same rule, and a partial record takes the defaults
    assert WholeCarRule.from_record(record) == RULE
    assert WholeCarRule.from_record({"min_parts": 6}) == WholeCarRule(6)
    # and a rule that reads no view is stored as before such rules were; one that does, with it
    assert "view_probability" not in record
    assert VIEW_RULE.to_record()["view_probability"] == 0.5
    assert WholeCarRule.from_record(VIEW_RULE.to_record()) == VIEW_RULE


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"whole_car_conf": 0.2}, "min_parts is required"),
        ({"min_parts": 6, "min_part": 3}, "unknown field"),
        ({"min_parts": "six"}, "whole number"),
        ({"min_parts": 6, "whole_car_conf": "high"}, "need numbers"),
        ({"min_parts": 6, "whole_car_conf": 1.5}, "need 0 <= conf < 1"),
        ({"min_parts": 6, "drop_off_part": "yes"}, "true or false"),
    ],
)
def test_a_bad_stored_rule_is_a_clear_error(record: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WholeCarRule.from_record(record)


VIEW_RULE = WholeCarRule(min_parts=5, max_part_share=0.2, whole_car_conf=0.3, view_probability=0.5)


def test_a_read_view_decides_the_view_in_place_of_the_part_count() -> None:
    # given a rule that reads the gate's view where the photo has one
    # then a photo read as a close-up is one, however many small parts it shows
    assert not is_whole_car_view(WHOLE_CAR, W, H, VIEW_RULE, view_probability=0.2)
    # and a photo read as a whole car is one, however few parts were found on it
    assert is_whole_car_view(CLOSE_UP, W, H, VIEW_RULE, view_probability=0.8)
    assert is_whole_car_view((), W, H, VIEW_RULE, view_probability=0.5)


def test_without_a_read_view_the_part_count_decides() -> None:
    # given the same rule and no view read for the photo (no gate reads one)
    # then the parts decide, as the rule without a view does
    assert is_whole_car_view(WHOLE_CAR, W, H, VIEW_RULE, view_probability=None)
    assert not is_whole_car_view(CLOSE_UP, W, H, VIEW_RULE)
    # and a rule that names no view ignores one that was read
    assert is_whole_car_view(WHOLE_CAR, W, H, RULE, view_probability=0.1)


def test_a_close_up_read_by_its_view_keeps_its_faint_damage() -> None:
    # given many small parts, a faint damage, and a view read as a close-up
    analysis = replace(photo(WHOLE_CAR, damage(0.2)), whole_car_view_probability=0.1)
    # then the whole-car bar does not apply to it
    assert apply_whole_car_rule(analysis, VIEW_RULE) is analysis
    # and read as a whole car, its faint damage goes
    whole = replace(analysis, whole_car_view_probability=0.9)
    assert apply_whole_car_rule(whole, VIEW_RULE).damages == ()


@pytest.mark.parametrize("value", [0.0, 1.0, 1.5, "half", True])
def test_a_view_probability_out_of_range_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match="view_probability"):
        WholeCarRule.from_record({"min_parts": 6, "view_probability": value})
