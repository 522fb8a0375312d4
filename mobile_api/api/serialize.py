"""Stored rows and the claims services' results to API schemas, and API requests to the
services' inputs: the services never import the HTTP edge. The assessment's JSON layout is
`cdat.record`'s alone."""

from __future__ import annotations

from typing import Any

from cdat.record import decode, encode
from mobile_api.api import assessment_schemas, schemas
from mobile_api.capture import checks
from mobile_api.claims import idempotency, service, submission
from mobile_api.storage import models


def assessment_public(record: models.AssessmentRecord) -> assessment_schemas.AssessmentPublic:
    assessment = decode(record.body)
    body: dict[str, Any] = encode(assessment)
    for photo, analysis in zip(body["photos"], assessment.photos, strict=True):
        photo["usable"] = analysis.usable  # derived, so not stored; clients want it spelled out
    return assessment_schemas.AssessmentPublic.model_validate(
        {
            **body,
            "version": record.version,
            "job_id": record.job_id,
            "source": record.source,
            "created_at": record.created_at,
            "photo_ids": record.photo_ids,
        }
    )


def photo_public(photo: models.Photo) -> schemas.PhotoPublic:
    return schemas.PhotoPublic.model_validate(photo, from_attributes=True)


def photo_check_public(check: checks.PhotoCheck) -> schemas.PhotoCheckPublic:
    names = checks.shot_names()
    return schemas.PhotoCheckPublic(
        photo_id=check.photo_id,
        shot=check.shot,
        state=check.state,  # type: ignore[arg-type]  # one of the three the store writes
        issues=[
            schemas.PhotoIssue(code=str(issue.get("code", "")), message=checks.plain(issue, names))
            for issue in check.issues
        ],
    )


def job_public(job: models.Job) -> schemas.JobPublic:
    return schemas.JobPublic.model_validate(job, from_attributes=True)


def new_claim(body: schemas.ClaimCreate) -> service.NewClaim:
    location = body.loss_location
    return service.NewClaim(
        policy_number=body.policy_number,
        loss_date=body.loss_date,
        description=body.description,
        vehicle=body.vehicle.model_dump(mode="json"),
        contact=body.contact.model_dump(mode="json"),
        loss_latitude=location.latitude if location else None,
        loss_longitude=location.longitude if location else None,
        webhook_url=str(body.webhook_url) if body.webhook_url else None,
        request=body.model_dump(mode="json"),
    )


def claim_created(opened: service.ClaimOpened) -> idempotency.Outcome:
    created = schemas.ClaimCreated(
        id=opened.id,
        status=opened.status,
        access_token=opened.access_token,
        webhook_secret=opened.webhook_secret,
    )
    return 201, created.model_dump(mode="json")


def submit_accepted(submitted: submission.Submitted) -> idempotency.Outcome:
    accepted = schemas.SubmitAccepted(
        claim_id=submitted.claim_id, job=job_public(submitted.job), status=submitted.status
    )
    return 202, accepted.model_dump(mode="json")


def photos_uploaded(added: submission.PhotosAdded) -> schemas.PhotosUploaded:
    return schemas.PhotosUploaded(
        photos=[photo_public(row) for row in added.photos], duplicates=added.duplicates
    )


def claim_summary(claim: models.Claim) -> schemas.ClaimSummary:
    return schemas.ClaimSummary.model_validate(claim, from_attributes=True)
