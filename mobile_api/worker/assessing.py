"""The worker's part of an assessment: a claim's stored photos through the models.

What follows (fraud signals, the merge across photos, pricing, total loss, triage) is the
core's (`cdat.pipeline`), run where the result is stored under the claim lock
(`queues.jobs.complete`). Kept free of Celery.
"""

from __future__ import annotations

from collections.abc import Sequence

from cdat.analysis import PhotoInput
from cdat.findings import PhotoAnalysis
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.storage.claim_store import claim_context


def analyze_photos(
    rt: Runtime, claim_id: str, photo_ids: Sequence[str]
) -> tuple[list[PhotoAnalysis], dict[str, str]]:
    """What the models see on the claim's photos still stored, and the models' versions.

    The slow part of a job, so it runs outside any transaction and holds no lock.
    """
    analyzer = rt.analyzer()
    with rt.sessions() as session:
        claim = session.get_one(models.Claim, claim_id)
        photos = claim_context(session, claim, photo_ids).photos
    inputs = [PhotoInput(p.photo_id, rt.blobs.get(p.sha256)) for p in photos]
    return analyzer.analyze(inputs), analyzer.model_versions
