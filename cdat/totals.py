"""An estimate's totals: tax per component (parts, labour, paint) at the region's rates, and
the range around the total, from each line's confidence (`rules.estimate_range`)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING

from cdat.assessment import Estimate, EstimateLine
from cdat.rules import RuleBook

if TYPE_CHECKING:
    from cdat.pricing import Pricing

ZERO = Decimal(0)


def totals(lines: Sequence[EstimateLine], pricing: Pricing) -> Estimate:
    catalog, tax_rates = pricing.catalog, pricing.region.tax
    zero = catalog.money(ZERO)
    parts = sum((line.parts_cost for line in lines), zero)
    labour = sum((line.labour_cost for line in lines), zero)
    paint = sum((line.paint_cost for line in lines), zero)
    tax = sum(
        (
            catalog.money(amount * pct / 100)
            for amount, pct in (
                (parts, tax_rates.parts_pct),
                (labour, tax_rates.labour_pct),
                (paint, tax_rates.paint_pct),
            )
        ),
        zero,
    )
    subtotal = parts + labour + paint
    total = subtotal + tax
    spread = relative_spread(lines, pricing.rules, subtotal)
    unit = Decimal(1).scaleb(-catalog.minor_unit)
    return Estimate(
        currency=catalog.currency,
        lines=tuple(lines),
        subtotal=subtotal,
        tax=tax,
        total=total,
        low=(total * (1 - spread)).quantize(unit, rounding=ROUND_FLOOR),
        high=(total * (1 + spread)).quantize(unit, rounding=ROUND_CEILING),
        catalog_version=catalog.version,
        rules_version=pricing.rules.version,
        region=pricing.region_name,
        vehicle_class=pricing.vehicle.vehicle_class.value,
        vehicle_class_reason=pricing.vehicle.reason,
        parts_subtotal=parts,
        labour_subtotal=labour,
        paint_subtotal=paint,
    )


def relative_spread(lines: Sequence[EstimateLine], rules: RuleBook, subtotal: Decimal) -> Decimal:
    """Cost-weighted range half-width: a line's share widens as its confidence falls."""
    if subtotal <= 0:
        return ZERO
    policy = rules.estimate_range
    weighted = ZERO
    for line in lines:
        missing = Decimal(str(round(1.0 - min(max(line.confidence, 0.0), 1.0), 4)))
        pct = min(policy.base_pct + policy.per_missing_confidence_pct * missing, policy.max_pct)
        weighted += line.total * pct / 100
    return weighted / subtotal
