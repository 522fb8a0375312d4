"""When a damage crop's part family overrules the part masks (cdat/part_family.py)."""

from __future__ import annotations

import math

import pytest

from cdat.part_family import (
    FamilyRule,
    choose_part,
    family_of,
    family_right,
    part_by_type,
    side_in_view,
)
from cdat.taxonomy import CarPart, DamageType, PartFamily, Position, Side

RULE = FamilyRule(0.7)


def sure(family: PartFamily, p: float = 0.9) -> dict[PartFamily, float]:
    """The crop's answer: `family` at probability `p`, the rest on an unlisted panel."""
    if family is PartFamily.UNLISTED_PANEL:
        return {family: p, PartFamily.DOOR: 1.0 - p}
    return {family: p, PartFamily.UNLISTED_PANEL: 1.0 - p}


# --- FamilyRule ---------------------------------------------------------------------------


def test_a_rule_round_trips_through_its_record() -> None:
    # given a rule
    rule = FamilyRule(0.85, 0.2)
    # when it is stored and read back
    record = rule.to_record()
    # then the record names both thresholds, and reading it gives the same rule
    assert record == {"min_probability": 0.85, "max_masks_probability": 0.2}
    assert FamilyRule.from_record(record) == rule


def test_a_record_without_the_masks_limit_reads_as_no_limit() -> None:
    # given a rule stored before `max_masks_probability` existed
    rule = FamilyRule.from_record({"min_probability": 0.7})
    # then the masks' family may have any probability
    assert rule == FamilyRule(0.7, 1.0)


def test_a_record_with_an_unknown_field_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="min_probabilty"):
        FamilyRule.from_record({"min_probability": 0.7, "min_probabilty": 0.8})


def test_a_record_without_min_probability_is_refused() -> None:
    with pytest.raises(ValueError, match="min_probability is required"):
        FamilyRule.from_record({})


@pytest.mark.parametrize("value", [0, 0.0, -0.1, 1.0001, 2, math.nan, math.inf])
def test_a_probability_out_of_range_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match=r"min_probability .*0 < probability <= 1"):
        FamilyRule(value)
    with pytest.raises(ValueError, match=r"max_masks_probability .*0 < probability <= 1"):
        FamilyRule(0.7, value)


@pytest.mark.parametrize("value", [True, "0.7", None])
def test_a_probability_that_is_not_a_number_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match=r"min_probability .*need a number"):
        FamilyRule(value)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"max_masks_probability .*need a number"):
        FamilyRule(0.7, value)  # type: ignore[arg-type]


def test_a_stored_rule_out_of_range_is_refused_when_read() -> None:
    with pytest.raises(ValueError, match="0 < probability <= 1"):
        FamilyRule.from_record({"min_probability": 1.5})


@pytest.mark.parametrize("value", [1, 1.0, 1e-9, 0.5])
def test_probabilities_in_range_are_accepted(value: float) -> None:
    assert FamilyRule(value).min_probability == value
    assert FamilyRule(0.7, value).max_masks_probability == value


# --- family_of ----------------------------------------------------------------------------


def test_no_part_is_an_unlisted_panel_and_a_part_has_its_own_family() -> None:
    assert family_of(None) is PartFamily.UNLISTED_PANEL
    assert family_of(CarPart.TAILGATE) is PartFamily.BOOT
    assert family_of(CarPart.BACK_RIGHT_DOOR) is PartFamily.DOOR
    assert family_of(CarPart.BACK_LEFT_QUARTER_PANEL) is PartFamily.FENDER


def test_a_fenders_damage_is_right_on_a_fender_or_on_no_part_and_nowhere_else() -> None:
    assert family_right(PartFamily.FENDER, CarPart.FRONT_RIGHT_FENDER)
    assert family_right(PartFamily.FENDER, None)
    assert not family_right(PartFamily.FENDER, CarPart.FRONT_RIGHT_DOOR)
    # and a listed part's damage is right only on a part of its family
    assert family_right(PartFamily.DOOR, CarPart.BACK_LEFT_DOOR)
    assert not family_right(PartFamily.DOOR, None)
    assert not family_right(PartFamily.DOOR, CarPart.FRONT_LEFT_FENDER)


# --- choose_part: the masks' part stands ------------------------------------------------


def test_without_probabilities_the_masks_part_stands() -> None:
    assert choose_part(CarPart.FRONT_BUMPER, {}, [CarPart.FRONT_LEFT_DOOR], RULE) is (
        CarPart.FRONT_BUMPER
    )


def test_a_crop_less_sure_than_the_rule_leaves_the_masks_part() -> None:
    # given a crop that says door at 0.69, under a rule of 0.7, and a door nearby
    probabilities = sure(PartFamily.DOOR, 0.69)
    # when the part is chosen, then the bumper the masks gave stands
    got = choose_part(CarPart.FRONT_BUMPER, probabilities, [CarPart.FRONT_LEFT_DOOR], RULE)
    assert got is CarPart.FRONT_BUMPER


def test_a_crop_exactly_at_the_rule_overrules_the_masks() -> None:
    probabilities = sure(PartFamily.DOOR, 0.7)
    got = choose_part(CarPart.FRONT_BUMPER, probabilities, [CarPart.FRONT_LEFT_DOOR], RULE)
    assert got is CarPart.FRONT_LEFT_DOOR


def test_a_crop_agreeing_with_the_masks_family_keeps_the_masks_part_not_the_nearest() -> None:
    # given the masks put the damage on the back left door, and the front left door is
    # nearer in the ranking
    nearby = [CarPart.FRONT_LEFT_DOOR, CarPart.BACK_LEFT_DOOR]
    # when the crop is sure it is a door, then the masks' door stands
    got = choose_part(CarPart.BACK_LEFT_DOOR, sure(PartFamily.DOOR, 0.99), nearby, RULE)
    assert got is CarPart.BACK_LEFT_DOOR


def test_no_part_from_the_masks_and_an_unlisted_panel_from_the_crop_stays_no_part() -> None:
    got = choose_part(None, sure(PartFamily.UNLISTED_PANEL), [CarPart.FRONT_LEFT_DOOR], RULE)
    assert got is None


def test_a_crop_that_still_gives_the_masks_family_too_much_leaves_the_masks_part() -> None:
    # given a rule that needs the crop to contradict the masks: their family at most 0.1
    rule = FamilyRule(0.6, 0.1)
    nearby = [CarPart.FRONT_BUMPER, CarPart.FRONT_LEFT_DOOR]
    # when the crop says door at 0.7 but bumper (the masks' family) at 0.2
    hesitant = {PartFamily.DOOR: 0.7, PartFamily.BUMPER: 0.2, PartFamily.HOOD: 0.1}
    # then the masks' bumper stands
    assert choose_part(CarPart.FRONT_BUMPER, hesitant, nearby, rule) is CarPart.FRONT_BUMPER
    # and when it gives the bumper exactly 0.1, the door is chosen
    firm = {PartFamily.DOOR: 0.7, PartFamily.BUMPER: 0.1, PartFamily.HOOD: 0.2}
    assert choose_part(CarPart.FRONT_BUMPER, firm, nearby, rule) is CarPart.FRONT_LEFT_DOOR


def test_the_masks_limit_on_no_part_weighs_the_unlisted_panel() -> None:
    # given the masks put the damage on no part (an unlisted panel's family)
    rule = FamilyRule(0.6, 0.1)
    probabilities = {PartFamily.DOOR: 0.7, PartFamily.UNLISTED_PANEL: 0.3}
    # then the crop's 0.3 for an unlisted panel is too much to overrule them
    assert choose_part(None, probabilities, [CarPart.FRONT_LEFT_DOOR], rule) is None
    # and a family the crop does not name counts as 0
    assert choose_part(None, {PartFamily.DOOR: 0.7, PartFamily.HOOD: 0.3},
                       [CarPart.FRONT_LEFT_DOOR], rule) is CarPart.FRONT_LEFT_DOOR  # fmt: skip


def test_the_masks_limit_on_no_part_weighs_a_fender_too() -> None:
    # given the masks put the damage on no part, and the crop says door at 0.7, and fender
    # and unlisted panel at 0.06 each: "no part" is all the masks can say of either
    rule = FamilyRule(0.6, 0.1)
    probabilities = {
        PartFamily.DOOR: 0.7,
        PartFamily.FENDER: 0.06,
        PartFamily.UNLISTED_PANEL: 0.06,
        PartFamily.HOOD: 0.18,
    }
    # then their 0.12 together is too much to overrule the masks
    assert choose_part(None, probabilities, [CarPart.FRONT_LEFT_DOOR], rule) is None
    # and at 0.04 each the crop's door stands
    probabilities |= {PartFamily.FENDER: 0.04, PartFamily.UNLISTED_PANEL: 0.04}
    assert choose_part(None, probabilities, [CarPart.FRONT_LEFT_DOOR], rule) is (
        CarPart.FRONT_LEFT_DOOR
    )


def test_the_most_likely_family_decides_whatever_the_order_given() -> None:
    # given door listed first but bumper more likely
    probabilities = {PartFamily.DOOR: 0.2, PartFamily.BUMPER: 0.8}
    nearby = [CarPart.FRONT_LEFT_DOOR, CarPart.BACK_BUMPER]
    # when the masks said a door, then the bumper seen nearby is chosen
    assert choose_part(CarPart.FRONT_LEFT_DOOR, probabilities, nearby, RULE) is (
        CarPart.BACK_BUMPER
    )


# --- choose_part: the crop overrules -------------------------------------------------------


def test_an_unlisted_panel_takes_the_damage_off_the_masks_part() -> None:
    got = choose_part(CarPart.FRONT_BUMPER, sure(PartFamily.UNLISTED_PANEL), [], RULE)
    assert got is None


def test_the_nearest_seen_part_of_the_crops_family_is_chosen() -> None:
    # given the parts nearest first: the bumper, then two doors
    nearby = [CarPart.FRONT_BUMPER, CarPart.BACK_RIGHT_DOOR, CarPart.FRONT_LEFT_DOOR]
    # when the crop says door, then the first door in the ranking is chosen
    got = choose_part(CarPart.FRONT_BUMPER, sure(PartFamily.DOOR), nearby, RULE)
    assert got is CarPart.BACK_RIGHT_DOOR


def test_a_damage_on_no_part_goes_to_the_seen_part_of_the_crops_family() -> None:
    nearby = [CarPart.HOOD, CarPart.FRONT_RIGHT_LIGHT]
    assert choose_part(None, sure(PartFamily.LIGHT), nearby, RULE) is CarPart.FRONT_RIGHT_LIGHT


def test_a_seen_tailgate_is_preferred_to_placing_a_trunk() -> None:
    nearby = [CarPart.BACK_BUMPER, CarPart.TAILGATE]
    got = choose_part(CarPart.BACK_BUMPER, sure(PartFamily.BOOT), nearby, RULE)
    assert got is CarPart.TAILGATE


# --- choose_part: placed by hints ----------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "part"), [(PartFamily.HOOD, CarPart.HOOD), (PartFamily.BOOT, CarPart.TRUNK)]
)
def test_a_family_of_one_part_is_placed_without_any_hint(family: PartFamily, part: CarPart) -> None:
    assert choose_part(None, sure(family), [], RULE) is part
    assert choose_part(CarPart.WHEEL, sure(family), [CarPart.LEFT_MIRROR], RULE) is part


@pytest.mark.parametrize(
    ("family", "assigned", "nearby", "part"),
    [
        # the masks' own part is the first hint: the hood is at the front
        (PartFamily.BUMPER, CarPart.HOOD, [], CarPart.FRONT_BUMPER),
        # a middle part says no end; the next hint does
        (
            PartFamily.BUMPER,
            CarPart.WHEEL,
            [CarPart.BACK_LEFT_DOOR, CarPart.FRONT_RIGHT_LIGHT],
            CarPart.BACK_BUMPER,
        ),
        (PartFamily.GLASS, CarPart.TRUNK, [], CarPart.BACK_GLASS),
        # the masks' part is a nearer hint than any ranked part
        (
            PartFamily.BUMPER,
            CarPart.BACK_LEFT_DOOR,
            [CarPart.FRONT_RIGHT_LIGHT],
            CarPart.BACK_BUMPER,
        ),
        (
            PartFamily.GLASS,
            None,
            [CarPart.LEFT_MIRROR, CarPart.FRONT_LEFT_LIGHT],
            CarPart.FRONT_GLASS,
        ),
    ],
)
def test_bumper_and_glass_are_placed_at_the_end_of_the_car_the_hints_point_to(
    family: PartFamily, assigned: CarPart | None, nearby: list[CarPart], part: CarPart
) -> None:
    assert choose_part(assigned, sure(family), nearby, RULE) is part


@pytest.mark.parametrize(
    ("family", "assigned", "nearby", "part"),
    [
        # end from the bumper, side from the mirror
        (PartFamily.DOOR, CarPart.FRONT_BUMPER, [CarPart.RIGHT_MIRROR], CarPart.FRONT_RIGHT_DOOR),
        (PartFamily.LIGHT, CarPart.BACK_BUMPER, [CarPart.LEFT_MIRROR], CarPart.BACK_LEFT_LIGHT),
        # end and side from one part
        (PartFamily.LIGHT, CarPart.BACK_RIGHT_DOOR, [], CarPart.BACK_RIGHT_LIGHT),
        (PartFamily.DOOR, None, [CarPart.FRONT_LEFT_LIGHT], CarPart.FRONT_LEFT_DOOR),
    ],
)
def test_doors_and_lights_are_placed_by_end_and_side(
    family: PartFamily, assigned: CarPart | None, nearby: list[CarPart], part: CarPart
) -> None:
    assert choose_part(assigned, sure(family), nearby, RULE) is part


@pytest.mark.parametrize(
    ("assigned", "nearby", "part"),
    [
        # masks on the front door: its end and side
        (CarPart.FRONT_LEFT_DOOR, [], CarPart.FRONT_LEFT_FENDER),
        # masks on no part, beside a rear lamp: the rear quarter panel of its side
        (None, [CarPart.BACK_RIGHT_LIGHT], CarPart.BACK_RIGHT_QUARTER_PANEL),
        # end from the bumper, side from the mirror
        (CarPart.FRONT_BUMPER, [CarPart.RIGHT_MIRROR], CarPart.FRONT_RIGHT_FENDER),
    ],
)
def test_a_fender_is_placed_by_end_and_side(
    assigned: CarPart | None, nearby: list[CarPart], part: CarPart
) -> None:
    assert choose_part(assigned, sure(PartFamily.FENDER), nearby, RULE) is part


def test_a_fender_on_no_part_is_placed_under_a_rule_that_needs_the_masks_contradicted() -> None:
    # given the served kind of rule: the crop must give the masks' answer at most 0.1
    rule = FamilyRule(0.3, 0.1)
    # when the masks put a damage on no part and the crop says fender at 0.9 (so "no part",
    # which a fender is to the masks, at 0.9 too): the crop agrees and names the panel
    got = choose_part(None, sure(PartFamily.FENDER), [CarPart.FRONT_RIGHT_DOOR], rule)
    # then it goes on the fender the door points to
    assert got is CarPart.FRONT_RIGHT_FENDER
    # and an unlisted panel the crop names stays on no part
    assert choose_part(None, sure(PartFamily.UNLISTED_PANEL), [CarPart.HOOD], rule) is None


@pytest.mark.parametrize(
    ("assigned", "nearby"),
    [
        # no side among the hints
        (CarPart.FRONT_BUMPER, [CarPart.HOOD]),
        # no end among the hints
        (CarPart.WHEEL, [CarPart.LEFT_MIRROR]),
    ],
)
def test_a_fender_that_cannot_be_placed_goes_to_no_part_not_its_neighbour(
    assigned: CarPart | None, nearby: list[CarPart]
) -> None:
    assert choose_part(assigned, sure(PartFamily.FENDER, 0.99), nearby, RULE) is None


def test_a_mirror_is_placed_by_side_alone() -> None:
    assert choose_part(CarPart.BACK_RIGHT_DOOR, sure(PartFamily.MIRROR), [], RULE) is (
        CarPart.RIGHT_MIRROR
    )
    assert choose_part(None, sure(PartFamily.MIRROR), [CarPart.FRONT_LEFT_DOOR], RULE) is (
        CarPart.LEFT_MIRROR
    )


@pytest.mark.parametrize(
    ("family", "assigned", "nearby"),
    [
        # a door with no side among the hints
        (PartFamily.DOOR, CarPart.FRONT_BUMPER, [CarPart.HOOD, CarPart.BACK_GLASS]),
        # a light with no end among the hints
        (PartFamily.LIGHT, CarPart.WHEEL, [CarPart.LEFT_MIRROR]),
        # a bumper with no end among the hints
        (PartFamily.BUMPER, CarPart.WHEEL, [CarPart.RIGHT_MIRROR]),
        # a mirror with no side among the hints
        (PartFamily.MIRROR, CarPart.HOOD, [CarPart.FRONT_BUMPER]),
        # a wheel is never placed unseen
        (PartFamily.WHEEL, CarPart.FRONT_LEFT_DOOR, [CarPart.FRONT_BUMPER]),
        # no hints at all, and no part from the masks
        (PartFamily.DOOR, None, []),
    ],
)
def test_a_family_that_cannot_be_placed_leaves_the_masks_part(
    family: PartFamily, assigned: CarPart | None, nearby: list[CarPart]
) -> None:
    assert choose_part(assigned, sure(family, 0.99), nearby, RULE) is assigned


# --- part_by_type ----------------------------------------------------------------------------


def test_a_broken_lamp_on_no_part_goes_on_the_nearest_lamp_seen() -> None:
    # given a broken lamp the masks put on no part, with a bumper and two lamps seen near it
    near = [CarPart.FRONT_BUMPER, CarPart.FRONT_RIGHT_LIGHT, CarPart.FRONT_LEFT_LIGHT]
    # when its type places it, then it is on the nearest lamp, not the nearer bumper
    assert part_by_type(DamageType.LAMP_BROKEN, None, near) is CarPart.FRONT_RIGHT_LIGHT


def test_a_broken_lamp_with_no_lamp_seen_is_placed_by_the_end_and_side_of_the_parts() -> None:
    # given a close-up whose part model saw only the front bumper's right end of the car
    near = [CarPart.FRONT_BUMPER, CarPart.RIGHT_MIRROR]
    assert part_by_type(DamageType.LAMP_BROKEN, None, near) is CarPart.FRONT_RIGHT_LIGHT
    # and with parts that name no side, it stays on no part for the adjuster
    assert part_by_type(DamageType.LAMP_BROKEN, None, [CarPart.FRONT_BUMPER]) is None
    assert part_by_type(DamageType.LAMP_BROKEN, None, []) is None


def test_shattered_glass_goes_on_glass_or_a_lamps_lens_and_a_flat_tyre_on_the_wheel() -> None:
    assert part_by_type(DamageType.GLASS_SHATTER, None, [CarPart.HOOD, CarPart.FRONT_GLASS]) is (
        CarPart.FRONT_GLASS
    )
    assert part_by_type(DamageType.GLASS_SHATTER, None, [CarPart.BACK_LEFT_LIGHT]) is (
        CarPart.BACK_LEFT_LIGHT
    )
    assert part_by_type(DamageType.GLASS_SHATTER, None, [CarPart.TRUNK]) is CarPart.BACK_GLASS
    assert part_by_type(DamageType.TIRE_FLAT, None, [CarPart.FRONT_LEFT_DOOR]) is CarPart.WHEEL


def test_a_damage_already_on_a_part_keeps_it_whatever_its_type() -> None:
    # a broken lamp the masks put on the bumper is triage's to question, not moved here
    near = [CarPart.FRONT_LEFT_LIGHT]
    assert part_by_type(DamageType.LAMP_BROKEN, CarPart.FRONT_BUMPER, near) is (
        CarPart.FRONT_BUMPER
    )


@pytest.mark.parametrize("kind", [DamageType.DENT, DamageType.SCRATCH, DamageType.BROKEN_PART])
def test_a_type_that_names_no_part_leaves_a_damage_on_no_part(kind: DamageType) -> None:
    # a dent off every part may be on a fender: its type says nothing of where
    assert part_by_type(kind, None, [CarPart.FRONT_LEFT_LIGHT, CarPart.HOOD]) is None


# --- side_in_view ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("end", "left_in_photo", "side"),
    [
        (Position.FRONT, True, Side.RIGHT),  # facing the front, the car's right is on our left
        (Position.FRONT, False, Side.LEFT),
        (Position.REAR, True, Side.LEFT),  # from behind, the car's left is on our left
        (Position.REAR, False, Side.RIGHT),
    ],
)
def test_the_side_of_the_car_follows_which_end_is_in_view(
    end: Position, left_in_photo: bool, side: Side
) -> None:
    assert side_in_view(end, left_in_photo) is side


def test_beside_a_part_in_the_middle_of_the_car_no_side_is_seen() -> None:
    assert side_in_view(Position.MIDDLE, True) is None


def test_a_seen_side_places_a_lamp_only_where_the_parts_names_give_none() -> None:
    # given a broken lamp on no part beside the front bumper alone, seen on the car's left
    assert part_by_type(DamageType.LAMP_BROKEN, None, [CarPart.FRONT_BUMPER], Side.LEFT) is (
        CarPart.FRONT_LEFT_LIGHT
    )
    # and a side in a part's name (a right mirror) outranks the side seen
    near = [CarPart.FRONT_BUMPER, CarPart.RIGHT_MIRROR]
    assert part_by_type(DamageType.LAMP_BROKEN, None, near, Side.LEFT) is CarPart.FRONT_RIGHT_LIGHT


def test_the_crops_door_is_placed_by_the_side_seen_when_the_parts_name_none() -> None:
    # given a crop sure of a door where the masks put the damage on the rear bumper
    sure_door = {PartFamily.DOOR: 0.9, PartFamily.BUMPER: 0.05}
    near = [CarPart.BACK_BUMPER, CarPart.TRUNK]
    rule = FamilyRule(0.5, 0.1)
    # then without a side it stays on the bumper; seen on the car's right, the rear right door
    assert choose_part(CarPart.BACK_BUMPER, sure_door, near, rule) is CarPart.BACK_BUMPER
    assert choose_part(CarPart.BACK_BUMPER, sure_door, near, rule, Side.RIGHT) is (
        CarPart.BACK_RIGHT_DOOR
    )
