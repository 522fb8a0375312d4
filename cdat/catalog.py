"""Price catalog: parts prices, labour rates, paint, tax and vehicle values.

One YAML file per currency (`catalogs/<CURRENCY>.yaml`, schema `Catalog`); an
insurer ships its own in `settings.catalog_dir`. See `cdat/data/CATALOG.md`.

Vehicle class rule (first match wins, thresholds from the catalog):

1. the body type has a fixed class in `vehicle_classes.by_body_type` (SUV -> suv,
   pickup -> pickup, van -> suv): body shape drives panel size and price most;
2. the make is in `vehicle_classes.premium_makes` -> premium;
3. a stated market value of at least `premium_value_from` -> premium;
4. a stated market value below `economy_value_below` -> economy;
5. the body type's default in `vehicle_classes.default_by_body_type` (hatchback ->
   economy), else `vehicle_classes.default`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum
from itertools import pairwise
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, field_validator

from cdat.claims import BodyType, Vehicle
from cdat.taxonomy import CarPart

Money = Decimal


class VehicleClass(str, Enum):
    ECONOMY = "economy"
    MIDSIZE = "midsize"
    PREMIUM = "premium"
    SUV = "suv"
    PICKUP = "pickup"


class LabourKind(str, Enum):
    BODY = "body"
    PAINT = "paint"
    MECHANICAL = "mechanical"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PartEntry(_Strict):
    prices: dict[VehicleClass, Decimal] = Field(description="new part price per vehicle class")
    remove_install_hours: Decimal = Field(ge=0)
    refinish_hours: Decimal = Field(ge=0, description="paint hours to refinish the whole part")
    labour: LabourKind = LabourKind.BODY
    """Trade that removes and installs the part."""

    @field_validator("prices")
    @classmethod
    def _every_class_priced(
        cls, prices: dict[VehicleClass, Decimal]
    ) -> dict[VehicleClass, Decimal]:
        missing = [c.value for c in VehicleClass if c not in prices]
        if missing:
            raise ValueError(f"prices missing for vehicle classes: {', '.join(missing)}")
        if any(price < 0 for price in prices.values()):
            raise ValueError("prices must not be negative")
        return prices


class TaxRates(_Strict):
    parts_pct: Decimal = Field(ge=0, le=100)
    labour_pct: Decimal = Field(ge=0, le=100)
    paint_pct: Decimal = Field(ge=0, le=100)


class PercentageThreshold(_Strict):
    method: Literal["percentage"]
    threshold_pct: Decimal = Field(gt=0, le=200)
    """Total loss when the repair estimate reaches this share of the vehicle value."""


class FormulaThreshold(_Strict):
    method: Literal["formula"]
    salvage_pct: Decimal = Field(ge=0, le=100)
    """Salvage value as a share of the vehicle value; total loss when repair + salvage >= value."""


TotalLossRule = PercentageThreshold | FormulaThreshold


class Region(_Strict):
    """A pricing region, which is also the jurisdiction for the total-loss rule."""

    parts_price_factor: Decimal = Field(default=Decimal(1), gt=0)
    labour_rates: dict[LabourKind, Decimal]
    paint_materials_per_hour: Decimal = Field(ge=0)
    tax: TaxRates
    total_loss: TotalLossRule = Field(discriminator="method")

    @field_validator("labour_rates")
    @classmethod
    def _every_trade_priced(cls, rates: dict[LabourKind, Decimal]) -> dict[LabourKind, Decimal]:
        missing = [k.value for k in LabourKind if k not in rates]
        if missing:
            raise ValueError(f"labour_rates missing: {', '.join(missing)}")
        if any(rate < 0 for rate in rates.values()):
            raise ValueError("labour rates must not be negative")
        return rates


class VehicleClassRule(_Strict):
    by_body_type: dict[BodyType, VehicleClass] = {}
    premium_makes: list[str] = []
    premium_value_from: Decimal | None = Field(default=None, gt=0)
    economy_value_below: Decimal | None = Field(default=None, gt=0)
    default_by_body_type: dict[BodyType, VehicleClass] = {}
    default: VehicleClass = VehicleClass.MIDSIZE


class VehicleValues(_Strict):
    """Actual cash value when none is stated: new price x share retained at that age."""

    new_price: dict[VehicleClass, Decimal]
    retained_pct_by_age: dict[VehicleClass, list[Decimal]]
    """Index = whole years since the model year; ages past the list use its last entry."""

    @field_validator("new_price")
    @classmethod
    def _every_class_valued(cls, table: dict[VehicleClass, Decimal]) -> dict[VehicleClass, Decimal]:
        _require_every_class(table)
        if any(price <= 0 for price in table.values()):
            raise ValueError("new prices must be positive")
        return table

    @field_validator("retained_pct_by_age")
    @classmethod
    def _tables_fall_with_age(
        cls, table: dict[VehicleClass, list[Decimal]]
    ) -> dict[VehicleClass, list[Decimal]]:
        _require_every_class(table)
        for klass, row in table.items():
            if not row or any(not 0 < pct <= 100 for pct in row):
                raise ValueError(f"{klass.value}: need values in (0, 100]")
            if any(later > earlier for earlier, later in pairwise(row)):
                raise ValueError(f"{klass.value}: must not rise with age")
        return table


def _require_every_class(table: Mapping[VehicleClass, object]) -> None:
    missing = [c.value for c in VehicleClass if c not in table]
    if missing:
        raise ValueError(f"missing vehicle classes: {', '.join(missing)}")


class Catalog(_Strict):
    version: str = Field(min_length=1)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    minor_unit: NonNegativeInt = Field(le=4)
    """Decimal places of the currency's minor unit (2 for paise and cents)."""
    vehicle_classes: VehicleClassRule
    parts: dict[CarPart, PartEntry]
    regions: dict[str, Region]
    vehicle_values: VehicleValues

    @field_validator("parts")
    @classmethod
    def _every_part_listed(cls, parts: dict[CarPart, PartEntry]) -> dict[CarPart, PartEntry]:
        missing = [p.value for p in CarPart if p not in parts]
        if missing:
            raise ValueError(f"parts missing from the catalog: {', '.join(missing)}")
        return parts

    @field_validator("regions")
    @classmethod
    def _some_region(cls, regions: dict[str, Region]) -> dict[str, Region]:
        if not regions:
            raise ValueError("at least one region is required")
        return regions

    def money(self, amount: Decimal) -> Decimal:
        """Round to the currency's minor unit (half up, as invoices do)."""
        return amount.quantize(Decimal(1).scaleb(-self.minor_unit), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class ClassDecision:
    vehicle_class: VehicleClass
    reason: str


def classify_vehicle(vehicle: Vehicle, rule: VehicleClassRule) -> ClassDecision:
    """The vehicle's price class, with the step of the documented rule that chose it."""
    if vehicle.body_type in rule.by_body_type:
        klass = rule.by_body_type[vehicle.body_type]
        return ClassDecision(klass, f"body type {vehicle.body_type.value}")
    makes = {make.strip().lower() for make in rule.premium_makes}
    if vehicle.make.strip().lower() in makes:
        return ClassDecision(VehicleClass.PREMIUM, f"premium make {vehicle.make}")
    value = vehicle.market_value
    premium_from, economy_below = rule.premium_value_from, rule.economy_value_below
    if value is not None and premium_from is not None and value >= premium_from:
        return ClassDecision(VehicleClass.PREMIUM, f"market value {value} >= premium floor")
    if value is not None and economy_below is not None and value < economy_below:
        return ClassDecision(VehicleClass.ECONOMY, f"market value {value} < economy ceiling")
    if vehicle.body_type in rule.default_by_body_type:
        klass = rule.default_by_body_type[vehicle.body_type]
        return ClassDecision(klass, f"default for body type {vehicle.body_type.value}")
    return ClassDecision(rule.default, "catalog default class")
