"""An adjuster's operation for a part replaces what the rules decide, and only there."""

from __future__ import annotations

import pytest

from cdat.assessment import Operation
from cdat.catalog import ClassDecision, VehicleClass
from cdat.estimate import OVERRIDE_RULE_ID, build_estimate, price_part_as
from cdat.pipeline import AssessmentPolicy
from cdat.pricing import Pricing
from cdat.taxonomy import CarPart, DamageType, Severity
from tests.cdat.conftest import finding


def _pricing(policy: AssessmentPolicy) -> Pricing:
    return Pricing(
        policy.catalog, policy.rules, policy.region, ClassDecision(VehicleClass.MIDSIZE, "t")
    )


def test_forcing_repair_of_a_part_the_rules_replace(inr_policy: AssessmentPolicy) -> None:
    # given a severe dent the rules replace the hood for, and a door scratch
    hood = finding(CarPart.HOOD, DamageType.DENT, Severity.SEVERE, coverage=0.6)
    door = finding(CarPart.FRONT_LEFT_DOOR, DamageType.SCRATCH, Severity.MINOR)
    pricing = _pricing(inr_policy)
    by_rules = build_estimate([hood, door], pricing)
    # when the adjuster says the hood is to be repaired and refinished
    chosen = build_estimate([hood, door], pricing, {CarPart.HOOD: Operation.REPAIR_AND_REFINISH})
    # then the hood has one repair line under the override rule, and the door is unchanged
    hood_lines = [line for line in chosen.lines if line.part is CarPart.HOOD]
    assert [(line.operation, line.rule_id) for line in hood_lines] == [
        (Operation.REPAIR_AND_REFINISH, OVERRIDE_RULE_ID)
    ]
    assert hood_lines[0].parts_cost == 0 and hood_lines[0].labour_hours > 0

    def door_lines(estimate):  # type: ignore[no-untyped-def]
        return [line for line in estimate.lines if line.part is CarPart.FRONT_LEFT_DOOR]

    assert door_lines(chosen) == door_lines(by_rules)
    assert chosen.total != by_rules.total
    assert sum(line.total for line in chosen.lines) == chosen.subtotal


def test_forcing_replacement_buys_the_part(inr_policy: AssessmentPolicy) -> None:
    door = finding(CarPart.FRONT_LEFT_DOOR, DamageType.SCRATCH, Severity.MINOR)
    lines = price_part_as(CarPart.FRONT_LEFT_DOOR, [door], Operation.REPLACE, _pricing(inr_policy))
    assert lines[0].operation is Operation.REPLACE and lines[0].rule_id == OVERRIDE_RULE_ID
    assert (
        lines[0].parts_cost
        == inr_policy.catalog.parts[CarPart.FRONT_LEFT_DOOR].prices[VehicleClass.MIDSIZE]
    )


def test_blend_is_not_an_operation_an_adjuster_can_choose(inr_policy: AssessmentPolicy) -> None:
    door = finding(CarPart.FRONT_LEFT_DOOR)
    with pytest.raises(ValueError, match="cannot be chosen"):
        price_part_as(CarPart.FRONT_LEFT_DOOR, [door], Operation.BLEND, _pricing(inr_policy))
