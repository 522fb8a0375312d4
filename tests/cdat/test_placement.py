"""The damage placer's rule (cdat/placement.py): its record and which detection places a damage."""

from __future__ import annotations

from typing import Any

import pytest

from cdat.findings import Box
from cdat.placement import PlacementRule, placing_detection


def test_a_rule_round_trips_as_plain_data() -> None:
    rule = PlacementRule(min_iou=0.6)
    assert rule.to_record() == {"min_iou": 0.6}
    assert PlacementRule.from_record(rule.to_record()) == rule


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({}, "min_iou is required"),
        ({"min_iou": 0.5, "max_iou": 0.9}, "unknown field"),
        ({"min_iou": 0.0}, "above 0"),
        ({"min_iou": 1.5}, "at most 1"),
        ({"min_iou": "half"}, "need a number"),
        ({"min_iou": True}, "need a number"),
    ],
)
def test_a_damaged_record_is_refused_by_name(record: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PlacementRule.from_record(record)


def test_the_detection_overlapping_most_places_the_damage() -> None:
    # given a damage and three placer detections: apart, half over it, almost on it
    damage = Box(0, 0, 10, 10)
    placer = [Box(50, 50, 60, 60), Box(0, 0, 10, 20), Box(0, 0, 10, 11)]
    # when the rule asks for an IoU of 0.5, then the closest places it
    assert placing_detection(damage, placer, PlacementRule(0.5)) == 2


def test_a_damage_no_detection_overlaps_enough_is_not_placed() -> None:
    damage = Box(0, 0, 10, 10)
    placer = [Box(0, 0, 10, 20)]  # IoU 0.5
    assert placing_detection(damage, placer, PlacementRule(0.5)) == 0
    assert placing_detection(damage, placer, PlacementRule(0.51)) is None
    assert placing_detection(damage, [], PlacementRule(0.1)) is None
    assert placing_detection(damage, [Box(20, 20, 30, 30)], PlacementRule(0.01)) is None


def test_of_equal_overlaps_the_first_detection_places() -> None:
    damage = Box(0, 0, 10, 10)
    placer = [Box(0, 0, 10, 20), Box(0, -10, 10, 10)]  # both IoU 0.5
    assert placing_detection(damage, placer, PlacementRule(0.5)) == 0
