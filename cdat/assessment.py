"""A claim assessment: findings, estimate, total-loss check, triage and fraud evidence.

These are the domain types; the API has its own schema family that mirrors them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum

from cdat.findings import PartFinding, PhotoAnalysis
from cdat.taxonomy import CarPart


class Operation(str, Enum):
    REPAIR = "repair"
    REPLACE = "replace"
    REFINISH = "refinish"
    REPAIR_AND_REFINISH = "repair_and_refinish"
    REMOVE_AND_INSTALL = "remove_and_install"
    BLEND = "blend"


@dataclass(frozen=True)
class EstimateLine:
    part: CarPart | None
    operation: Operation
    rule_id: str
    description: str
    parts_cost: Decimal
    labour_hours: Decimal
    labour_rate: Decimal
    labour_cost: Decimal
    paint_cost: Decimal
    total: Decimal
    labour_kind: str = ""
    """Trade the labour hours are billed at: body, paint or mechanical."""
    paint_hours: Decimal = Decimal(0)
    paint_rate: Decimal = Decimal(0)
    paint_materials: Decimal = Decimal(0)
    """paint_cost = paint_hours x paint_rate + paint_materials."""
    confidence: float = 1.0
    """Confidence of the finding behind the line; drives the estimate range."""
    repair_or_replace_undecided: bool = False
    """Whether the part is repaired or replaced is an adjuster's to decide, and the line's
    description says why: the rules would replace it but its finding cannot decide that
    (priced as this repair), or a new part is priced because it costs less than a repair
    whose share of the part the photos cut off and may overstate."""


@dataclass(frozen=True)
class Estimate:
    currency: str
    lines: tuple[EstimateLine, ...]
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    low: Decimal
    high: Decimal
    catalog_version: str = ""
    rules_version: str = ""
    region: str = ""
    vehicle_class: str = ""
    vehicle_class_reason: str = ""
    parts_subtotal: Decimal = Decimal(0)
    labour_subtotal: Decimal = Decimal(0)
    paint_subtotal: Decimal = Decimal(0)
    """parts + labour + paint subtotals add up to `subtotal`; tax is on top."""


@dataclass(frozen=True)
class TotalLossCheck:
    vehicle_value: Decimal
    value_source: str
    """'stated' when the policyholder gave it, 'depreciation_table' when estimated."""
    threshold_rule: str
    is_total_loss: bool
    explanation: str
    repair_cost: Decimal = Decimal(0)
    threshold_amount: Decimal = Decimal(0)
    """Repair cost at or above which the vehicle is a total loss."""
    salvage_value: Decimal | None = None
    currency: str = ""


class TriageDecision(str, Enum):
    STRAIGHT_THROUGH = "straight_through"
    NEEDS_REVIEW = "needs_review"


@dataclass(frozen=True)
class Reason:
    code: str
    message: str
    weight: int = 0
    """How urgent this reason makes a review (`priorities` in triage.yaml); 0 is none."""


@dataclass(frozen=True)
class ReasonGroup:
    """One code's reasons on a claim, shown together: a claim of close-ups can carry a
    reason per finding, and a dozen alike lines or chips hide the claim's other reasons."""

    code: str
    weight: int
    """The heaviest of them."""
    reasons: tuple[Reason, ...]

    @property
    def shared_explanation(self) -> str | None:
        """What every one of two or more reasons says after naming its finding ("moderate
        dent on hood: seen only close up, ..."): said once, the findings listed under it.
        None where one reason stands alone or any says something of its own."""
        if len(self.reasons) < 2:
            return None
        tails = {_explanation(r.message) for r in self.reasons}
        if len(tails) != 1:
            return None
        return tails.pop()

    @property
    def items(self) -> tuple[str, ...]:
        """Each reason's line under the group: only what it names where the explanation is
        shared, else its whole message."""
        if self.shared_explanation is None:
            return tuple(r.message for r in self.reasons)
        return tuple(r.message.split(": ", 1)[0] for r in self.reasons)


def _explanation(message: str) -> str | None:
    head, colon, tail = message.partition(": ")
    return tail if colon and head and tail else None


def grouped_reasons(reasons: Sequence[Reason]) -> list[ReasonGroup]:
    """Reasons by code, in the order each code first appears."""
    by_code: dict[str, list[Reason]] = {}
    for reason in reasons:
        by_code.setdefault(reason.code, []).append(reason)
    return [
        ReasonGroup(code, max(r.weight for r in same), tuple(same))
        for code, same in by_code.items()
    ]


@dataclass(frozen=True)
class Triage:
    decision: TriageDecision
    priority: int
    """0 is routine; higher numbers are reviewed first."""
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class FraudSignal:
    code: str
    message: str
    photo_id: str | None
    evidence: dict[str, str]


@dataclass(frozen=True)
class Assessment:
    photos: tuple[PhotoAnalysis, ...]
    findings: tuple[PartFinding, ...]
    model_versions: dict[str, str]
    estimate: Estimate | None = None
    total_loss: TotalLossCheck | None = None
    triage: Triage | None = None
    fraud_signals: tuple[FraudSignal, ...] = ()
    operation_overrides: dict[CarPart, Operation] = field(default_factory=dict)
    """An adjuster's operation for a part, priced instead of what the rules say."""
