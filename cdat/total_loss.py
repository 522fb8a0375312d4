"""Total-loss check: is repairing the vehicle worth it?

Vehicle value (actual cash value): the stated `Vehicle.market_value` when given,
else the catalog's new price for the vehicle class times the share retained at
the vehicle's age (`vehicle_values.retained_pct_by_age`, whole years from the
model year to the loss date; ages past the table use its last entry).

The rule is the region's (jurisdiction's) `total_loss` entry in the catalog:

* ``percentage``: total loss when repair cost >= threshold_pct % of value;
* ``formula``: total loss when repair cost + salvage value >= value, with salvage
  value = salvage_pct % of value (the "total-loss formula" states use).

Repair cost is the estimate total, tax included: that is what the insurer would pay.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from cdat.assessment import Estimate, TotalLossCheck
from cdat.catalog import Catalog, FormulaThreshold, VehicleClass
from cdat.claims import Vehicle


def vehicle_value(
    vehicle: Vehicle, vehicle_class: VehicleClass, loss_date: date, catalog: Catalog
) -> tuple[Decimal, str, str]:
    """(value, source, how it was found)."""
    if vehicle.market_value is not None:
        value = catalog.money(vehicle.market_value)
        return value, "stated", f"stated market value {value} {catalog.currency}"
    values = catalog.vehicle_values
    age = max(0, loss_date.year - vehicle.year)
    row = values.retained_pct_by_age[vehicle_class]
    retained = row[min(age, len(row) - 1)]
    new_price = values.new_price[vehicle_class]
    value = catalog.money(new_price * retained / 100)
    how = (
        f"{vehicle_class.value} new price {new_price} {catalog.currency} x {retained}% "
        f"retained at age {age}"
    )
    return value, "depreciation_table", how


def check_total_loss(
    estimate: Estimate,
    vehicle: Vehicle,
    vehicle_class: VehicleClass,
    loss_date: date,
    catalog: Catalog,
    region_name: str,
) -> TotalLossCheck:
    value, source, how = vehicle_value(vehicle, vehicle_class, loss_date, catalog)
    rule = catalog.regions[region_name].total_loss
    money, cur = catalog.money, catalog.currency
    salvage: Decimal | None = None
    if isinstance(rule, FormulaThreshold):
        salvage = money(value * rule.salvage_pct / 100)
        threshold = value - salvage
        rule_text = (
            f"{region_name}: formula, repair + salvage ({rule.salvage_pct}% of value) >= value"
        )
    else:
        threshold = money(value * rule.threshold_pct / 100)
        rule_text = f"{region_name}: percentage, repair >= {rule.threshold_pct}% of value"
    is_total = value <= 0 or estimate.total >= threshold
    verdict = "is" if is_total else "is not"
    explanation = (
        f"repair {estimate.total} {cur} vs threshold {threshold} {cur} "
        f"(value {value} {cur}, {how}): the vehicle {verdict} a total loss"
    )
    return TotalLossCheck(
        vehicle_value=value,
        value_source=source,
        threshold_rule=rule_text,
        is_total_loss=is_total,
        explanation=explanation,
        repair_cost=estimate.total,
        threshold_amount=threshold,
        salvage_value=salvage,
        currency=cur,
    )
