"""Claim facts that are possible but unusual enough for a person to look at.

Impossible facts (a loss in the future, a model year after next year, a loss before the
model year existed) are refused when the claim is opened. These are priced, but never
straight through:

* ``loss_reported_late``: reported more than `report_max_days_after_loss` days after the
  loss (late notice is a classic claims red flag, and evidence is harder to check);
* ``vehicle_unusually_old``: older than `vehicle_max_age_years` at the loss date, where the
  catalog's current part prices may not apply.
"""

from __future__ import annotations

from cdat.assessment import FraudSignal
from cdat.claims import ClaimContext


def plausibility_signals(
    context: ClaimContext, *, report_max_days: int, vehicle_max_age_years: int
) -> list[FraudSignal]:
    signals = []
    loss = context.loss_date.isoformat()
    if context.reported_on is not None:
        late = (context.reported_on - context.loss_date).days
        if late > report_max_days:
            signals.append(
                FraudSignal(
                    "loss_reported_late",
                    f"the loss was reported {late} days after it happened",
                    None,
                    {
                        "loss_date": loss,
                        "reported_on": context.reported_on.isoformat(),
                        "max_days": str(report_max_days),
                    },
                )
            )
    age = context.loss_date.year - context.vehicle.year
    if age > vehicle_max_age_years:
        signals.append(
            FraudSignal(
                "vehicle_unusually_old",
                f"the vehicle was {age} years old at the loss; catalog prices may not apply",
                None,
                {"model_year": str(context.vehicle.year), "max_age": str(vehicle_max_age_years)},
            )
        )
    return signals
