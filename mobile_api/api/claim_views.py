"""A claim as each audience sees it.

Staff (`claim_public`) see everything: the stored reasons, fraud evidence naming other
claims, who decided. A policyholder (`policyholder_claim`) sees their own claim in plain
words: no other claim's id, no fraud rule or threshold, no staff identity, no location
data from their photos, and no amount while an adjuster still decides it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from cdat.assessment import Assessment
from cdat.claims import ClaimStatus
from cdat.findings import PhotoAnalysis, severity_to_confirm
from cdat.record import decode
from cdat.triage import whole_cars_only
from mobile_api.api import assessment_schemas, schemas
from mobile_api.api.serialize import assessment_public, job_public, photo_public
from mobile_api.claims.privacy import without_location
from mobile_api.errors import NotFound
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.storage.claim_store import latest_job, retake_request, standing_on, versions

Outcome = Literal["estimate", "under_review", "total_loss", "superseded"]
PROGRESS_MESSAGES = {
    ClaimStatus.RECEIVED: "Claim opened. Upload photos, then submit.",
    ClaimStatus.QUEUED: "Waiting for an assessor.",
    ClaimStatus.ASSESSING: "Assessing your photos.",
    ClaimStatus.ASSESSED: "Assessment ready.",
    ClaimStatus.NEEDS_REVIEW: "Assessment ready; an adjuster will review it.",
    ClaimStatus.MORE_PHOTOS_REQUESTED: "Please take the photos the adjuster asked for.",
    ClaimStatus.APPROVED: "Claim approved.",
    ClaimStatus.REJECTED: "Claim rejected.",
    ClaimStatus.FAILED: "The assessment could not be completed; you can submit again.",
}
PLAIN_REASONS = {
    "no_photos": "None of the photos could be assessed.",
    "photo_quality": "Some photos are not clear enough: see the hints on each photo.",
    "no_damage_found": "No damage was found in the photos; an adjuster will take a look.",
    "low_confidence": "Some of the damage needs a closer look by an adjuster.",
    "unpriced_damage": "Some of the damage could not be matched to a part of the car.",
    "damage_part_mismatch": "Some of the damage needs an adjuster to confirm which part it is on.",
    "over_limit": "The estimate is above the amount we settle without an adjuster.",
    "total_loss": "The repair may cost more than the car is worth.",
    "near_total_loss": "The repair cost may come close to what the car is worth.",
    "replacement_undecided": "An adjuster decides whether a damaged part is repaired or replaced.",
    "severity_to_confirm": "An adjuster confirms how severe the damage seen only close up is.",
    "fraud_signal": "Our routine checks on the photos need an adjuster's look.",
    "no_vehicle": "None of the photos shows the vehicle; an adjuster will take a look.",
}
CLOSE_UP_WANTED = (
    "No damage was found in these photos of the whole car: small damage such as a scuff or a "
    "chip is rarely seen from that far. Add a close-up of each damaged area and send the claim "
    "again; an adjuster will take a look meanwhile."
)
"""`no_damage_found` where every usable photo shows the whole car (`whole_cars_only`)."""
UNDER_REVIEW = "An adjuster is reviewing the assessment; the amount is shown once they decide."
TOTAL_LOSS = "The repair may cost more than the car is worth: an adjuster will contact you."
SUPERSEDED = "An earlier assessment, kept for the record."
LOOK = "An adjuster will take a look."
SHOWS_AMOUNT = frozenset({ClaimStatus.ASSESSED, ClaimStatus.APPROVED})


def _claim(session: Session, claim_id: str) -> models.Claim:
    claim = session.get(models.Claim, claim_id)
    if claim is None:
        raise NotFound(f"no claim {claim_id}")
    return claim


def claim_revision(rt: Runtime, claim_id: str) -> int:
    if "\x00" in claim_id:  # no claim id holds one, and PostgreSQL cannot even compare it
        raise NotFound(f"no claim {claim_id!r}")
    with rt.sessions() as session:
        revision = session.scalar(select(models.Claim.revision).where(models.Claim.id == claim_id))
    if revision is None:
        raise NotFound(f"no claim {claim_id}")
    return revision


def _load(
    session: Session, claim_id: str
) -> tuple[
    models.Claim, list[models.AssessmentRecord], models.Job | None, models.AssessmentRecord | None
]:
    """The claim, all its versions, its latest job and the version it stands on."""
    claim = _claim(session, claim_id)
    records = versions(session, claim_id)
    return claim, records, latest_job(session, claim_id), standing_on(claim, records)


def _location(claim: models.Claim) -> schemas.LocationIn | None:
    if claim.loss_latitude is None or claim.loss_longitude is None:
        return None
    return schemas.LocationIn(latitude=claim.loss_latitude, longitude=claim.loss_longitude)


def _summaries(records: list[models.AssessmentRecord]) -> list[schemas.AssessmentSummary]:
    return [
        schemas.AssessmentSummary(version=r.version, job_id=r.job_id, created_at=r.created_at)
        for r in records
    ]


def _retake(claim: models.Claim) -> assessment_schemas.RetakeRequestPublic | None:
    asked = retake_request(claim)
    shown = assessment_schemas.RetakeRequestPublic
    return shown.model_validate(asked, from_attributes=True) if asked else None


def _filed(
    claim: models.Claim, records: list[models.AssessmentRecord], photos: list[schemas.PhotoPublic]
) -> dict[str, Any]:
    """The fields every view shares (`schemas.ClaimBase`)."""
    return {
        "id": claim.id,
        "status": ClaimStatus(claim.status),
        "revision": claim.revision,
        "policy_number": claim.policy_number,
        "loss_date": claim.loss_date,
        "description": claim.description,
        "vehicle": claim.vehicle,
        "contact": claim.contact,
        "loss_location": _location(claim),
        "webhook_url": claim.webhook_url,
        "photos": photos,
        "assessment_versions": _summaries(records),
        "retake_request": _retake(claim),
        "created_at": claim.created_at,
        "updated_at": claim.updated_at,
    }


def claim_public(rt: Runtime, claim_id: str) -> schemas.ClaimPublic:
    """The staff view."""
    with rt.sessions() as session:
        claim, records, job, current = _load(session, claim_id)
        status = ClaimStatus(claim.status)
        return schemas.ClaimPublic(
            **_filed(claim, records, [photo_public(p) for p in claim.photos]),
            status_reason=claim.status_reason,
            current_version=claim.current_version,
            progress=schemas.Progress(
                stage=status,
                message=PROGRESS_MESSAGES[status],
                photos=len(claim.photos),
                job=job_public(job) if job else None,
            ),
            assessment=assessment_public(current) if current else None,
        )


def assessment_version(
    rt: Runtime, claim_id: str, version: int
) -> assessment_schemas.AssessmentPublic:
    with rt.sessions() as session:
        return assessment_public(_record(session, claim_id, version))


def _record(session: Session, claim_id: str, version: int) -> models.AssessmentRecord:
    record = session.scalar(
        select(models.AssessmentRecord).where(
            models.AssessmentRecord.claim_id == claim_id,
            models.AssessmentRecord.version == version,
        )
    )
    if record is None:
        raise NotFound(f"claim has no assessment version {version}")
    return record


def policyholder_claim(rt: Runtime, claim_id: str) -> schemas.PolicyholderClaim:
    with rt.sessions() as session:
        claim, records, job, current = _load(session, claim_id)
        status = ClaimStatus(claim.status)
        return schemas.PolicyholderClaim(
            **_filed(claim, records, [policyholder_photo(p) for p in claim.photos]),
            status_reason=_plain_status(claim),
            progress=schemas.PolicyholderProgress(
                stage=status,
                message=PROGRESS_MESSAGES[status],
                photos=len(claim.photos),
                job=_job(job),
            ),
            assessment=_for_policyholder(claim, current) if current else None,
        )


def policyholder_assessment(
    rt: Runtime, claim_id: str, version: int
) -> schemas.PolicyholderAssessment:
    with rt.sessions() as session:
        return _for_policyholder(_claim(session, claim_id), _record(session, claim_id, version))


def policyholder_photo(photo: models.Photo) -> schemas.PhotoPublic:
    return photo_public(photo).model_copy(update={"exif": without_location(photo.exif)})


def _job(job: models.Job | None) -> schemas.PolicyholderJob | None:
    if job is None:
        return None
    return schemas.PolicyholderJob(
        id=job.id, state=job.state, created_at=job.created_at, finished_at=job.finished_at
    )


def _plain_status(claim: models.Claim) -> str:
    """The adjuster wrote rejection reasons and retake requests for the policyholder;
    every other stored reason is for staff (rule output, who decided, errors)."""
    status = ClaimStatus(claim.status)
    if status is ClaimStatus.REJECTED and claim.status_reason:
        return claim.status_reason
    asked = retake_request(claim)
    if status is ClaimStatus.MORE_PHOTOS_REQUESTED and asked:
        return asked.message or PROGRESS_MESSAGES[status]
    return PROGRESS_MESSAGES[status]


def _for_policyholder(
    claim: models.Claim, record: models.AssessmentRecord
) -> schemas.PolicyholderAssessment:
    assessment = decode(record.body)
    outcome, message = _outcome(claim, record.version, assessment)
    estimate = assessment.estimate
    reasons = [] if assessment.triage is None else assessment.triage.reasons
    codes = [r.code for r in reasons]
    close_up = outcome != "superseded" and close_up_wanted(codes, assessment.photos)
    return schemas.PolicyholderAssessment(
        version=record.version,
        job_id=record.job_id,
        created_at=record.created_at,
        photo_ids=record.photo_ids,
        outcome=outcome,
        message=message,
        estimate=(
            schemas.PolicyholderEstimate(
                currency=estimate.currency,
                total=estimate.total,
                low=estimate.low,
                high=estimate.high,
                lines=[
                    schemas.PolicyholderEstimateLine(
                        part=line.part.value if line.part else None,
                        operation=line.operation.value,
                        description=line.description,
                        total=line.total,
                    )
                    for line in estimate.lines
                ],
            )
            if estimate is not None and outcome == "estimate"
            else None
        ),
        reasons=list(dict.fromkeys(plain_reason(r.code, close_up) for r in reasons)),
        close_up_wanted=close_up,
        findings=[
            schemas.PolicyholderFinding(
                part=f.part.value if f.part else None,
                damage_type=f.damage_type.value,
                severity=f.severity.value,
                to_confirm=f.type_contradicts_part,
                severity_to_confirm=severity_to_confirm(f, assessment.photos),
            )
            for f in assessment.findings
            # One damage is one finding to the policyholder; the adjuster sees its other names.
            if not f.named_again
        ],
        photos=[
            schemas.PolicyholderPhoto(
                photo_id=p.photo_id,
                usable=p.usable,
                retake_hints=[q.retake_hint for q in p.quality_issues if q.retake_hint],
            )
            for p in assessment.photos
        ],
    )


def close_up_wanted(codes: Sequence[str], photos: Sequence[PhotoAnalysis]) -> bool:
    """No damage was found, and every usable photo shows the whole car: a close-up is what
    the claim lacks (`cdat.triage.whole_cars_only`)."""
    return "no_damage_found" in codes and whole_cars_only(photos)


def plain_reason(code: str, close_up: bool = False) -> str:
    """A triage reason in the policyholder's words (`close_up`: `close_up_wanted`)."""
    if code == "no_damage_found" and close_up:
        return CLOSE_UP_WANTED
    return PLAIN_REASONS.get(code, LOOK)


def _outcome(claim: models.Claim, version: int, assessment: Assessment) -> tuple[Outcome, str]:
    if version != claim.current_version:
        return "superseded", SUPERSEDED
    if assessment.total_loss is not None and assessment.total_loss.is_total_loss:
        return "total_loss", TOTAL_LOSS
    estimate = assessment.estimate
    if ClaimStatus(claim.status) in SHOWS_AMOUNT and estimate is not None and estimate.total > 0:
        return "estimate", "The estimate below is the amount for the repair."
    return "under_review", UNDER_REVIEW
