"""Turning a claim's stored photos into an `Assessment`: the glue between storage,
the analyzer and the domain rules. Kept free of Celery so the CLI can use it too.
"""

from __future__ import annotations

from sqlalchemy import select

from cdat.analysis import PhotoInput
from cdat.assessment import Assessment
from mobile_api import models
from mobile_api.runtime import Runtime


def load_photo_inputs(runtime: Runtime, photo_ids: list[str]) -> list[PhotoInput]:
    with runtime.sessions() as session:
        photos = session.scalars(select(models.Photo).where(models.Photo.id.in_(photo_ids))).all()
        by_id = {photo.id: photo.sha256 for photo in photos}
    return [PhotoInput(pid, runtime.blobs.get(by_id[pid])) for pid in photo_ids if pid in by_id]


def assess_photos(runtime: Runtime, claim_id: str, photo_ids: list[str]) -> Assessment:
    analyzer = runtime.analyzer()
    analyses = analyzer.analyze(load_photo_inputs(runtime, photo_ids))
    return Assessment(
        photos=tuple(analyses), findings=(), model_versions=dict(analyzer.model_versions)
    )
