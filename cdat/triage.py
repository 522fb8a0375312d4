"""Triage: straight-through settlement or adjuster review, with every reason listed.

A claim goes straight through only when no reason below fires; otherwise it needs
review at the highest weight among its reasons (`priorities` in `triage.yaml`). A fraud
signal weighs what `fraud_weights` gives its signal code (`priorities.fraud_signal` when
unlisted): a photo reused from another claim must outrank a photo that merely lost its
capture time in a messaging app, or the queue cannot tell them apart.

Reason codes: ``no_photos``, ``photo_quality`` (any photo has a quality issue),
``no_vehicle`` (no photo shows a vehicle: each was refused as showing none, or unusable),
``no_damage_found``, ``low_confidence`` (a finding less certain than `min_confidence`: its
chance where the damage model's curves read one, else its confidence),
``unpriced_damage`` (damage on no visible part), ``damage_part_mismatch`` (damage of a
type that cannot be on its part: a broken lamp on a bumper), ``over_limit`` (estimate total at or
above the currency's `straight_through_limit`), ``total_loss``, ``near_total_loss``
(the estimate's high end reaches the total-loss threshold), ``replacement_undecided`` (the
rules would replace a part its finding cannot decide on: too unsure, or a share of a part
the photos cut off; or a new part undercuts a repair priced on such a share),
``severity_to_confirm`` (a finding seen only on photos whose severity the close-up stage
read, which under-calls heavy damage from sources it did not learn), ``fraud_signal``.

A finding that names a surer damage again (`PartFinding.named_again`: the same damage under
another type, or on no part outlined again) gives no reason of its own: it is priced, and
doubted, as the surer one, so an adjuster is asked about each damage once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cdat.assessment import Estimate, FraudSignal, Reason, TotalLossCheck, Triage, TriageDecision
from cdat.findings import (
    NO_VEHICLE,
    PartFinding,
    PhotoAnalysis,
    severity_to_confirm,
    stray_on_its_part,
)
from cdat.fraud import SIGNAL_CODES, FraudPolicy
from cdat.taxonomy import CarPart

ADDED_REASONS = {
    NO_VEHICLE: 3,
    "damage_part_mismatch": 2,
    "replacement_undecided": 2,
    "severity_to_confirm": 2,
}
"""Reasons added after policy files were first written, with their shipped weight: an
insurer's own `triage.yaml` that predates a reason still loads and weighs it so."""
REASON_CODES = (
    "no_photos",
    "photo_quality",
    "no_vehicle",
    "no_damage_found",
    "low_confidence",
    "unpriced_damage",
    "damage_part_mismatch",
    "over_limit",
    "total_loss",
    "near_total_loss",
    "replacement_undecided",
    "severity_to_confirm",
    "fraud_signal",
)


class TriagePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1)
    min_confidence: float = Field(ge=0, le=1)
    straight_through_limit: dict[str, Decimal]
    """Per currency: estimates at or above this total always get a human look."""
    review_when_no_damage: bool = True
    priorities: dict[str, int]
    fraud_weights: dict[str, int] = Field(default_factory=dict)
    """Per fraud signal code (cdat.fraud): its weight, instead of `priorities.fraud_signal`."""
    fraud: FraudPolicy = FraudPolicy()

    @model_validator(mode="before")
    @classmethod
    def _added_reasons(cls, raw: Any) -> Any:
        priorities = raw.get("priorities") if isinstance(raw, dict) else None
        if isinstance(priorities, dict):
            raw = {**raw, "priorities": {**ADDED_REASONS, **priorities}}
        return raw

    @model_validator(mode="after")
    def _complete(self) -> TriagePolicy:
        unknown = sorted(set(self.priorities) - set(REASON_CODES))
        if unknown:
            raise ValueError(f"unknown reason codes in priorities: {', '.join(unknown)}")
        missing = [code for code in REASON_CODES if code not in self.priorities]
        if missing:
            raise ValueError(f"priorities missing for: {', '.join(missing)}")
        if any(p < 1 for p in [*self.priorities.values(), *self.fraud_weights.values()]):
            raise ValueError("review priorities must be at least 1 (0 means straight-through)")
        unknown_signals = sorted(set(self.fraud_weights) - set(SIGNAL_CODES))
        if unknown_signals:
            raise ValueError(f"unknown fraud signal codes: {', '.join(unknown_signals)}")
        if any(limit < 0 for limit in self.straight_through_limit.values()):
            raise ValueError("straight_through_limit must not be negative")
        return self


def triage(
    analyses: Sequence[PhotoAnalysis],
    findings: Sequence[PartFinding],
    estimate: Estimate | None,
    total_loss: TotalLossCheck | None,
    signals: Sequence[FraudSignal],
    policy: TriagePolicy,
) -> Triage:
    unweighted = [
        *photo_reasons(analyses),
        *finding_reasons(findings, policy, analyses),
        *money_reasons(estimate, total_loss, policy),
    ]
    reasons = [replace(r, weight=policy.priorities[r.code]) for r in unweighted]
    reasons += [Reason("fraud_signal", s.message, signal_weight(s, policy)) for s in signals]
    if not reasons:
        return Triage(TriageDecision.STRAIGHT_THROUGH, 0, ())
    reasons.sort(key=lambda r: -r.weight)  # stable: equal weights keep their order
    return Triage(TriageDecision.NEEDS_REVIEW, reasons[0].weight, tuple(reasons))


def signal_weight(signal: FraudSignal, policy: TriagePolicy) -> int:
    return policy.fraud_weights.get(signal.code, policy.priorities["fraud_signal"])


def photo_reasons(analyses: Sequence[PhotoAnalysis]) -> list[Reason]:
    if not analyses:
        return [Reason("no_photos", "the claim has no analysed photos")]
    return [
        *vehicle_reasons(analyses),
        *(
            Reason("photo_quality", f"photo {a.photo_id}: {issue.message} ({issue.code})")
            for a in analyses
            for issue in a.quality_issues
        ),
    ]


def vehicle_reasons(analyses: Sequence[PhotoAnalysis]) -> list[Reason]:
    """`no_vehicle` when no photo shows a vehicle: at least one was refused as showing
    none and every other one is unusable. Such a claim is never priced unseen."""
    refused = [a for a in analyses if a.refused_no_vehicle]
    if not refused or any(a.usable for a in analyses if a not in refused):
        return []
    unusable = len(analyses) - len(refused)
    rest = f", {unusable} unusable" if unusable else ""
    return [
        Reason(
            NO_VEHICLE,
            f"no photo shows a vehicle ({len(refused)} of {len(analyses)} refused as showing "
            f"none{rest}): the claim cannot be assessed from them",
        )
    ]


def finding_reasons(
    findings: Sequence[PartFinding], policy: TriagePolicy, analyses: Sequence[PhotoAnalysis] = ()
) -> list[Reason]:
    reasons = []
    if not findings and policy.review_when_no_damage:
        reasons.append(Reason("no_damage_found", no_damage_message(analyses)))
    for f in findings:
        if f.named_again:
            continue  # a surer damage holds it: that one's reasons are its reasons
        what = (
            f"{f.severity.value} {f.damage_type.value} on {f.part.value if f.part else 'no part'}"
        )
        if f.certainty < policy.min_confidence:
            reasons.append(
                Reason(
                    "low_confidence",
                    f"{what}, confidence {f.certainty:.2f}: under the "
                    f"{policy.min_confidence:.2f} a finding needs to pass unreviewed",
                )
            )
        if f.part is None:
            reasons.append(
                Reason(
                    "unpriced_damage",
                    f"{what}: cannot be priced: it lies on a panel no catalog prices "
                    "(pillar, sill, roof), on a fender the photos do not place, or on no "
                    "visible part; choose the part to price it",
                )
            )
        elif stray_on_its_part(f, findings):
            reasons.append(
                Reason(
                    "damage_part_mismatch",
                    f"{what}: a {f.damage_type.value} cannot be on the {f.part.value}; "
                    "not priced beside the damage the part can have: say where it belongs",
                )
            )
        elif f.type_contradicts_part:
            # priced by the catch-all rule meanwhile: a repair of the part it was put on
            reasons.append(
                Reason(
                    "damage_part_mismatch",
                    f"{what}: a {f.damage_type.value} cannot be on the {f.part.value}; the "
                    "part or the damage type is wrong, and its price with it",
                )
            )
        if severity_to_confirm(f, analyses):
            reasons.append(
                Reason(
                    "severity_to_confirm",
                    f"{what}: seen only close up, where the severity read under-calls heavy "
                    "damage; confirm how severe it is, and its price with it",
                )
            )
    return reasons


WHOLE_CAR_SEEN = 0.5
"""A photo the vehicle gate reads as the whole car more likely than not (its view
probability, `PhotoAnalysis.whole_car_view_probability`)."""


def whole_cars_only(analyses: Sequence[PhotoAnalysis]) -> bool:
    """Every usable photo (at least one) is one the gate read as the whole car: what a
    claim with no damage found there lacks is a close-up."""
    usable = [a for a in analyses if a.usable]
    views = [a.whole_car_view_probability for a in usable]
    return bool(usable) and all(v is not None and v >= WHOLE_CAR_SEEN for v in views)


def no_damage_message(analyses: Sequence[PhotoAnalysis]) -> str:
    """Why nothing was found, where the photos say: every usable photo the gate read as the
    whole car is a claim the models barely see small damage in (on damage-severity val, 4 of
    147 labelled regions on whole-car photos were found, none of its 118 scuffs under 0.1%
    of the photo: docs/model-experiments.md), so the adjuster is told to ask for close-ups."""
    if not whole_cars_only(analyses):
        return "no damage was found in the photos"
    usable = [a for a in analyses if a.usable]
    seen = "the one photo is" if len(usable) == 1 else f"all {len(usable)} photos are"
    return (
        f"no damage was found: {seen} of the whole car, and small damage (a scuff, a chip) "
        "is rarely seen from that far; ask for a close-up of any damage"
    )


def money_reasons(
    estimate: Estimate | None, total_loss: TotalLossCheck | None, policy: TriagePolicy
) -> list[Reason]:
    reasons = []
    if estimate is not None:
        limit = policy.straight_through_limit.get(estimate.currency)
        if limit is None or estimate.total >= limit:
            shown = "none set" if limit is None else f"{limit} {estimate.currency}"
            reasons.append(
                Reason(
                    "over_limit",
                    f"estimate {estimate.total} {estimate.currency} is not under the "
                    f"straight-through limit ({shown})",
                )
            )
    undecided: set[CarPart] = set()
    for line in estimate.lines if estimate is not None else ():
        if line.repair_or_replace_undecided and line.part and line.part not in undecided:
            undecided.add(line.part)  # its first line says why; the rest follow it
            reasons.append(
                Reason("replacement_undecided", f"{line.part.value}: {line.description}")
            )
    if total_loss is not None and total_loss.is_total_loss:
        reasons.append(Reason("total_loss", total_loss.explanation))
    elif total_loss and estimate and estimate.high >= total_loss.threshold_amount:
        reasons.append(
            Reason(
                "near_total_loss",
                f"estimate range reaches {estimate.high} {estimate.currency}, at or above "
                f"the total-loss threshold {total_loss.threshold_amount}",
            )
        )
    return reasons
