"""Domain objects to JSON-safe dicts, for the database and the API."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from enum import Enum
from typing import Any

from cdat.assessment import Assessment
from mobile_api import models, schemas


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def assessment_body(assessment: Assessment) -> dict[str, Any]:
    body: dict[str, Any] = to_jsonable(assessment)
    for photo, analysis in zip(body["photos"], assessment.photos, strict=True):
        photo["usable"] = analysis.usable
        photo.pop("perceptual_hash", None)
    return body


def assessment_public(record: models.AssessmentRecord) -> schemas.AssessmentPublic:
    return schemas.AssessmentPublic.model_validate(
        {
            **record.body,
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
