"""Vehicle class rule, vehicle value and the total-loss threshold."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from cdat.assessment import Estimate
from cdat.catalog import VehicleClass, classify_vehicle
from cdat.claims import BodyType, Vehicle
from cdat.total_loss import check_total_loss, vehicle_value

LOSS = date(2025, 3, 1)


def _car(body=BodyType.SEDAN, make="Honda", value: Decimal | None = None, year=2022) -> Vehicle:
    return Vehicle(make, "Model", year, body, None, value)


def _estimate(total: Decimal, currency: str = "INR") -> Estimate:
    zero = Decimal("0.00")
    return Estimate(currency, (), total, zero, total, total, total)


@pytest.mark.parametrize(
    ("vehicle", "expected"),
    [
        (_car(BodyType.SUV, "BMW"), VehicleClass.SUV),
        (_car(BodyType.PICKUP), VehicleClass.PICKUP),
        (_car(make=" bmw "), VehicleClass.PREMIUM),
        (_car(value=Decimal(4_000_000)), VehicleClass.PREMIUM),
        (_car(value=Decimal(400_000)), VehicleClass.ECONOMY),
        (_car(BodyType.HATCHBACK), VehicleClass.ECONOMY),
        (_car(BodyType.SEDAN, value=Decimal(1_000_000)), VehicleClass.MIDSIZE),
    ],
)
def test_vehicle_class_rule(inr_policy, vehicle, expected) -> None:
    decision = classify_vehicle(vehicle, inr_policy.catalog.vehicle_classes)
    assert decision.vehicle_class is expected
    assert decision.reason


def test_stated_value_wins_over_the_table(inr_policy) -> None:
    value, source, _ = vehicle_value(
        _car(value=Decimal(777_000)), VehicleClass.MIDSIZE, LOSS, inr_policy.catalog
    )
    assert (value, source) == (Decimal("777000.00"), "stated")


def test_depreciation_table_by_class_and_age(inr_policy) -> None:
    values = inr_policy.catalog.vehicle_values
    row = values.retained_pct_by_age[VehicleClass.MIDSIZE]
    value, source, how = vehicle_value(
        _car(year=2022), VehicleClass.MIDSIZE, LOSS, inr_policy.catalog
    )
    assert source == "depreciation_table"
    assert value == values.new_price[VehicleClass.MIDSIZE] * row[3] / 100
    assert "age 3" in how
    # ages beyond the table use its last entry
    old, _, _ = vehicle_value(_car(year=1980), VehicleClass.MIDSIZE, LOSS, inr_policy.catalog)
    assert old == values.new_price[VehicleClass.MIDSIZE] * row[-1] / 100


def test_percentage_rule_fires_at_threshold_not_below(inr_policy) -> None:
    car = _car(value=Decimal(400_000))
    pct = inr_policy.catalog.regions["default"].total_loss.threshold_pct
    threshold = Decimal(400_000) * pct / 100
    below = check_total_loss(
        _estimate(threshold - 1), car, VehicleClass.ECONOMY, LOSS, inr_policy.catalog, "default"
    )
    at = check_total_loss(
        _estimate(threshold), car, VehicleClass.ECONOMY, LOSS, inr_policy.catalog, "default"
    )
    assert not below.is_total_loss and at.is_total_loss
    assert at.threshold_amount == threshold
    assert "percentage" in at.threshold_rule and at.value_source == "stated"


def test_formula_rule_counts_salvage(usd_policy) -> None:
    car = _car(value=Decimal(10_000))
    region = "total_loss_formula"
    salvage_pct = usd_policy.catalog.regions[region].total_loss.salvage_pct
    salvage = Decimal(10_000) * salvage_pct / 100
    repair_at = Decimal(10_000) - salvage

    def check(total: Decimal):
        return check_total_loss(
            _estimate(total, "USD"), car, VehicleClass.MIDSIZE, LOSS, usd_policy.catalog, region
        )

    assert check(repair_at).is_total_loss
    assert not check(repair_at - Decimal("0.01")).is_total_loss
    assert check(repair_at).salvage_value == salvage
    assert "formula" in check(repair_at).threshold_rule


def test_explanation_states_the_numbers(inr_policy) -> None:
    car = replace(_car(), market_value=Decimal(500_000))
    result = check_total_loss(
        _estimate(Decimal(100)), car, VehicleClass.MIDSIZE, LOSS, inr_policy.catalog, "default"
    )
    assert "500000.00" in result.explanation and "100" in result.explanation
