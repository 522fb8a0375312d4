"""What one claim's estimate is priced with (`Pricing`), and how one priced line is made
(`LineMaker`): money rounded to the currency's minor unit per component, hours to hundredths."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from cdat.assessment import EstimateLine, Operation
from cdat.catalog import Catalog, ClassDecision, LabourKind, Region
from cdat.claims import BodyType
from cdat.rules import RuleBook
from cdat.taxonomy import CarPart

ZERO = Decimal(0)
HOURS = Decimal("0.01")


@dataclass(frozen=True)
class Pricing:
    """Everything an estimate is priced with, fixed for one claim."""

    catalog: Catalog
    rules: RuleBook
    region_name: str
    vehicle: ClassDecision
    body_type: BodyType | None = None
    """Which rear lid the car has (`cdat.claims.boot_lid`); None blends into either."""

    @property
    def region(self) -> Region:
        return self.catalog.regions[self.region_name]


@dataclass(frozen=True)
class LineMaker:
    pricing: Pricing
    confidence: float
    part: CarPart
    rule_id: str

    def make(
        self,
        op: Operation,
        description: str,
        *,
        parts_cost: Decimal = ZERO,
        hours: Decimal = ZERO,
        labour: LabourKind = LabourKind.BODY,
        paint_hours: Decimal = ZERO,
    ) -> EstimateLine:
        region, money = self.pricing.region, self.pricing.catalog.money
        hours = hours.quantize(HOURS, rounding=ROUND_HALF_UP)
        paint_hours = paint_hours.quantize(HOURS, rounding=ROUND_HALF_UP)
        rate = region.labour_rates[labour]
        paint_rate = region.labour_rates[LabourKind.PAINT]
        materials = money(paint_hours * region.paint_materials_per_hour)
        labour_cost = money(hours * rate)
        paint_cost = money(paint_hours * paint_rate) + materials
        return EstimateLine(
            part=self.part,
            operation=op,
            rule_id=self.rule_id,
            description=description,
            parts_cost=money(parts_cost),
            labour_hours=hours,
            labour_rate=rate,
            labour_cost=labour_cost,
            paint_cost=paint_cost,
            total=money(parts_cost) + labour_cost + paint_cost,
            labour_kind=labour.value if hours > 0 else "",
            paint_hours=paint_hours,
            paint_rate=paint_rate if paint_hours > 0 else ZERO,
            paint_materials=materials,
            confidence=self.confidence,
        )
