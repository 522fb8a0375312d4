"""Re-assessment is the core's: `reprice` for a correction, `keeping_corrections` for a new
assessment of a claim an adjuster already corrected. The service only loads and stores."""

from __future__ import annotations

import dataclasses

from cdat.assessment import Operation
from cdat.findings import Box, DamageInstance, PhotoAnalysis
from cdat.pipeline import AssessmentPolicy, assess_findings, keeping_corrections, reprice
from cdat.taxonomy import CarPart, DamageType, Severity
from tests.cdat.conftest import context, meta, photo

VERSIONS = {"damage": "d-1", "parts": "p-1"}


def damaged(photo_id: str, part: CarPart, kind: DamageType, severity: Severity) -> PhotoAnalysis:
    damage = DamageInstance(
        kind, severity, 0.9, Box(10, 10, 200, 200), part=part, part_coverage=0.3
    )
    return photo(photo_id, damages=(damage,))


def assessed(policy: AssessmentPolicy, *analyses: PhotoAnalysis):  # type: ignore[no-untyped-def]
    claim = context(photos=tuple(meta(a.photo_id) for a in analyses))
    return assess_findings(analyses, claim, (), policy, VERSIONS)


def test_a_claim_nobody_corrected_keeps_the_fresh_assessment(inr_policy) -> None:
    # given a fresh assessment, and a previous one no adjuster touched
    fresh = assessed(inr_policy, damaged("p1", CarPart.HOOD, DamageType.DENT, Severity.MINOR))
    untouched = assessed(inr_policy, damaged("p1", CarPart.HOOD, DamageType.DENT, Severity.MINOR))
    # when the corrections are carried over
    # then the fresh assessment is the result, as it is
    assert keeping_corrections(fresh, None, context(), inr_policy) is fresh
    assert keeping_corrections(fresh, untouched, context(), inr_policy) is fresh


def test_corrections_carry_over_to_a_new_assessment(inr_policy) -> None:
    # given a previous version where the adjuster said p1 shows a severe hood dent and the
    # hood is to be repaired, not replaced
    model_saw = damaged("p1", CarPart.HOOD, DamageType.SCRATCH, Severity.MINOR)
    adjuster_saw = dataclasses.replace(
        damaged("p1", CarPart.HOOD, DamageType.DENT, Severity.SEVERE), reviewed=True
    )
    first = assessed(inr_policy, model_saw)
    hood = {CarPart.HOOD: Operation.REPAIR_AND_REFINISH}
    corrected = reprice(first, (adjuster_saw,), hood, context(), inr_policy)
    # when the claim is assessed again with a second photo added
    claim = context(photos=(meta("p1"), meta("p2")))
    fresh = assessed(
        inr_policy, model_saw, damaged("p2", CarPart.FRONT_BUMPER, DamageType.DENT, Severity.MINOR)
    )
    result = keeping_corrections(fresh, corrected, claim, inr_policy)
    # then p1 keeps the adjuster's damages, p2 is the model's, and the hood stays repaired
    by_photo = {p.photo_id: p for p in result.photos}
    assert by_photo["p1"].damages == adjuster_saw.damages and by_photo["p1"].reviewed
    assert by_photo["p2"].damages == fresh.photos[1].damages
    assert result.operation_overrides == hood
    assert result.estimate is not None
    hood_lines = [line for line in result.estimate.lines if line.part is CarPart.HOOD]
    assert {line.operation for line in hood_lines} == {Operation.REPAIR_AND_REFINISH}
    assert result.model_versions == VERSIONS
