"""Stored rows to API schemas. The assessment's JSON layout is `cdat.record`'s alone."""

from __future__ import annotations

from typing import Any

from cdat.record import decode, encode
from mobile_api.api import assessment_schemas, schemas
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


def job_public(job: models.Job) -> schemas.JobPublic:
    return schemas.JobPublic.model_validate(job, from_attributes=True)
