"""The public shape of an assessment: what the API and the workspace read of one."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field


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


class PhotoAssessmentPublic(BaseModel):
    photo_id: str
    width: int
    height: int
    usable: bool
    reviewed: bool = False
    quality_issues: list[QualityIssuePublic]
    damages: list[DamagePublic]
    parts: list[PartSeenPublic]


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


class EstimatePublic(BaseModel):
    currency: str
    lines: list[EstimateLinePublic]
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    low: Decimal
    high: Decimal
    catalog_version: str


class TotalLossPublic(BaseModel):
    vehicle_value: Decimal
    value_source: str
    threshold_rule: str
    is_total_loss: bool
    explanation: str


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
