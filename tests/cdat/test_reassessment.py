"""Re-assessment is the core's: `assess_claim` takes the per-photo damages, the adjuster's
corrections and the claim context, for a correction and for a new assessment of a claim an
adjuster already corrected alike. The service only loads and stores."""

from __future__ import annotations

import dataclasses

from cdat import corrections
from cdat.assessment import Assessment, Operation
from cdat.corrections import Corrections
from cdat.findings import Box, DamageInstance, PhotoAnalysis
from cdat.pipeline import AssessmentPolicy, assess_claim
from cdat.taxonomy import CarPart, DamageType, Severity
from tests.cdat.conftest import context, meta, photo

VERSIONS = {"damage": "d-1", "parts": "p-1"}


def damaged(photo_id: str, part: CarPart, kind: DamageType, severity: Severity) -> PhotoAnalysis:
    damage = DamageInstance(
        kind, severity, 0.9, Box(10, 10, 200, 200), part=part, part_coverage=0.3
    )
    return photo(photo_id, damages=(damage,))


NONE = Corrections()


def assessed(
    policy: AssessmentPolicy, *analyses: PhotoAnalysis, corrected: Corrections = NONE
) -> Assessment:
    claim = context(photos=tuple(meta(a.photo_id) for a in analyses))
    return assess_claim(analyses, corrected, claim, (), VERSIONS, policy)


def test_a_claim_nobody_corrected_is_the_models_word(inr_policy) -> None:
    # given what the models saw on two photos, and an earlier version nobody touched
    seen = (
        damaged("p1", CarPart.HOOD, DamageType.DENT, Severity.MINOR),
        damaged("p2", CarPart.HOOD, DamageType.DENT, Severity.MINOR),
    )
    untouched = assessed(inr_policy, *seen)
    # when the claim is assessed with the corrections of that version (there are none)
    result = assessed(inr_policy, *seen, corrected=Corrections.of(untouched))
    # then the photos are the models' and their damages are merged into one hood finding
    assert result.photos == seen
    assert [(f.part, len(f.evidence)) for f in result.findings] == [(CarPart.HOOD, 2)]
    assert result.operation_overrides == {}
    assert result == untouched


def test_an_edit_re_assesses_the_claim_with_the_adjusters_damages(inr_policy) -> None:
    # given a version where the model saw a minor scratch on the hood
    first = assessed(inr_policy, damaged("p1", CarPart.HOOD, DamageType.SCRATCH, Severity.MINOR))
    # when the adjuster makes it a severe dent, as the review path re-assesses an edit
    fields = corrections.parse_fields("dent", "severe", "hood")
    edit = corrections.edit_damage(first, "p1", 0, fields)
    result = assess_claim(
        first.photos, edit.corrections, context(), first.fraud_signals, VERSIONS, inr_policy
    )
    # then the finding, the estimate and the photo follow the adjuster
    assert [(f.damage_type, f.severity) for f in result.findings] == [
        (DamageType.DENT, Severity.SEVERE)
    ]
    assert result.photos[0].reviewed and result.photos[0].damages[0].review == "edited"
    assert first.estimate is not None and result.estimate is not None
    assert result.estimate.total > first.estimate.total


def test_corrections_carry_over_to_a_new_assessment(inr_policy) -> None:
    # given a previous version where the adjuster said p1 shows a severe hood dent and the
    # hood is to be repaired, not replaced
    model_saw = damaged("p1", CarPart.HOOD, DamageType.SCRATCH, Severity.MINOR)
    adjuster_saw = dataclasses.replace(
        damaged("p1", CarPart.HOOD, DamageType.DENT, Severity.SEVERE), reviewed=True
    )
    hood = {CarPart.HOOD: Operation.REPAIR_AND_REFINISH}
    corrected = assessed(inr_policy, model_saw, corrected=Corrections.made_on([adjuster_saw], hood))
    # when the claim is assessed again with a second photo added
    claim = context(photos=(meta("p1"), meta("p2")))
    fresh = (model_saw, damaged("p2", CarPart.FRONT_BUMPER, DamageType.DENT, Severity.MINOR))
    result = assess_claim(fresh, Corrections.of(corrected), claim, (), VERSIONS, inr_policy)
    # then p1 keeps the adjuster's damages, p2 is the model's, and the hood stays repaired
    by_photo = {p.photo_id: p for p in result.photos}
    assert by_photo["p1"].damages == adjuster_saw.damages and by_photo["p1"].reviewed
    assert by_photo["p2"].damages == fresh[1].damages and not by_photo["p2"].reviewed
    assert result.operation_overrides == hood
    assert result.estimate is not None
    hood_lines = [line for line in result.estimate.lines if line.part is CarPart.HOOD]
    assert {line.operation for line in hood_lines} == {Operation.REPAIR_AND_REFINISH}
    assert result.model_versions == VERSIONS


def test_a_removed_photo_takes_its_corrections_with_it(inr_policy) -> None:
    # given corrections on a photo the policyholder has since removed
    gone = dataclasses.replace(
        damaged("p1", CarPart.HOOD, DamageType.DENT, Severity.SEVERE), reviewed=True
    )
    kept = Corrections.made_on([gone], {})
    # when the claim is assessed on the photos left
    result = assessed(
        inr_policy, damaged("p2", CarPart.TAILGATE, DamageType.DENT, Severity.MINOR), corrected=kept
    )
    # then nothing of the removed photo is priced
    assert [f.part for f in result.findings] == [CarPart.TAILGATE]
    assert [p.photo_id for p in result.photos] == ["p2"]
