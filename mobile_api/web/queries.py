"""Read models for the adjuster pages: the review queue and one claim's workspace."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from cdat.assessment import Assessment, Operation, Reason
from cdat.claims import ClaimStatus, RetakeRequest
from cdat.findings import PhotoAnalysis
from cdat.record import decode
from cdat.taxonomy import CarPart
from mobile_api.errors import NotFound, ValidationFailed
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.storage.claim_store import (
    current_assessment,
    photos_changed_since,
    retake_request,
    standing_on,
    versions,
)

COUNTED_STATUSES = (
    ClaimStatus.NEEDS_REVIEW,
    ClaimStatus.MORE_PHOTOS_REQUESTED,
    ClaimStatus.ASSESSED,
    ClaimStatus.APPROVED,
    ClaimStatus.REJECTED,
)


@dataclass(frozen=True)
class QueueFilters:
    status: ClaimStatus = ClaimStatus.NEEDS_REVIEW
    reason: str = ""
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    date_from: date | None = None
    date_to: date | None = None


def _amount(raw: str, name: str) -> Decimal | None:
    if not raw.strip():
        return None
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        raise ValidationFailed(f"{name} must be a number, got {raw!r}", field=name) from None
    if not value.is_finite():  # NaN, sNaN and Infinity: no amount compares with them
        raise ValidationFailed(f"{name} must be a number, got {raw!r}", field=name)
    if value < 0:
        raise ValidationFailed(f"{name} cannot be negative", field=name)
    return value


def _status(raw: str) -> ClaimStatus:
    if not raw.strip():
        return ClaimStatus.NEEDS_REVIEW
    try:
        return ClaimStatus(raw.strip())
    except ValueError:
        raise ValidationFailed(f"no claim status {raw!r}", field="status") from None


def _day(raw: str, name: str) -> date | None:
    if not raw.strip():
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise ValidationFailed(f"{name} must be a date (YYYY-MM-DD)", field=name) from None


def parse_filters(
    reason: str, min_amount: str, max_amount: str, since: str, until: str, status: str = ""
) -> QueueFilters:
    return QueueFilters(
        status=_status(status),
        reason=reason.strip(),
        min_amount=_amount(min_amount, "min_amount"),
        max_amount=_amount(max_amount, "max_amount"),
        date_from=_day(since, "date_from"),
        date_to=_day(until, "date_to"),
    )


def photo_names(photos: list[models.Photo], assessment: Assessment | None) -> dict[str, str]:
    """Photo id -> what the pages call it: "Photo 2", or "a removed photo" for one the
    policyholder took off the claim since the assessment was made."""
    names = {photo.id: f"Photo {i}" for i, photo in enumerate(photos, start=1)}
    assessed = assessment.photos if assessment else ()
    return {p.photo_id: "a removed photo" for p in assessed} | names


@dataclass
class QueueRow:
    claim: models.Claim
    reasons: list[Reason]
    age_hours: float
    photo_names: dict[str, str]
    """For the reasons, which name photos by id."""


@dataclass
class QueueView:
    rows: list[QueueRow]
    status_counts: dict[str, int]
    reason_counts: dict[str, int]
    total_waiting: int
    currency: str = ""
    reasons_known: list[str] = field(default_factory=list)


def review_queue(rt: Runtime, filters: QueueFilters) -> QueueView:
    """Claims in one status (waiting for review unless asked): highest priority first,
    then oldest first."""
    with rt.sessions() as session:
        query = select(models.Claim).where(models.Claim.status == filters.status.value)
        if filters.min_amount is not None:
            query = query.where(models.Claim.estimate_total >= filters.min_amount)
        if filters.max_amount is not None:
            query = query.where(models.Claim.estimate_total <= filters.max_amount)
        if filters.date_from is not None:
            start = datetime.combine(filters.date_from, time.min, UTC)
            query = query.where(models.Claim.created_at >= start)
        if filters.date_to is not None:
            end = datetime.combine(filters.date_to, time.max, UTC)
            query = query.where(models.Claim.created_at <= end)
        query = query.order_by(models.Claim.review_priority.desc(), models.Claim.created_at)
        query = query.options(selectinload(models.Claim.photos))
        claims = session.scalars(query.limit(500)).all()
        now = datetime.now(UTC)
        rows, reason_counts = [], Counter[str]()
        for claim in claims:
            assessment = current_assessment(session, claim)
            triage = assessment.triage if assessment else None
            reasons = list(triage.reasons) if triage else []
            codes = {r.code for r in reasons}
            reason_counts.update(codes)
            if filters.reason and filters.reason not in codes:
                continue
            created = claim.created_at.replace(tzinfo=claim.created_at.tzinfo or UTC)
            age_hours = (now - created).total_seconds() / 3600
            names = photo_names(list(claim.photos), assessment)
            rows.append(QueueRow(claim, reasons, age_hours, names))
        return QueueView(
            rows=rows,
            status_counts=status_counts(session),
            reason_counts=dict(reason_counts.most_common()),
            total_waiting=len(claims),
            currency=rt.settings.currency.upper(),
            reasons_known=sorted(reason_counts),
        )


def status_counts(session: Session) -> dict[str, int]:
    found = dict(
        session.execute(
            select(models.Claim.status, func.count()).group_by(models.Claim.status)
        ).all()
    )
    return {s.value: int(found.get(s.value, 0)) for s in COUNTED_STATUSES}


@dataclass
class ClaimView:
    """One claim's workspace, in domain types: the page reads nothing by key."""

    claim: models.Claim
    photos: list[models.Photo]
    record: models.AssessmentRecord | None
    """The version the claim stands on."""
    versions: list[tuple[models.AssessmentRecord, Assessment]]
    """Every stored version, oldest first, with its assessment."""
    audit: list[models.AuditEvent]
    duplicates: dict[str, list[dict[str, str]]]
    """Photo id -> the other claims' photos it duplicates (claim_id, photo_id)."""
    assessment: Assessment | None = None
    """The version the claim stands on, as the core made it."""
    retake_request: RetakeRequest | None = None
    photos_added: list[str] = field(default_factory=list)
    """Photos on the claim now that the current version did not assess (added, retakes)."""
    photos_removed: list[str] = field(default_factory=list)
    """Photos the current version assessed that the policyholder removed or replaced."""

    def analysis(self, photo_id: str) -> PhotoAnalysis | None:
        photos = self.assessment.photos if self.assessment else ()
        return next((p for p in photos if p.photo_id == photo_id), None)

    @property
    def parts_found(self) -> list[CarPart]:
        """The parts the findings name, whose operation the adjuster may set."""
        findings = self.assessment.findings if self.assessment else ()
        return sorted({f.part for f in findings if f.part}, key=lambda part: part.value)

    @property
    def overrides(self) -> dict[CarPart, Operation]:
        return dict(self.assessment.operation_overrides) if self.assessment else {}

    @property
    def photo_names(self) -> dict[str, str]:
        return photo_names(self.photos, self.assessment)


def claim_view(rt: Runtime, claim_id: str) -> ClaimView:
    with rt.sessions() as session:
        claim = session.get(models.Claim, claim_id)
        if claim is None:
            raise NotFound(f"no claim {claim_id}")
        records = versions(session, claim_id)
        audit = session.scalars(
            select(models.AuditEvent)
            .where(models.AuditEvent.claim_id == claim_id)
            .order_by(models.AuditEvent.created_at.desc(), models.AuditEvent.id.desc())
            .limit(100)
        ).all()
        record = standing_on(claim, records)
        decoded = [(r, decode(r.body)) for r in records]
        assessment = next((a for r, a in decoded if r is record), None)
        added, removed = photos_changed_since(claim, record)
        return ClaimView(
            claim=claim,
            photos=list(claim.photos),
            record=record,
            versions=decoded,
            audit=list(audit),
            duplicates=_duplicates(session, assessment),
            assessment=assessment,
            retake_request=retake_request(claim),
            photos_added=added,
            photos_removed=removed,
        )


def _duplicates(session: Session, assessment: Assessment | None) -> dict[str, list[dict[str, str]]]:
    """Other-claim photos named by duplicate-photo signals that still exist."""
    out: dict[str, list[dict[str, str]]] = {}
    for signal in assessment.fraud_signals if assessment else ():
        other_claim = signal.evidence.get("other_claim_id")
        other_photo = signal.evidence.get("other_photo_id")
        if not (signal.photo_id and other_claim and other_photo):
            continue
        photo = session.get(models.Photo, other_photo)
        if photo is not None and photo.claim_id == other_claim:
            out.setdefault(signal.photo_id, []).append(
                {"claim_id": other_claim, "photo_id": other_photo}
            )
    return out


def photo_of(rt: Runtime, claim_id: str, photo_id: str) -> tuple[str, str]:
    """(sha256, content type) of a photo on a claim; NotFound otherwise."""
    with rt.sessions() as session:
        photo = session.get(models.Photo, photo_id)
        if photo is None or photo.claim_id != claim_id:
            raise NotFound(f"no photo {photo_id} on claim {claim_id}")
        return photo.sha256, photo.content_type
