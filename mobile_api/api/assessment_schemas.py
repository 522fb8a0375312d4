"""The public shape of an assessment: what the API and the workspace read of one."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from cdat.assessment import (
    Assessment,
    Estimate,
    EstimateLine,
    FraudSignal,
    Reason,
    TotalLossCheck,
    Triage,
)
from cdat.findings import (
    Box,
    DamageInstance,
    Evidence,
    PartFinding,
    PartInstance,
    PhotoAnalysis,
    QualityIssue,
)


class BoxPublic(BaseModel):
    x1: float
    y1: float
    x2: float
    y2: float


class QualityIssuePublic(BaseModel):
    code: str
    message: str
    retake_hint: str
    blocking: bool


class DamagePublic(BaseModel):
    damage_type: str
    severity: str
    confidence: float
    box: BoxPublic
    polygon: list[tuple[float, float]]
    part: str | None
    part_coverage: float
    review: str = Field(
        default="", description="'' (model), 'confirmed', 'edited' or 'added' by an adjuster"
    )


class PartSeenPublic(BaseModel):
    part: str
    confidence: float
    box: BoxPublic
    polygon: list[tuple[float, float]] = []


class PhotoAssessmentPublic(BaseModel):
    photo_id: str
    width: int
    height: int
    usable: bool
    reviewed: bool = False
    quality_issues: list[QualityIssuePublic]
    damages: list[DamagePublic]
    parts: list[PartSeenPublic]
    vehicle_probability: float | None = None
    """The vehicle gate's belief that the photo shows a vehicle (None: no gate ran)."""


class EvidencePublic(BaseModel):
    photo_id: str
    confidence: float
    damage_index: int


class FindingPublic(BaseModel):
    part: str | None
    damage_type: str
    severity: str
    confidence: float
    part_coverage: float
    evidence: list[EvidencePublic]


class EstimateLinePublic(BaseModel):
    part: str | None
    operation: str
    rule_id: str
    description: str
    parts_cost: Decimal
    labour_hours: Decimal
    labour_rate: Decimal
    labour_cost: Decimal
    paint_cost: Decimal
    total: Decimal
    labour_kind: str = Field(default="", description="body, paint or mechanical")
    paint_hours: Decimal = Decimal(0)
    paint_rate: Decimal = Decimal(0)
    paint_materials: Decimal = Field(
        default=Decimal(0), description="paint_cost = paint_hours x paint_rate + this"
    )
    confidence: float = Field(
        default=1.0, description="of the finding behind the line; drives the estimate range"
    )


class EstimatePublic(BaseModel):
    currency: str
    lines: list[EstimateLinePublic]
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    low: Decimal
    high: Decimal
    catalog_version: str
    rules_version: str = ""
    region: str = ""
    vehicle_class: str = ""
    vehicle_class_reason: str = ""
    parts_subtotal: Decimal = Decimal(0)
    labour_subtotal: Decimal = Decimal(0)
    paint_subtotal: Decimal = Decimal(0)


class TotalLossPublic(BaseModel):
    vehicle_value: Decimal
    value_source: str
    threshold_rule: str
    is_total_loss: bool
    explanation: str
    repair_cost: Decimal = Decimal(0)
    threshold_amount: Decimal = Decimal(0)
    salvage_value: Decimal | None = None
    currency: str = ""


class ReasonPublic(BaseModel):
    code: str
    message: str
    weight: int = Field(default=0, description="How urgent a review this reason asks for")


class TriagePublic(BaseModel):
    decision: str
    priority: int
    reasons: list[ReasonPublic]


class FraudSignalPublic(BaseModel):
    code: str
    message: str
    photo_id: str | None
    evidence: dict[str, str]


class AssessmentPublic(BaseModel):
    version: int
    job_id: str | None
    source: str = Field(
        default="model", description="'model' (assessment job) or 'adjuster' (reviewed version)"
    )
    created_at: datetime
    photo_ids: list[str]
    model_versions: dict[str, str]
    photos: list[PhotoAssessmentPublic]
    findings: list[FindingPublic]
    estimate: EstimatePublic | None
    total_loss: TotalLossPublic | None
    triage: TriagePublic | None
    fraud_signals: list[FraudSignalPublic]
    operation_overrides: dict[str, str] = {}


PUBLIC_VIEWS: dict[type, tuple[type[BaseModel], dict[str, str]]] = {
    Assessment: (AssessmentPublic, {}),
    PhotoAnalysis: (
        PhotoAssessmentPublic,
        {
            "perceptual_hash": "fraud evidence: it would let a client probe the reuse check",
            "timings_ms": "operations data, in the metrics and logs",
        },
    ),
    DamageInstance: (DamagePublic, {}),
    Box: (BoxPublic, {}),
    PartInstance: (PartSeenPublic, {}),
    QualityIssue: (QualityIssuePublic, {}),
    PartFinding: (FindingPublic, {}),
    Evidence: (EvidencePublic, {}),
    Estimate: (EstimatePublic, {}),
    EstimateLine: (EstimateLinePublic, {}),
    TotalLossCheck: (TotalLossPublic, {}),
    Triage: (TriagePublic, {}),
    Reason: (ReasonPublic, {}),
    FraudSignal: (FraudSignalPublic, {}),
}
"""Each domain type of a stored assessment, the schema that shows it, and the fields it
leaves out with the reason (tests/api/test_public_schemas.py holds every field to it)."""
