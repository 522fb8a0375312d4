"""Claim operations behind the policyholder and adjuster APIs.

Routes parse and authorise; this module owns the transactions. Every write
either commits whole or leaves stored data as it was.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cdat.claims import ClaimStatus, can_submit
from mobile_api import jobs, models, schemas
from mobile_api.auth import (
    CLAIM_TOKEN_PREFIX,
    STAFF_TOKEN_PREFIX,
    Principal,
    Role,
    hash_token,
    new_id,
    new_token,
)
from mobile_api.db import transaction
from mobile_api.errors import (
    Conflict,
    Forbidden,
    IdempotencyMismatch,
    NotFound,
    TooManyPhotos,
    Unauthenticated,
)
from mobile_api.images import CheckedPhoto
from mobile_api.runtime import Runtime
from mobile_api.serialize import assessment_public, job_public, photo_public
from mobile_api.webhooks import check_destination

Outcome = tuple[int, dict[str, Any]]


def fingerprint(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def idempotent(
    rt: Runtime, scope: str, key: str | None, request_fp: str, action: Callable[[Session], Outcome]
) -> Outcome:
    """Run `action` once per (scope, key); a retry with the same key replays the first answer."""
    if key is None:
        with transaction(rt.sessions) as session:
            return action(session)
    try:
        with transaction(rt.sessions) as session:
            stored = session.get(models.IdempotencyRecord, (scope, key))
            if stored is None:
                status, body = action(session)
                session.add(
                    models.IdempotencyRecord(
                        scope=scope,
                        key=key,
                        fingerprint=request_fp,
                        status_code=status,
                        response=body,
                    )
                )
                return status, body
    except IntegrityError:  # a concurrent retry with the same key committed first
        with rt.sessions() as session:
            stored = session.get_one(models.IdempotencyRecord, (scope, key))
    if stored.fingerprint != request_fp:
        raise IdempotencyMismatch(
            "this Idempotency-Key was already used with a different request",
            field="Idempotency-Key",
        )
    return stored.status_code, stored.response


def create_claim(rt: Runtime, body: schemas.ClaimCreate, key: str | None) -> Outcome:
    webhook_url = str(body.webhook_url) if body.webhook_url else None
    if webhook_url:
        check_destination(
            webhook_url,
            allow_private=rt.settings.webhooks_may_reach_private,
            allowed_hosts=rt.settings.webhook_allowed_hosts,
        )

    def action(session: Session) -> Outcome:
        token = new_token(CLAIM_TOKEN_PREFIX)
        claim = models.Claim(
            id=new_id(),
            token_hash=hash_token(token),
            policy_number=body.policy_number,
            loss_date=body.loss_date,
            description=body.description,
            loss_latitude=body.loss_location.latitude if body.loss_location else None,
            loss_longitude=body.loss_location.longitude if body.loss_location else None,
            vehicle=body.vehicle.model_dump(mode="json"),
            contact=body.contact.model_dump(mode="json"),
            status=ClaimStatus.RECEIVED.value,
            webhook_url=webhook_url,
            webhook_secret=secrets.token_urlsafe(32) if webhook_url else None,
        )
        session.add(claim)
        created = schemas.ClaimCreated(
            id=claim.id,
            status=ClaimStatus.RECEIVED,
            access_token=token,
            webhook_secret=claim.webhook_secret,
        )
        return 201, created.model_dump(mode="json")

    return idempotent(rt, "claims.create", key, fingerprint(body.model_dump(mode="json")), action)


def authenticate(rt: Runtime, token: str | None) -> Principal:
    if not token:
        raise Unauthenticated("missing bearer token")
    digest = hash_token(token)
    with rt.sessions() as session:
        if token.startswith(CLAIM_TOKEN_PREFIX):
            claim_id = session.scalar(
                select(models.Claim.id).where(models.Claim.token_hash == digest)
            )
            if claim_id:
                return Principal(Role.POLICYHOLDER, claim_id)
        elif token.startswith(STAFF_TOKEN_PREFIX):
            row = session.execute(
                select(models.User.id, models.User.role, models.User.email)
                .join(models.ApiToken, models.ApiToken.user_id == models.User.id)
                .where(models.ApiToken.token_hash == digest, ~models.ApiToken.revoked)
                .where(models.User.active)
            ).first()
            if row:
                return Principal(Role(row.role), row.id, row.email)
    raise Unauthenticated("invalid or revoked token")


def authorize_claim(principal: Principal, claim_id: str) -> None:
    """A claim token opens only its own claim; the answer never says whether others exist."""
    if principal.is_staff or principal.subject == claim_id:
        return
    raise Forbidden("this token does not grant access to that claim")


def _claim(session: Session, claim_id: str, *, lock: bool = False) -> models.Claim:
    claim = session.get(models.Claim, claim_id, with_for_update=lock)
    if claim is None:
        raise NotFound(f"no claim {claim_id}")
    return claim


def add_photos(rt: Runtime, claim_id: str, checked: list[CheckedPhoto]) -> schemas.PhotosUploaded:
    # Blobs first: a blob without a row is harmless garbage; a row without its blob is data loss.
    for photo in checked:
        rt.blobs.put(photo.sha256, photo.data, photo.content_type)
    with transaction(rt.sessions) as session:
        claim = _claim(session, claim_id, lock=True)
        if claim.status in (ClaimStatus.APPROVED.value, ClaimStatus.REJECTED.value):
            raise Conflict(f"claim is {claim.status}: no more photos can be added")
        existing = {photo.sha256: photo for photo in claim.photos}
        fresh = {p.sha256: p for p in checked if p.sha256 not in existing}
        if len(existing) + len(fresh) > rt.settings.max_photos_per_claim:
            raise TooManyPhotos(
                f"a claim holds at most {rt.settings.max_photos_per_claim} photos; "
                f"it has {len(existing)} and this request adds {len(fresh)}",
                field="files",
            )
        added = [_photo_row(claim, photo) for photo in fresh.values()]
        session.add_all(added)
        session.flush()
        if added:
            claim.touch()
        duplicates = [existing[p.sha256].id for p in checked if p.sha256 in existing]
        return schemas.PhotosUploaded(
            photos=[photo_public(row) for row in added], duplicates=duplicates
        )


def _photo_row(claim: models.Claim, photo: CheckedPhoto) -> models.Photo:
    return models.Photo(
        id=new_id(),
        claim=claim,
        sha256=photo.sha256,
        content_type=photo.content_type,
        size_bytes=len(photo.data),
        width=photo.width,
        height=photo.height,
        exif=photo.exif,
        filename=photo.filename,
    )


def submit(rt: Runtime, claim_id: str, key: str | None) -> tuple[Outcome, str | None]:
    """Queue an assessment. Returns the response and the job id to send (None on a replay)."""
    created: list[str] = []

    def action(session: Session) -> Outcome:
        claim = _claim(session, claim_id, lock=True)
        if not claim.photos:
            raise Conflict("upload at least one photo before submitting", field="photos")
        if not can_submit(ClaimStatus(claim.status)):
            raise Conflict(f"a claim that is {claim.status} cannot be submitted now")
        job = jobs.create_job(session, claim)
        session.flush()
        created.append(job.id)
        accepted = schemas.SubmitAccepted(
            claim_id=claim.id, job=job_public(job), status=ClaimStatus(claim.status)
        )
        return 202, accepted.model_dump(mode="json")

    outcome = idempotent(rt, f"claims.submit:{claim_id}", key, claim_id, action)
    return outcome, (created[0] if created else None)


def withdraw_job(rt: Runtime, job_id: str, reason: str) -> None:
    """Undo a submit whose message could not be queued, so the client can simply retry."""
    with transaction(rt.sessions) as session:
        job = session.get_one(models.Job, job_id)
        claim = session.get_one(models.Claim, job.claim_id)
        session.delete(job)
        previous = session.scalar(
            select(models.Job)
            .where(models.Job.claim_id == claim.id, models.Job.id != job_id)
            .order_by(models.Job.created_at.desc())
            .limit(1)
        )
        claim.touch(_status_before(session, claim, previous), reason)
        for record in session.scalars(
            select(models.IdempotencyRecord).where(
                models.IdempotencyRecord.scope == f"claims.submit:{claim.id}"
            )
        ):
            if record.response.get("job", {}).get("id") == job_id:
                session.delete(record)


def _status_before(session: Session, claim: models.Claim, previous: models.Job | None) -> str:
    if previous is None:
        return ClaimStatus.RECEIVED.value
    if previous.state == jobs.FAILED:
        return ClaimStatus.FAILED.value
    record = session.scalar(
        select(models.AssessmentRecord).where(models.AssessmentRecord.job_id == previous.id)
    )
    triage = (record.body.get("triage") or {}) if record else {}
    return (
        ClaimStatus.ASSESSED.value
        if triage.get("decision") == "straight_through"
        else ClaimStatus.NEEDS_REVIEW.value
    )


def claim_revision(rt: Runtime, claim_id: str) -> int:
    with rt.sessions() as session:
        revision = session.scalar(select(models.Claim.revision).where(models.Claim.id == claim_id))
    if revision is None:
        raise NotFound(f"no claim {claim_id}")
    return revision


def claim_public(rt: Runtime, claim_id: str) -> schemas.ClaimPublic:
    with rt.sessions() as session:
        claim = _claim(session, claim_id)
        records = session.scalars(
            select(models.AssessmentRecord)
            .where(models.AssessmentRecord.claim_id == claim_id)
            .order_by(models.AssessmentRecord.version)
        ).all()
        job = session.scalar(
            select(models.Job)
            .where(models.Job.claim_id == claim_id)
            .order_by(models.Job.created_at.desc())
            .limit(1)
        )
        return _claim_view(claim, list(records), job)


def _claim_view(
    claim: models.Claim, records: list[models.AssessmentRecord], job: models.Job | None
) -> schemas.ClaimPublic:
    status = ClaimStatus(claim.status)
    location = (
        schemas.LocationIn(latitude=claim.loss_latitude, longitude=claim.loss_longitude)
        if claim.loss_latitude is not None and claim.loss_longitude is not None
        else None
    )
    return schemas.ClaimPublic(
        id=claim.id,
        status=status,
        status_reason=claim.status_reason,
        revision=claim.revision,
        policy_number=claim.policy_number,
        loss_date=claim.loss_date,
        description=claim.description,
        vehicle=claim.vehicle,
        contact=claim.contact,
        loss_location=location,
        webhook_url=claim.webhook_url,
        progress=schemas.Progress(
            stage=status,
            message=PROGRESS_MESSAGES[status],
            photos=len(claim.photos),
            job=job_public(job) if job else None,
        ),
        photos=[photo_public(p) for p in claim.photos],
        assessment=assessment_public(records[-1]) if records else None,
        assessment_versions=[
            schemas.AssessmentSummary(version=r.version, job_id=r.job_id, created_at=r.created_at)
            for r in records
        ],
        retake_request=(
            schemas.RetakeRequest.model_validate(claim.retake_request)
            if claim.retake_request
            else None
        ),
        created_at=claim.created_at,
        updated_at=claim.updated_at,
    )


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


def assessment_version(rt: Runtime, claim_id: str, version: int) -> schemas.AssessmentPublic:
    with rt.sessions() as session:
        record = session.scalar(
            select(models.AssessmentRecord).where(
                models.AssessmentRecord.claim_id == claim_id,
                models.AssessmentRecord.version == version,
            )
        )
        if record is None:
            raise NotFound(f"claim has no assessment version {version}")
        return assessment_public(record)


def photo_blob(rt: Runtime, claim_id: str, photo_id: str) -> tuple[bytes, str]:
    with rt.sessions() as session:
        photo = session.get(models.Photo, photo_id)
        if photo is None or photo.claim_id != claim_id:
            raise NotFound(f"no photo {photo_id} on this claim")
        sha, content_type = photo.sha256, photo.content_type
    return rt.blobs.get(sha), content_type


def queue_webhook(rt: Runtime, claim_id: str, job_id: str) -> str | None:
    with transaction(rt.sessions) as session:
        claim = session.get_one(models.Claim, claim_id)
        if not claim.webhook_url:
            return None
        job = session.get_one(models.Job, job_id)
        delivery = models.WebhookDelivery(
            id=new_id(),
            claim_id=claim_id,
            event="claim.assessment_finished",
            url=claim.webhook_url,
            payload={
                "event": "claim.assessment_finished",
                "claim_id": claim_id,
                "job_id": job_id,
                "job_state": job.state,
                "status": claim.status,
                "revision": claim.revision,
            },
        )
        session.add(delivery)
        return delivery.id


def create_staff(
    rt: Runtime, email: str, role: Role, *, name: str = "", password_hash: str | None = None
) -> tuple[str, str]:
    """Create a staff user and an API token; returns (user id, token shown once)."""
    token = new_token(STAFF_TOKEN_PREFIX)
    with transaction(rt.sessions) as session:
        if session.scalar(select(models.User.id).where(models.User.email == email)):
            raise Conflict(f"a user {email} already exists", field="email")
        user = models.User(
            id=new_id(), email=email, name=name, role=role.value, password_hash=password_hash
        )
        session.add(user)
        session.flush()
        session.add(models.ApiToken(token_hash=hash_token(token), user_id=user.id, label="cli"))
    return user.id, token


def ensure_staff_token(rt: Runtime, email: str, token: str) -> None:
    """Make `token` a valid adjuster credential (development bootstrap)."""
    with transaction(rt.sessions) as session:
        user = session.scalar(select(models.User).where(models.User.email == email))
        if user is None:
            user = models.User(id=new_id(), email=email, name="Dev adjuster", role="adjuster")
            session.add(user)
            session.flush()
        if session.get(models.ApiToken, hash_token(token)) is None:
            session.add(models.ApiToken(token_hash=hash_token(token), user_id=user.id, label="dev"))


def list_claims(
    rt: Runtime, status: ClaimStatus | None, limit: int, offset: int
) -> list[schemas.ClaimSummary]:
    with rt.sessions() as session:
        query = select(models.Claim)
        if status is not None:
            query = query.where(models.Claim.status == status.value)
        query = query.order_by(models.Claim.review_priority.desc(), models.Claim.created_at)
        rows = session.scalars(query.limit(limit).offset(offset)).all()
        return [schemas.ClaimSummary.model_validate(r, from_attributes=True) for r in rows]
