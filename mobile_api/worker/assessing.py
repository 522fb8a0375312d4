"""Turning a claim's stored photos into an `Assessment`: the glue between storage,
the analyzer and the domain rules. Kept free of Celery so the CLI can use it too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cdat.analysis import PhotoAnalyzer, PhotoInput
from cdat.assessment import Assessment
from cdat.claims import BodyType, ClaimContext, GeoPoint, PhotoMeta, Vehicle
from cdat.findings import PhotoAnalysis
from cdat.merge import merge_findings
from cdat.phash import PhotoHashIndex
from cdat.pipeline import AssessmentPolicy, build_assessment
from mobile_api.claims.images import exif_capture_time
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.storage.db import transaction
from mobile_api.storage.hash_index import SqlPhotoHashIndex


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


def photo_meta(photo_id: str, sha256: str, exif: dict[str, Any]) -> PhotoMeta:
    latitude, longitude = exif.get("GPSLatitude"), exif.get("GPSLongitude")
    location = (
        GeoPoint(latitude, longitude) if latitude is not None and longitude is not None else None
    )
    return PhotoMeta(photo_id, sha256, exif_capture_time(exif), location)


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


def load_claim(
    rt: Runtime, claim_id: str, photo_ids: list[str]
) -> tuple[ClaimContext, list[PhotoInput]]:
    with rt.sessions() as session:
        context = claim_context(session, session.get_one(models.Claim, claim_id), photo_ids)
    return context, [PhotoInput(p.photo_id, rt.blobs.get(p.sha256)) for p in context.photos]


def assess(
    analyzer: PhotoAnalyzer,
    inputs: Sequence[PhotoInput],
    context: ClaimContext,
    policy: AssessmentPolicy,
    hash_index: PhotoHashIndex,
) -> Assessment:
    """The whole assessment: vision, claim-level merge, pricing, total loss, fraud, triage."""
    analyses = analyzer.analyze(inputs)
    return _built(analyses, analyzer.model_versions, context, policy, hash_index)


def _built(
    analyses: Sequence[PhotoAnalysis],
    model_versions: Mapping[str, str],
    context: ClaimContext,
    policy: AssessmentPolicy,
    hash_index: PhotoHashIndex,
) -> Assessment:
    findings = merge_findings(analyses)
    return build_assessment(analyses, findings, context, model_versions, policy, hash_index)


def assess_photos(
    rt: Runtime,
    claim_id: str,
    photo_ids: list[str],
    hold: Callable[[Session], None] = lambda session: None,
) -> Assessment:
    """Assess the claim's stored photos. `hold` runs first in the transaction that writes
    the photo-hash index, so a job run that lost its lease writes nothing (it raises)."""
    analyzer, policy = rt.analyzer(), rt.policy()
    context, inputs = load_claim(rt, claim_id, photo_ids)
    analyses = analyzer.analyze(inputs)  # the slow part, outside any transaction
    with transaction(rt.sessions) as session:
        hold(session)
        hashes = SqlPhotoHashIndex(session)
        return _built(analyses, analyzer.model_versions, context, policy, hashes)


def local_context(vehicle: Vehicle, loss_date: date, photos: Sequence[PhotoMeta]) -> ClaimContext:
    return ClaimContext(
        claim_id="local",
        vehicle=vehicle,
        loss_date=loss_date,
        loss_location=None,
        photos=tuple(photos),
    )
