"""The claim row under concurrency: its lock, its status changes, its assessment versions.

Every write to a claim starts with `lock_claim`, and every status change goes through
`transition`. Both are single UPDATE statements, because that is the one lock both
databases honour: PostgreSQL locks the row, and SQLite, whose driver starts a write
transaction only at the first write (SELECT ... FOR UPDATE is a no-op there), takes
its database write lock, so concurrent uploads, submits and decisions run one after
another instead of all passing the same check.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from cdat.assessment import Assessment, FraudSignal, TriageDecision
from cdat.claims import (
    BodyType,
    ClaimContext,
    ClaimStatus,
    GeoPoint,
    RetakeRequest,
    Vehicle,
    check_transition,
    photo_meta,
    sources_of,
)
from cdat.errors import InvalidTransition
from cdat.record import decode, encode
from mobile_api.errors import NotFound
from mobile_api.storage import models

_NO_SYNC: dict[str, Any] = {"synchronize_session": False}


def lock_claim(session: Session, claim_id: str) -> models.Claim:
    """The claim, write-locked until this transaction ends; NotFound if there is none."""
    locked = session.execute(
        update(models.Claim)
        .where(models.Claim.id == claim_id)
        .values(revision=models.Claim.revision)
        .execution_options(**_NO_SYNC)
    )
    if not locked.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"no claim {claim_id}")
    return session.get_one(models.Claim, claim_id, populate_existing=True)


def transition(session: Session, claim: models.Claim, target: ClaimStatus, reason: str) -> None:
    """Move the claim to `target` if the state machine allows it from where it is now.

    A compare-and-set: the check and the write are one statement, so it holds even for a
    caller that did not lock the claim first. InvalidTransition otherwise.
    """
    if not try_transition(session, claim, target, reason):
        check_transition(ClaimStatus(claim.status), target)
        raise InvalidTransition(f"a claim that is {claim.status} cannot become {target.value}")


def try_transition(session: Session, claim: models.Claim, target: ClaimStatus, reason: str) -> bool:
    moved = session.execute(
        update(models.Claim)
        .where(models.Claim.id == claim.id)
        .where(models.Claim.status.in_([s.value for s in sources_of(target)]))
        .values(
            status=target.value,
            status_reason=reason,
            revision=models.Claim.revision + 1,
            updated_at=models.utcnow(),
        )
        .execution_options(**_NO_SYNC)
    ).rowcount  # type: ignore[attr-defined]
    session.refresh(claim, ["status", "status_reason", "revision", "updated_at"])
    return bool(moved)


_LATEST_FIRST = (models.Job.created_at.desc(), models.Job.id.desc())


def latest_job_id(session: Session, claim_id: str) -> str | None:
    query = select(models.Job.id).where(models.Job.claim_id == claim_id)
    return session.scalar(query.order_by(*_LATEST_FIRST).limit(1))


def latest_job(session: Session, claim_id: str) -> models.Job | None:
    """The claim's most recent job: the one that may still move the claim."""
    query = select(models.Job).where(models.Job.claim_id == claim_id)
    return session.scalar(query.order_by(*_LATEST_FIRST).limit(1))


def current_record(session: Session, claim: models.Claim) -> models.AssessmentRecord | None:
    """The version the claim stands on (see `Claim.current_version`)."""
    if claim.current_version is None:
        return None
    return session.scalar(
        select(models.AssessmentRecord).where(
            models.AssessmentRecord.claim_id == claim.id,
            models.AssessmentRecord.version == claim.current_version,
        )
    )


def versions(session: Session, claim_id: str) -> list[models.AssessmentRecord]:
    """Every stored version of the claim's assessment, oldest first."""
    return list(
        session.scalars(
            select(models.AssessmentRecord)
            .where(models.AssessmentRecord.claim_id == claim_id)
            .order_by(models.AssessmentRecord.version)
        )
    )


def standing_on(
    claim: models.Claim, records: Sequence[models.AssessmentRecord]
) -> models.AssessmentRecord | None:
    """Of the claim's versions, the one it stands on."""
    return next((r for r in records if r.version == claim.current_version), None)


def current_assessment(session: Session, claim: models.Claim) -> Assessment | None:
    record = current_record(session, claim)
    return decode(record.body) if record else None


FRAUD_CLEARED = "fraud.cleared"


def photos_changed_since(
    claim: models.Claim, record: models.AssessmentRecord | None
) -> tuple[list[str], list[str]]:
    """(added, removed): photo ids on the claim now that `record` did not assess, and ones
    it assessed that the policyholder has since removed or replaced."""
    if record is None:
        return [], []
    assessed = set(record.photo_ids)
    present = [photo.id for photo in claim.photos]
    added = [pid for pid in present if pid not in assessed]
    removed = [pid for pid in record.photo_ids if pid not in set(present)]
    return added, removed


def fraud_history(session: Session, claim_id: str) -> list[tuple[int, tuple[FraudSignal, ...]]]:
    """(version, fraud signals) of the claim's stored versions that an adjuster has not
    cleared (`FRAUD_CLEARED` audit events record up to which version), oldest first."""
    cleared = session.scalars(
        select(models.AuditEvent.after)
        .where(models.AuditEvent.claim_id == claim_id)
        .where(models.AuditEvent.action == FRAUD_CLEARED)
    ).all()
    through = max((int((after or {}).get("through_version", 0)) for after in cleared), default=0)
    records = session.execute(
        select(models.AssessmentRecord.version, models.AssessmentRecord.body)
        .where(models.AssessmentRecord.claim_id == claim_id)
        .where(models.AssessmentRecord.version > through)
        .order_by(models.AssessmentRecord.version)
    ).all()
    return [(version, decode(body).fraud_signals) for version, body in records]


def add_version(
    session: Session,
    claim: models.Claim,
    assessment: Assessment,
    photo_ids: Sequence[str],
    *,
    job_id: str | None = None,
    author: str | None = None,
) -> int:
    """Store `assessment` as the claim's next version; returns its number."""
    latest = session.scalar(
        select(func.max(models.AssessmentRecord.version)).where(
            models.AssessmentRecord.claim_id == claim.id
        )
    )
    version = (latest or 0) + 1
    session.add(
        models.AssessmentRecord(
            claim_id=claim.id,
            version=version,
            job_id=job_id,
            photo_ids=list(photo_ids),
            body=encode(assessment),
            source="adjuster" if author else "model",
            author=author,
        )
    )
    return version


def stand_on(claim: models.Claim, version: int, assessment: Assessment) -> None:
    """Make `version` the claim's current one: its priority, total and reasons for staff."""
    triage = assessment.triage
    claim.current_version = version
    claim.review_priority = triage.priority if triage else 0
    claim.estimate_total = assessment.estimate.total if assessment.estimate else None
    claim.status_reason = (
        "; ".join(r.message for r in triage.reasons) if triage else "no triage policy ran"
    )
    claim.touch()


def retake_request(claim: models.Claim) -> RetakeRequest | None:
    """The adjuster's open request for new photos, if the claim carries one."""
    return RetakeRequest.from_json(claim.retake_request) if claim.retake_request else None


def status_after(assessment: Assessment) -> ClaimStatus:
    triage = assessment.triage
    if triage is None or triage.decision is TriageDecision.NEEDS_REVIEW:
        return ClaimStatus.NEEDS_REVIEW
    return ClaimStatus.ASSESSED


def vehicle_from_json(raw: dict[str, Any]) -> Vehicle:
    value = raw.get("market_value")
    return Vehicle(
        make=raw["make"],
        model=raw["model"],
        year=int(raw["year"]),
        body_type=BodyType(raw["body_type"]),
        vin=raw.get("vin"),
        market_value=Decimal(str(value)) if value is not None else None,
    )


def claim_context(session: Session, claim: models.Claim, photo_ids: Sequence[str]) -> ClaimContext:
    """What the rules need to know about the claim and those of its photos still stored."""
    rows = session.scalars(select(models.Photo).where(models.Photo.id.in_(photo_ids))).all()
    by_id = {row.id: row for row in rows}
    location = (
        GeoPoint(claim.loss_latitude, claim.loss_longitude)
        if claim.loss_latitude is not None and claim.loss_longitude is not None
        else None
    )
    return ClaimContext(
        claim_id=claim.id,
        vehicle=vehicle_from_json(claim.vehicle),
        loss_date=claim.loss_date,
        loss_location=location,
        photos=tuple(
            photo_meta(p.id, p.sha256, p.exif) for pid in photo_ids if (p := by_id.get(pid))
        ),
        reported_on=claim.created_at.date(),
    )
