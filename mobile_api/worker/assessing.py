"""Turning a claim's stored photos into an `Assessment`: the glue between storage,
the analyzer and the domain rules. Kept free of Celery so the CLI can use it too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from sqlalchemy.orm import Session

from cdat.analysis import PhotoAnalyzer, PhotoInput
from cdat.assessment import Assessment
from cdat.claims import ClaimContext
from cdat.findings import PhotoAnalysis
from cdat.merge import merge_findings
from cdat.phash import PhotoHashIndex
from cdat.pipeline import AssessmentPolicy, build_assessment
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.storage.claim_store import claim_context
from mobile_api.storage.db import transaction
from mobile_api.storage.hash_index import SqlPhotoHashIndex


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
